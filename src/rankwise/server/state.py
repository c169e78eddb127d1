"""What one running server holds: the served models, their schedulers and truncators, and whether it is ready.

The app factory (:mod:`rankwise.server.app`) builds one :class:`ServingState`; the routes and ``/info`` read it. It
lives in its own module so that the routes need not import the app (which imports the routes).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker
from rankwise.rerankers.remote._base import RemoteReranker
from rankwise.server.batcher import Scheduler
from rankwise.server.config import ServerConfig
from rankwise.server.documents import Truncator
from rankwise.server.errors import ApiError
from rankwise.server.metrics import ServerMetrics


def quiet_bm25s() -> None:
    """Undo bm25s' ``logging.getLogger("bm25s").setLevel(DEBUG)`` (done when it is imported), which made every BM25
    request log a line whatever the server's log level. Only that logger is touched: back to NOTSET, so it follows
    the application's own logging configuration."""
    module = sys.modules.get("bm25s")
    bm25s_logger = logging.getLogger("bm25s")
    if module is not None and bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)


class ServingState:
    """The served models, their schedulers and truncators, and whether the app is ready."""

    def __init__(
        self, rerankers: Mapping[str, Reranker], config: ServerConfig, metrics: ServerMetrics
    ) -> None:
        if not rerankers:
            raise InvalidInputError(
                "create_app needs at least one model, e.g. {'minilm': rankwise.load(...)}."
            )
        for name, model in rerankers.items():
            if not isinstance(model, Reranker):
                raise InvalidInputError(
                    f"model {name!r} is a {type(model).__name__}, not a rankwise Reranker."
                )
        self.models = dict(rerankers)
        self.config = config
        self.default = config.default_model or next(iter(self.models))
        if self.default not in self.models:
            raise InvalidInputError(
                f"default_model {self.default!r} is not among the models {list(self.models)}."
            )
        self.schedulers = {
            name: Scheduler(
                model,
                name,
                metrics,
                batching=config.batching,
                max_batch_pairs=config.max_batch_pairs,
                max_wait_ms=config.max_wait_ms,
                chunk_pairs=config.chunk_pairs,
                max_queue_pairs=config.max_queue_pairs,
            )
            for name, model in self.models.items()
        }
        self.truncators = {name: Truncator(model) for name, model in self.models.items()}
        for name, model in self.models.items():  # a gateway: the provider's calls, documents and units in /metrics
            if isinstance(model, RemoteReranker):
                metrics.watch_remote(name, model.cost_total)
        self.ready = False

    def start(self) -> None:
        quiet_bm25s()  # the models are loaded (bm25s imported) by now
        for scheduler in self.schedulers.values():
            scheduler.start()
        self.ready = True

    def stop(self) -> None:
        self.ready = False
        for scheduler in self.schedulers.values():
            scheduler.stop(timeout=self.config.graceful_timeout_s)

    def resolve(self, model: str | None) -> str:
        """The served name for a request's ``model`` (the default when it is missing or empty)."""
        if not model:
            return self.default
        if model not in self.models:
            raise ApiError(
                404,
                f"unknown model {model!r}; this server serves: {', '.join(repr(n) for n in self.models)}.",
                "model_not_found",
            )
        return model
