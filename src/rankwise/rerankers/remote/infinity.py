"""Infinity (``infinity-emb``): ``POST {url}/rerank``.

Request: ``{query, documents: [str], top_n, return_documents: false, raw_scores}`` (+ ``model`` when given);
answer: ``{object: "rerank", results: [{relevance_score, index}], model, usage: {prompt_tokens, total_tokens}, id,
created}``. ``raw_scores`` defaults to True here (the model's logits; Infinity's default is their sigmoid). Infinity
takes at most 2,048 documents a request (``INFINITY_MAX_CLIENT_BATCH_SIZE``). With one model loaded it ignores
``model``. A server started with ``--url-prefix /v2`` is reached with that prefix in the URL.

Example:
    >>> import rankwise                                                                           # doctest: +SKIP
    >>> reranker = rankwise.load("http://127.0.0.1:7997", backend="infinity", model="mxbai-rerank")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote._base import RemoteReranker
from rankwise.rerankers.remote._calls import check_url


class InfinityReranker(RemoteReranker):
    """An Infinity server's re-ranker as a rankwise re-ranker.

    Args:
        url: the server root, with its ``--url-prefix`` if it has one (``http://127.0.0.1:7997``).
        model: the served model name (``--served-model-name``); needed when the server loads several.
        raw_scores: the model's raw scores (default) or Infinity's sigmoid of them (False).
        api_key: sent as a bearer token when given; default ``$INFINITY_API_KEY`` (the server's own ``--api-key``).
        max_documents_per_call (default 2048), concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as
            for every remote backend (``docs/remote.md``).
    """

    provider = "infinity"
    key_env = ("INFINITY_API_KEY",)
    default_max_documents = 2048
    answer_units = MappingProxyType({"tokens": ("usage", "total_tokens")})

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        raw_scores: bool = True,
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
        if not isinstance(raw_scores, bool):
            raise InvalidInputError(f"raw_scores must be True or False, got {raw_scores!r}.")
        self.raw_scores = raw_scores
        super().__init__(
            model,
            base_url=check_url(url, "the Infinity url"),
            route="/rerank",
            variant=f"raw={raw_scores}",
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
        body: dict[str, Any] = {
            "query": query,
            "documents": texts,
            "top_n": len(texts),
            "return_documents": False,
            "raw_scores": self.raw_scores,
        }
        if self.model is not None:
            body["model"] = self.model
        return body
