"""Voyage AI's rerank API: ``POST https://api.voyageai.com/v1/rerank``.

Request: ``{query, documents: [str], model, top_k, return_documents: false, truncation}``; answer: ``{object: "list",
data: [{index, relevance_score}], model, usage: {total_tokens}}``. Voyage calls the cut ``top_k`` and the result list
``data``; ``top_k`` is always the call's size. At most 1,000 documents a call (Voyage's limit; its token limits per
call -- query tokens x documents + document tokens -- may need a smaller ``max_documents_per_call`` for long texts).
The key is ``$VOYAGE_API_KEY``.

Example:
    >>> import rankwise                                                # doctest: +SKIP
    >>> reranker = rankwise.load("rerank-2.5", backend="voyage")      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote._base import RemoteReranker

API_URL = "https://api.voyageai.com"


class VoyageReranker(RemoteReranker):
    """Voyage rerank as a rankwise re-ranker.

    Args:
        model: the Voyage model (``rerank-2.5``, ``rerank-2.5-lite``...).
        truncation: Voyage cuts the query and documents to the model's context (its default, True); False makes an
            over-long input an error instead.
        base_url: the server root (default ``https://api.voyageai.com``); a key is required only there.
        api_key: default ``$VOYAGE_API_KEY``.
        max_documents_per_call, concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as for every
            remote backend (``docs/remote.md``).
    """

    provider = "voyage"
    key_env = ("VOYAGE_API_KEY",)
    default_max_documents = 1000
    answer_items = "data"
    answer_units = MappingProxyType({"tokens": ("usage", "total_tokens")})

    def __init__(
        self,
        model: str,
        *,
        truncation: bool = True,
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
        if not isinstance(truncation, bool):
            raise InvalidInputError(f"truncation must be True or False, got {truncation!r}.")
        self.truncation = truncation
        super().__init__(
            model,
            base_url=base_url or API_URL,
            route="/v1/rerank",
            variant=f"truncation={truncation}",
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
            "query": query,
            "documents": texts,
            "model": self.model,
            "top_k": len(texts),
            "return_documents": False,
            "truncation": self.truncation,
        }
