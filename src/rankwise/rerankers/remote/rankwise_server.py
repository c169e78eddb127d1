"""Another rankwise server (``rankwise serve``) as a re-ranker: ``POST {url}/v2/rerank``.

The request and answer are the server's Cohere v2 shape, plus what only a rankwise server sends back: ``usage:
{total_tokens}`` next to ``meta.billed_units.search_units``. The documents go as the text the library would score
(``fields``), so the server scores exactly what the same model scores in process. ``model`` picks a served model
(the server's default otherwise). At most 1,000 documents a call (the server's default ``--max-documents``).

A served model whose scores depend on the whole candidate list (``bm25``, the ``default`` fusion preset) needs
``independent=False``: each ranking is then one call, never split, deduplicated or cached per document.

Example:
    >>> import rankwise                                                            # doctest: +SKIP
    >>> reranker = rankwise.load("http://127.0.0.1:8000", backend="rankwise", model="minilm")  # doctest: +SKIP
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


class RankwiseServerReranker(RemoteReranker):
    """A model served by ``rankwise serve``, as a re-ranker.

    Args:
        url: the server root (``http://127.0.0.1:8000``).
        model: the served model's name (the server's default when None).
        max_tokens_per_doc: the server cuts each document to this many tokens (its own limit otherwise).
        independent: the served model's scores do not depend on the other candidates (cross-encoders,
            bi-encoders: the default). False for ``bm25``, fusion presets and the like.
        api_key: the server's key (``RANKWISE_API_KEYS`` there); default ``$RANKWISE_REMOTE_API_KEY``.
        max_documents_per_call (default 1000), concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as
            for every remote backend (``docs/remote.md``).
    """

    provider = "rankwise"
    key_env = ("RANKWISE_REMOTE_API_KEY",)
    default_max_documents = 1000
    answer_units = MappingProxyType(
        {"search_units": ("meta", "billed_units", "search_units"), "tokens": ("usage", "total_tokens")}
    )

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        max_tokens_per_doc: int | None = None,
        independent: bool = True,
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
        if max_tokens_per_doc is not None and (
            isinstance(max_tokens_per_doc, bool)
            or not isinstance(max_tokens_per_doc, int)
            or max_tokens_per_doc < 1
        ):
            raise InvalidInputError(
                f"max_tokens_per_doc must be an int >= 1 or None, got {max_tokens_per_doc!r}."
            )
        if not isinstance(independent, bool):
            raise InvalidInputError(f"independent must be True or False, got {independent!r}.")
        if not independent and cache_dir is not None:
            raise InvalidInputError(
                "cache_dir needs independent=True: a score that depends on the whole candidate list cannot be "
                "cached per document."
            )
        self.max_tokens_per_doc = max_tokens_per_doc
        self.independent_scores = independent  # type: ignore[misc]  # declared per instance: it is the served model's
        super().__init__(
            model,
            base_url=check_url(url, "the rankwise server url"),
            route="/v2/rerank",
            variant=f"max_tokens={max_tokens_per_doc}",
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
        body: dict[str, Any] = {"query": query, "documents": texts, "top_n": len(texts)}
        if self.model is not None:
            body["model"] = self.model
        if self.max_tokens_per_doc is not None:
            body["max_tokens_per_doc"] = self.max_tokens_per_doc
        return body
