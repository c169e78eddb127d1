"""Remote re-rankers: hosted APIs and re-rank servers as backends with the same ``rank()`` contract as every other.

One module per provider -- ``cohere`` (v1 and v2), ``jina``, ``voyage``, ``mixedbread``, ``tei``, ``infinity``,
``rankwise_server`` (another ``rankwise serve``) -- over the shared machinery of :mod:`._base` (calls split to the
provider's limit and run concurrently, answers checked, on-disk cache, cost). Load them through the registry::

    rankwise.load("rerank-v3.5", backend="cohere")
    rankwise.load("http://127.0.0.1:7997", backend="infinity", model="mxbai-rerank")

Importing this package imports no HTTP client: httpx is needed (``pip install 'rankwise[remote]'``) only when a
remote re-ranker is built. See ``docs/remote.md``.
"""

from rankwise.rerankers.remote._answers import RemoteAnswerError, RemoteAuthError, RemoteError
from rankwise.rerankers.remote._base import RemoteCost, RemoteReranker

__all__ = ["RemoteAnswerError", "RemoteAuthError", "RemoteCost", "RemoteError", "RemoteReranker"]
