"""The HTTP routes: re-rank in three shapes (Cohere v1/v2 + Jina, TEI) and the service routes.

Every re-rank request goes the same way: pick the model (404 if unknown), check the query and the document count,
cut documents to the token limit (on the text, never on the shared model), score through the model's scheduler
while watching for the client leaving, then sort (ties by input order) and shape the answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from contextlib import suppress
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from rankwise._validation import check_query
from rankwise.server.app import ServingState
from rankwise.server.auth import api_key_dependency
from rankwise.server.config import ServerConfig
from rankwise.server.documents import request_texts
from rankwise.server.errors import ApiError
from rankwise.server.metrics import ServerMetrics
from rankwise.server.schemas import (
    ApiVersion,
    ErrorBody,
    Meta,
    ModelCard,
    ModelList,
    RerankRequest,
    RerankResponse,
    RerankResult,
    TEIRerankRequest,
    TEIRerankResult,
)

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "malformed JSON, empty query, too many documents, a bad option",
        401: "missing or wrong API key (when the server has keys)",
        404: "unknown model",
        413: "request body too large",
        422: "a field of the wrong type",
        503: "overloaded or shutting down; retry",
    }.items()
}


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body was already read, so the next message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it (its queued pairs are dropped) and answer 499."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        watcher.cancel()
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
) -> tuple[np.ndarray, int]:
    """Scores for ``texts`` (cut to ``max_tokens``) and how many texts were cut."""
    check_query(query)
    limit = state.config.max_documents
    if len(texts) > limit:
        raise ApiError(
            400,
            f"{len(texts)} documents is over this server's limit of {limit} per request; split the request.",
            "too_many_documents",
        )
    truncator = state.truncators[name]
    cut = 0
    if truncator.needs_cut(texts, max_tokens):  # tokenizing long texts is real work: off the event loop
        texts, cut = await asyncio.to_thread(truncator.cut, texts, max_tokens, left=left)
    scores = await until_disconnect(request, state.schedulers[name].score(query, texts))
    return scores, cut


def _order(scores: np.ndarray, top_n: int | None) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order if top_n is None else order[:top_n]


def _returned_document(doc: str | dict[str, Any]) -> dict[str, Any]:
    return {"text": doc} if isinstance(doc, str) else doc


async def cohere_rerank(
    state: ServingState, body: RerankRequest, request: Request, version: str
) -> RerankResponse:
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
    scores, cut = await score_texts(state, request, name, body.query, texts, max_tokens)
    results = [
        RerankResult(
            index=i,
            relevance_score=float(scores[i]),
            document=_returned_document(body.documents[i]) if body.return_documents else None,
        )
        for i in _order(scores, body.top_n)
    ]
    unit = state.truncators[name].unit
    warnings = [f"{cut} document(s) were cut to {max_tokens} {unit}."] if cut else None
    return RerankResponse(
        id=str(uuid.uuid4()),
        model=name,
        results=results,
        meta=Meta(api_version=ApiVersion(version=version), warnings=warnings),
    )


async def tei_rerank(state: ServingState, body: TEIRerankRequest, request: Request) -> list[TEIRerankResult]:
    """TEI: every text, best first; a sigmoid unless ``raw_scores``; ``truncate`` keeps one window per text."""
    name = state.resolve(body.model)
    truncator = state.truncators[name]
    max_tokens = state.config.max_tokens_per_doc
    if body.truncate:
        window = truncator.window(body.query) if body.query.strip() else None
        max_tokens = min(max_tokens, window) if window else max_tokens
    left = body.truncation_direction.lower() == "left"
    scores, _ = await score_texts(state, request, name, body.query, list(body.texts), max_tokens, left=left)
    if not body.raw_scores and not getattr(state.models[name], "normalize", False):
        scores = 1.0 / (1.0 + np.exp(-scores))
    return [
        TEIRerankResult(index=i, score=float(scores[i]), text=body.texts[i] if body.return_text else None)
        for i in _order(scores, None)
    ]


def build_router(state: ServingState, config: ServerConfig) -> APIRouter:
    """The re-rank routes (behind the API keys when the server has any)."""
    router = APIRouter(
        dependencies=[Depends(api_key_dependency(config.all_api_keys()))], responses=ERRORS, tags=["rerank"]
    )
    shaped = {"response_model": RerankResponse, "response_model_exclude_none": True}

    @router.post("/v1/rerank", summary="Re-rank (Cohere v1 and Jina shape)", **shaped)
    async def rerank_v1(body: RerankRequest, request: Request) -> RerankResponse:
        """Cohere v1 / Jina: documents as strings or objects; ``rank_fields`` picks an object's fields."""
        return await cohere_rerank(state, body, request, "1")

    @router.post("/v2/rerank", summary="Re-rank (Cohere v2 shape)", **shaped)
    async def rerank_v2(body: RerankRequest, request: Request) -> RerankResponse:
        """Cohere v2: ``{model, query, documents, top_n, max_tokens_per_doc}``."""
        return await cohere_rerank(state, body, request, "2")

    @router.post(
        "/rerank",
        summary="Re-rank (Hugging Face TEI shape)",
        response_model=list[TEIRerankResult],
        response_model_exclude_none=True,
    )
    async def rerank_tei(body: TEIRerankRequest, request: Request) -> list[TEIRerankResult]:
        """TEI: ``{query, texts, raw_scores, return_text, truncate}`` -> ``[{index, score, text?}]``."""
        return await tei_rerank(state, body, request)

    return router


def build_service_router(state: ServingState, config: ServerConfig, metrics: ServerMetrics) -> APIRouter:
    """Health, readiness, model list and metrics."""
    router = APIRouter(tags=["service"])
    auth = [Depends(api_key_dependency(config.all_api_keys()))]

    @router.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", summary="Readiness: models loaded and their workers running (503 otherwise)")
    async def ready() -> JSONResponse:
        alive = all(s.alive for s in state.schedulers.values())
        if state.ready and alive:
            return JSONResponse({"status": "ready", "models": list(state.models)})
        return JSONResponse({"status": "not ready", "models": list(state.models)}, status_code=503)

    @router.get("/v1/models", response_model=ModelList, dependencies=auth, summary="The served models")
    async def models() -> ModelList:
        cards = [
            ModelCard(id=name, backend=type(model).__name__, batching=state.schedulers[name].splittable)
            for name, model in state.models.items()
        ]
        return ModelList(data=cards, default=state.default)

    @router.get("/metrics", dependencies=auth, summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return router
