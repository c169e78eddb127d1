"""Jina's rerank API: ``POST https://api.jina.ai/v1/rerank``.

Request: ``{model, query, documents: [str], top_n, return_documents: false}``; answer: ``{model, usage:
{total_tokens}, results: [{index, relevance_score}]}``. ``top_n`` is always the call's size. The key is
``$JINA_API_KEY``. A rankwise server answers the same route and shape (``base_url=``).

Example:
    >>> import rankwise                                                                   # doctest: +SKIP
    >>> reranker = rankwise.load("jina-reranker-v2-base-multilingual", backend="jina")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.rerankers.remote._base import RemoteReranker

API_URL = "https://api.jina.ai"


class JinaReranker(RemoteReranker):
    """Jina rerank as a rankwise re-ranker.

    Args:
        model: the Jina model (``jina-reranker-v2-base-multilingual``...).
        base_url: the server root (default ``https://api.jina.ai``); a key is required only there.
        api_key: default ``$JINA_API_KEY``.
        max_documents_per_call, concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as for every
            remote backend (``docs/remote.md``).
    """

    provider = "jina"
    key_env = ("JINA_API_KEY",)
    default_max_documents = 1000
    answer_units = MappingProxyType({"tokens": ("usage", "total_tokens")})

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_documents_per_call: int | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        cache_dir: str | os.PathLike[str] | None = None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url or API_URL,
            route="/v1/rerank",
            key_required=base_url is None,
            api_key=api_key,
            max_documents_per_call=max_documents_per_call,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            cache_dir=cache_dir,
            fields=fields,
            name=name,
        )

    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {
            "model": self.model,
            "query": query,
            "documents": texts,
            "top_n": len(texts),
            "return_documents": False,
        }
