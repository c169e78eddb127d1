"""Mixedbread's reranking API: ``POST https://api.mixedbread.com/v1/reranking``.

Request: ``{model, query, input: [str], top_k, return_input: false}``; answer: ``{object: "list", model, data:
[{index, score, object: "rank_result"}], usage: {prompt_tokens, total_tokens}, top_k, return_input}``. Mixedbread
calls the documents ``input``, the cut ``top_k`` and the score ``score``; ``top_k`` is always the call's size. At most
1,000 documents a call (its limit). The key is ``$MXBAI_API_KEY`` (the SDK's) or ``$MIXEDBREAD_API_KEY``.

Example:
    >>> import rankwise                                                                   # doctest: +SKIP
    >>> reranker = rankwise.load("mixedbread-ai/mxbai-rerank-large-v2", backend="mixedbread")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.rerankers.remote._base import RemoteReranker

API_URL = "https://api.mixedbread.com"


class MixedbreadReranker(RemoteReranker):
    """Mixedbread reranking as a rankwise re-ranker.

    Args:
        model: the Mixedbread model (``mixedbread-ai/mxbai-rerank-large-v2``...).
        base_url: the server root (default ``https://api.mixedbread.com``); a key is required only there.
        api_key: default ``$MXBAI_API_KEY``, then ``$MIXEDBREAD_API_KEY``.
        max_documents_per_call, concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as for every
            remote backend (``docs/remote.md``).
    """

    provider = "mixedbread"
    key_env = ("MXBAI_API_KEY", "MIXEDBREAD_API_KEY")
    default_max_documents = 1000
    answer_items, answer_score = "data", "score"
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
            route="/v1/reranking",
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
            "input": texts,
            "top_k": len(texts),
            "return_input": False,
        }
