"""The app factory: :func:`create_app` turns loaded re-rankers and a :class:`ServerConfig` into one FastAPI app.

Example:
    >>> import rankwise                                                   # doctest: +SKIP
    >>> from rankwise.server import ServerConfig, create_app             # doctest: +SKIP
    >>> app = create_app({"bm25": rankwise.load("bm25")}, ServerConfig(api_keys=("secret",)))  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from rankwise.rerankers.base import Reranker
from rankwise.server.config import ServerConfig
from rankwise.server.errors import install_error_handlers
from rankwise.server.metrics import ServerMetrics
from rankwise.server.middleware import BodyLimitMiddleware, ErrorAnswerMiddleware, MetricsMiddleware
from rankwise.server.routes import build_router, build_service_router
from rankwise.server.state import ServingState

DESCRIPTION = """Re-ranking over HTTP, speaking the APIs clients already call:

* **Cohere** v1 and v2 (`POST /v1/rerank`, `POST /v2/rerank`; the official SDK works with `base_url=`), and **Jina**
  (same routes and body);
* **Hugging Face TEI** (`POST /rerank`, `GET /info`).

Concurrent requests share model calls (dynamic batching). Errors are JSON: `{"message", "error", "error_type"}`;
a request still unanswered after the server's request timeout gets a 504 and its queued work is dropped.
"""


def create_app(rerankers: Mapping[str, Reranker], config: ServerConfig | None = None) -> FastAPI:
    """Build the app. ``rerankers`` maps the names clients send as ``model`` to loaded re-rankers.

    The first model is the default (used when a request names none), unless ``config.default_model`` says otherwise.
    Each model gets a worker thread when the app starts (its lifespan) and finishes its queued work when it stops.
    """
    from rankwise import __version__

    config = config or ServerConfig()
    metrics = ServerMetrics()
    state = ServingState(rerankers, config, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            # in a thread: waiting for the workers must not stop the loop, which still answers the requests that
            # the server cut at its graceful timeout (503, ErrorAnswerMiddleware)
            await asyncio.to_thread(state.stop)

    app = FastAPI(
        title="rankwise",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if config.docs else None,
        redoc_url="/redoc" if config.docs else None,
        openapi_url="/openapi.json" if config.docs else None,
    )
    app.state.metrics = metrics
    app.state.serving = state
    install_error_handlers(app)
    app.include_router(build_router(state, config))
    app.include_router(build_service_router(state, config, metrics))
    # added innermost first: metrics wraps CORS, which wraps the body limit (so a 413 still carries CORS headers),
    # which wraps the error answers (500 logged once, 503 for requests cut by a shutdown)
    app.add_middleware(ErrorAnswerMiddleware, graceful_timeout_s=config.graceful_timeout_s, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes, metrics=metrics)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
