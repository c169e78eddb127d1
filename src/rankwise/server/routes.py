"""The HTTP routes: re-rank in three shapes (Cohere v1/v2 + Jina, TEI) and the service routes.

Every re-rank request goes the same way: pick the model (404 if unknown), check the query (its size against
``max_query_bytes``) and the document count, cut documents to the token limit (on the text, never on the shared model,
in a thread: tokenizing never runs on the event loop), score through the model's scheduler while watching for the
client leaving and for the request's deadline (``request_timeout_s``), then sort (ties by input order) and shape the
answer (with Jina's ``usage`` and Cohere's ``meta.billed_units``). Answers are written by
:func:`~rankwise.server.errors.json_bytes`, so texts with lone surrogates come back exactly as sent.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from rankwise._validation import check_query
from rankwise.server._jobs import DeadlinePassed
from rankwise.server.auth import api_key_dependency
from rankwise.server.config import ServerConfig
from rankwise.server.documents import request_metadata, request_texts, utf8_length
from rankwise.server.errors import ApiError, SafeJSONResponse, json_bytes
from rankwise.server.metrics import ServerMetrics
from rankwise.server.schemas import (
    ErrorBody,
    ModelCard,
    ModelList,
    RerankRequest,
    RerankResponse,
    TEIInfo,
    TEIRerankRequest,
    TEIRerankResult,
)
from rankwise.server.state import ServingState
from rankwise.types import rank_order

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "malformed JSON, empty query, too many documents, a bad option",
        401: "missing or wrong API key (when the server has keys)",
        404: "unknown model",
        413: "request body too large, or the query over max_query_bytes",
        422: "a field of the wrong type",
        503: "overloaded or shutting down; retry",
        504: "the request passed the server's request timeout (request_timeout_s)",
    }.items()
}


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body was already read, so the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _timeout_error(timeout: float) -> ApiError:
    """The 504 of a request past its deadline: names the limit and the setting that changes it."""
    return ApiError(
        504,
        f"the request was not answered within this server's request timeout of {timeout:g} s, and its queued work "
        "was dropped; send fewer or shorter documents, or retry. Operators change the limit with "
        "--request-timeout-s / RANKWISE_REQUEST_TIMEOUT_S / request_timeout_s in the config file (0: no limit).",
        "timeout",
    )


class _DeadlinePassed(Exception):
    """Raised by :func:`until_disconnect` when its timeout passes first (the caller knows the limit to name)."""


def check_query_size(query: str, limit: int) -> None:
    """413 for a query over ``limit`` UTF-8 bytes, naming the limit and the setting that changes it.

    Example:
        >>> check_query_size("short", 10) is None
        True
    """
    if len(query) <= limit // 4:  # a code point is at most 4 bytes: no need to count
        return
    size = utf8_length(query)
    if size > limit:
        raise ApiError(
            413,
            f"the query is {size} bytes (UTF-8), over this server's limit of {limit} bytes for a query; send a "
            "shorter query (a re-ranker reads only its first few hundred tokens anyway). Operators change the limit "
            "with --max-query-bytes / RANKWISE_MAX_QUERY_BYTES / max_query_bytes in the config file.",
            "query_too_large",
        )


async def until_disconnect(request: Request, work: Awaitable[T], *, timeout: float | None = None) -> T:
    """Await ``work``; cancel it (its queued pairs are dropped) if the client disconnects first (499) or if
    ``timeout`` seconds pass first (:class:`_DeadlinePassed`). ``timeout=None``: no deadline."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timed_out = not task.done() and not watcher.done()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        watcher.cancel()
    if timed_out:
        raise _DeadlinePassed
    if task.cancelled():
        raise ApiError(499, "the client closed the request before it was answered.", "client_closed")
    return task.result()


async def score_texts(
    state: ServingState,
    request: Request,
    name: str,
    query: str,
    texts: list[str],
    max_tokens: int,
    *,
    left: bool = False,
    window: bool = False,
    metadata: list[Any] | None = None,
) -> tuple[np.ndarray, list[str], int]:
    """Scores for ``texts`` (cut to ``max_tokens``; with ``window``, also to what fits next to the query), the
    texts as scored, and how many were cut.

    The request's deadline (``config.request_timeout_s``) starts here, once the body has been read and validated;
    the model's worker checks it too, between batches.
    """
    limit = state.config.request_timeout_s
    deadline = None if limit is None else time.monotonic() + limit
    check_query_size(query, state.config.max_query_bytes)
    check_query(query)
    most = state.config.max_documents
    if len(texts) > most:
        raise ApiError(
            400,
            f"{len(texts)} documents is over this server's limit of {most} per request; split the request.",
            "too_many_documents",
        )
    truncator = state.truncators[name]
    cut = 0
    tokenizes = window and truncator.tokenizer is not None
    if tokenizes or truncator.may_cut(texts, max_tokens):  # tokenizing long texts is real work: off the event loop
        texts, cut = await asyncio.to_thread(truncator.fit, query, texts, max_tokens, left=left, window=window)
    try:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:  # spent while cutting: never queue the work at all
            raise _DeadlinePassed
        work = state.schedulers[name].score(query, texts, deadline=deadline, metadata=metadata)
        scores = await until_disconnect(request, work, timeout=remaining)
    except (_DeadlinePassed, DeadlinePassed):  # the one place that names the configured limit
        raise _timeout_error(limit or 0.0) from None
    return scores, texts, cut


def _returned_document(doc: str | dict[str, Any]) -> dict[str, Any]:
    return {"text": doc} if isinstance(doc, str) else doc


def json_answer(content: Any, echoed: Sequence[Any] = ()) -> Response:
    """The 200 answer; a 400 naming the document when one of ``echoed`` (returned as sent) cannot be JSON."""
    try:
        return SafeJSONResponse(content)
    except (ValueError, RecursionError):
        for i, doc in enumerate(echoed):
            try:
                json_bytes(doc)
            except (ValueError, RecursionError):
                raise ApiError(
                    400,
                    f"documents[{i}] cannot be sent back as JSON: it holds Infinity or NaN (or a number too large for "
                    "a double, such as 1e400), or is nested too deeply; send such values as strings, or leave "
                    "return_documents off.",
                    "invalid_request",
                ) from None
        raise


async def cohere_rerank(state: ServingState, body: RerankRequest, request: Request, version: str) -> Response:
    """Cohere v1/v2 and Jina: pick the model, cut to ``max_tokens_per_doc``, score, keep ``top_n``."""
    name = state.resolve(body.model)
    cap = state.config.max_tokens_per_doc
    if body.max_tokens_per_doc is not None and body.max_tokens_per_doc > cap:
        raise ApiError(
            400,
            f"max_tokens_per_doc={body.max_tokens_per_doc} is over this server's limit of {cap}; "
            f"send {cap} or less (or leave it out).",
            "invalid_request",
        )
    max_tokens = body.max_tokens_per_doc or cap
    texts = request_texts(body.documents, body.rank_fields)
    metadata = request_metadata(body.documents)
    scores, scored, cut = await score_texts(state, request, name, body.query, texts, max_tokens, metadata=metadata)
    results = []
    for i in rank_order(scores)[: body.top_n]:
        result: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
        if body.return_documents:
            result["document"] = _returned_document(body.documents[i])
        results.append(result)
    truncator = state.truncators[name]
    meta: dict[str, Any] = {
        "api_version": {"version": version},
        "billed_units": {"search_units": search_units(len(scored))},
    }
    if cut:
        meta["warnings"] = [f"{cut} document(s) were cut to {max_tokens} {truncator.unit}."]
    tokens = await asyncio.to_thread(truncator.count_tokens, body.query, scored) if scored else 0
    content = {
        "id": str(uuid.uuid4()),
        "model": name,
        "results": results,
        "meta": meta,
        "usage": {"total_tokens": tokens},
    }
    return json_answer(content, body.documents if body.return_documents else ())


def search_units(n_documents: int) -> int:
    """Cohere's billing unit: one query with up to 100 documents (at least 1 per request).

    Example:
        >>> search_units(0), search_units(100), search_units(101)
        (1, 1, 2)
    """
    return max(1, math.ceil(n_documents / 100))


async def tei_rerank(state: ServingState, body: TEIRerankRequest, request: Request) -> Response:
    """TEI: every text, best first; a sigmoid unless ``raw_scores``; ``truncate`` keeps one window per text."""
    name = state.resolve(body.model)
    left = body.truncation_direction.lower() == "left"
    scores, _, _ = await score_texts(
        state,
        request,
        name,
        body.query,
        list(body.texts),
        state.config.max_tokens_per_doc,
        left=left,
        window=bool(body.truncate),
    )
    if not body.raw_scores and not getattr(state.models[name], "normalize", False):
        with np.errstate(over="ignore"):  # exp(1000) is inf: the sigmoid is then exactly 0, as it should be
            scores = 1.0 / (1.0 + np.exp(-scores))
    results = []
    for i in rank_order(scores):
        result: dict[str, Any] = {"index": i, "score": float(scores[i])}
        if body.return_text:
            result["text"] = body.texts[i]
        results.append(result)
    return json_answer(results)


def build_router(state: ServingState, config: ServerConfig) -> APIRouter:
    """The re-rank routes (behind the API keys when the server has any)."""
    router = APIRouter(
        dependencies=[Depends(api_key_dependency(config.all_api_keys()))], responses=ERRORS, tags=["rerank"]
    )
    shaped = {"response_model": RerankResponse, "response_model_exclude_none": True}

    @router.post("/v1/rerank", summary="Re-rank (Cohere v1 and Jina shape)", **shaped)
    async def rerank_v1(body: RerankRequest, request: Request) -> Response:
        """Cohere v1 / Jina: documents as strings or objects; ``rank_fields`` picks an object's fields."""
        return await cohere_rerank(state, body, request, "1")

    @router.post("/v2/rerank", summary="Re-rank (Cohere v2 shape)", **shaped)
    async def rerank_v2(body: RerankRequest, request: Request) -> Response:
        """Cohere v2: ``{model, query, documents, top_n, max_tokens_per_doc}``."""
        return await cohere_rerank(state, body, request, "2")

    @router.post(
        "/rerank",
        summary="Re-rank (Hugging Face TEI shape)",
        response_model=list[TEIRerankResult],
        response_model_exclude_none=True,
    )
    async def rerank_tei(body: TEIRerankRequest, request: Request) -> Response:
        """TEI: ``{query, texts, raw_scores, return_text, truncate}`` -> ``[{index, score, text?}]``."""
        return await tei_rerank(state, body, request)

    return router


def build_service_router(state: ServingState, config: ServerConfig, metrics: ServerMetrics) -> APIRouter:
    """Health, readiness, model list, TEI's ``/info`` and metrics."""
    router = APIRouter(tags=["service"])
    auth = [Depends(api_key_dependency(config.all_api_keys()))]

    @router.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", summary="Readiness: models loaded and their workers running (503 otherwise)")
    async def ready() -> Response:
        """A status only: this route needs no key, so it names no model (``/v1/models`` does, behind the key)."""
        alive = all(s.alive for s in state.schedulers.values())
        if state.ready and alive:
            return SafeJSONResponse({"status": "ready"})
        return SafeJSONResponse({"status": "not ready"}, status_code=503)

    @router.get("/v1/models", response_model=ModelList, dependencies=auth, summary="The served models")
    async def models() -> ModelList:
        cards = [
            ModelCard(id=name, backend=type(model).__name__, batching=state.schedulers[name].splittable)
            for name, model in state.models.items()
        ]
        return ModelList(data=cards, default=state.default)

    @router.get("/info", response_model=TEIInfo, dependencies=auth, summary="The default model (TEI shape)")
    async def info() -> TEIInfo:
        """Text Embeddings Inference's ``/info`` for the default model; ``served_models`` lists them all."""
        from rankwise.server.info import tei_info

        return tei_info(state)

    @router.get("/metrics", dependencies=auth, summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return router
