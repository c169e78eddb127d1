"""Load the configured models and run the app under uvicorn.

uvicorn's own signal handling gives the graceful shutdown: on SIGTERM/SIGINT it stops accepting connections, lets the
requests in flight finish (at most ``graceful_timeout_s``), then the app's lifespan drains each model's queue and ends
its worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.base import Reranker
from rankwise.server.config import ModelSpec, ServerConfig

logger = logging.getLogger(__name__)


def load_models(specs: Sequence[ModelSpec], *, warm_up: bool = True) -> dict[str, Reranker]:
    """Load each spec with :func:`rankwise.load`, keyed by its served name; optionally score one pair each.

    Example:
        >>> from rankwise.server.config import parse_model_spec
        >>> models = load_models([parse_model_spec("lexical=bm25")])   # doctest: +SKIP
        >>> list(models)                                             # doctest: +SKIP
        ['lexical']
    """
    if not specs:
        raise InvalidInputError(
            "no model to serve: pass --model SPEC (e.g. --model minilm=./my-cross-encoder), set RANKWISE_MODELS, "
            "or list models in the config file."
        )
    out: dict[str, Reranker] = {}
    for spec in specs:
        began = time.perf_counter()
        model = spec.load()
        if warm_up:  # the first call pays for lazy initialisation; do it before the server says it is ready
            model.score("warm up", ["warm up"])
        out[spec.name] = model
        logger.info(
            "model %r ready (%s, %s) in %.1f s",
            spec.name,
            spec.source,
            type(model).__name__,
            time.perf_counter() - began,
        )
    return out


def build_server(config: ServerConfig, rerankers: Mapping[str, Reranker] | None = None):  # noqa: ANN201
    """A ``uvicorn.Server`` for the app (models loaded from ``config.models`` unless given)."""
    uvicorn = require("uvicorn", "server", "The rankwise HTTP server")
    from rankwise.server.app import create_app

    app = create_app(rerankers if rerankers is not None else load_models(config.models), config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        timeout_graceful_shutdown=config.graceful_timeout_s,
        limit_concurrency=config.max_connections,
        server_header=False,
    )
    return uvicorn.Server(uv_config)


def serve(config: ServerConfig, rerankers: Mapping[str, Reranker] | None = None) -> None:
    """Load the models and serve until SIGINT/SIGTERM (blocking)."""
    server = build_server(config, rerankers)
    logger.info(
        "serving %s on http://%s:%d",
        ", ".join(repr(m.name) for m in config.models) or "given models",
        config.host,
        config.port,
    )
    server.run()
