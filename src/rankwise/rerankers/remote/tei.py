"""Hugging Face Text Embeddings Inference (TEI): ``POST {url}/rerank``.

Request: ``{query, texts: [str], raw_scores, return_text: false}`` (+ ``truncate`` when set); answer: a bare list
``[{index, score}]`` with every text. TEI sends no billing units. ``raw_scores`` defaults to True here (the model's
logits, what the same model gives in process; TEI's own default applies a sigmoid, which saturates and ties strong
matches). TEI refuses more than ``--max-client-batch-size`` texts a request (32 by default), so calls hold 32
texts unless ``max_documents_per_call`` says otherwise. A rankwise server answers the same route and shape.

Example:
    >>> import rankwise                                                 # doctest: +SKIP
    >>> reranker = rankwise.load("http://127.0.0.1:8080", backend="tei")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote._base import RemoteReranker
from rankwise.rerankers.remote._calls import check_url


class TEIReranker(RemoteReranker):
    """A TEI re-rank server as a rankwise re-ranker.

    Args:
        url: the server root (``http://127.0.0.1:8080``).
        model: sent as ``model`` when given (TEI serves one model and needs none; a rankwise server picks by it).
        raw_scores: the model's raw scores (default) or TEI's sigmoid of them (False).
        truncate: sent when not None: True cuts over-long inputs to the model's window (else TEI refuses them,
            unless it was started with ``--auto-truncate``).
        api_key: sent as a bearer token when given; default ``$TEI_API_KEY`` (TEI's ``--api-key``).
        max_documents_per_call (default 32), concurrency, timeout, max_retries, backoff, cache_dir, fields, name: as
            for every remote backend (``docs/remote.md``).
    """

    provider = "tei"
    key_env = ("TEI_API_KEY",)
    default_max_documents = 32
    answer_items, answer_score = None, "score"  # a bare list; TEI sends no billing units

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        raw_scores: bool = True,
        truncate: bool | None = None,
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
        if not isinstance(raw_scores, bool) or (truncate is not None and not isinstance(truncate, bool)):
            raise InvalidInputError(
                f"raw_scores must be True or False and truncate True, False or None; got {raw_scores!r}, {truncate!r}."
            )
        self.raw_scores, self.truncate = raw_scores, truncate
        super().__init__(
            model,
            base_url=check_url(url, "the TEI url"),
            route="/rerank",
            variant=f"raw={raw_scores}|{truncate}",
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
            "texts": texts,
            "raw_scores": self.raw_scores,
            "return_text": False,
        }
        if self.truncate is not None:
            body["truncate"] = self.truncate
        if self.model is not None:
            body["model"] = self.model
        return body
