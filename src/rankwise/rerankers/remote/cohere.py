"""Cohere's rerank API, v2 (``POST /v2/rerank``, the default) and v1 (``POST /v1/rerank``).

Request: ``{model, query, documents: [str], top_n}`` (+ ``max_tokens_per_doc`` on v2; ``return_documents: false`` on
v1); answer: ``{id, results: [{index, relevance_score}], meta: {billed_units: {search_units}}}``. ``top_n`` is always
the call's size, so every document comes back scored; documents go as text (the library's text rule, ``fields``),
at most 1,000 a call (Cohere's recommended maximum). The key is ``CO_API_KEY`` (the SDK's) or ``COHERE_API_KEY``.

Any server that speaks this API works with ``base_url=``: a rankwise server, a gateway, Infinity started with
``--url-prefix /v2``.

Example:
    >>> import rankwise                                                     # doctest: +SKIP
    >>> reranker = rankwise.load("rerank-v3.5", backend="cohere")          # doctest: +SKIP
    >>> reranker.rank("what is an lstm", ["LSTMs gate memory.", "CNNs see."])[0].index  # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote._base import RemoteReranker

API_URL = "https://api.cohere.com"


class CohereReranker(RemoteReranker):
    """Cohere rerank (v2 or v1) as a rankwise re-ranker.

    Args:
        model: the Cohere model (``rerank-v3.5``, ``rerank-english-v3.0``...).
        api_version: 2 (``/v2/rerank``) or 1 (``/v1/rerank``).
        max_tokens_per_doc: v2 only: Cohere cuts each document to this many tokens (its default otherwise).
        base_url: the server root (default ``https://api.cohere.com``); a key is required only there.
        api_key: default ``$CO_API_KEY``, then ``$COHERE_API_KEY``.
        max_documents_per_call, concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as for every
            remote backend (``docs/remote.md``).
    """

    provider = "cohere"
    key_env = ("CO_API_KEY", "COHERE_API_KEY")
    default_max_documents = 1000
    answer_units = MappingProxyType({
        "search_units": ("meta", "billed_units", "search_units"),
        "tokens": ("meta", "billed_units", "input_tokens"),
    })

    def __init__(
        self,
        model: str,
        *,
        api_version: int = 2,
        max_tokens_per_doc: int | None = None,
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
        if api_version not in (1, 2) or isinstance(api_version, bool):
            raise InvalidInputError(
                f"api_version must be 1 or 2 (Cohere's /v1/rerank or /v2/rerank), got {api_version!r}."
            )
        if max_tokens_per_doc is not None:
            if (
                isinstance(max_tokens_per_doc, bool)
                or not isinstance(max_tokens_per_doc, int)
                or max_tokens_per_doc < 1
            ):
                raise InvalidInputError(
                    f"max_tokens_per_doc must be an int >= 1 or None, got {max_tokens_per_doc!r}."
                )
            if api_version != 2:
                raise InvalidInputError(
                    "max_tokens_per_doc is a v2 option; use api_version=2 or leave it out."
                )
        self.api_version, self.max_tokens_per_doc = api_version, max_tokens_per_doc
        super().__init__(
            model,
            base_url=base_url or API_URL,
            route=f"/v{api_version}/rerank",
            variant=f"v{api_version}|{max_tokens_per_doc}",
            key_required=base_url is None,  # Cohere itself needs one; another server at base_url may not
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
        body: dict[str, Any] = {"model": self.model, "query": query, "documents": texts, "top_n": len(texts)}
        if self.api_version == 1:
            body["return_documents"] = False
        elif self.max_tokens_per_doc is not None:
            body["max_tokens_per_doc"] = self.max_tokens_per_doc
        return body
