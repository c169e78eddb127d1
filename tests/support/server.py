"""Helpers for the server tests: a real uvicorn server on a free loopback port in a thread, and small models.

Imported by tests/test_server*.py as ``from tests.support.server import ...``; the fixtures are in
tests/support/server_fixtures.py (loaded with ``pytest_plugins``).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import httpx
import numpy as np

from rankwise.rerankers.base import Reranker
from rankwise.rerankers.cross_encoder import CrossEncoderReranker
from rankwise.types import Document

QUERIES = [
    "how do lstm networks remember long sequences",
    "convolutional filters for image edges",
    "self attention in transformers",
    "gradient descent learning rate schedules",
]
DOCS = [
    "LSTM networks use input, forget and output gates and a cell state to carry information over many steps.",
    "Convolutional neural networks apply learned filters to local image regions to detect edges and shapes.",
    "Transformers relate every token to every other token with self-attention.",
    "A learning rate schedule lowers the step size of gradient descent as training goes on.",
    "Recurrent networks suffer from vanishing gradients on long sequences.",
    "Pooling layers shrink feature maps in image models.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``create_app(models, config)`` in a daemon thread; ``url`` is its base address."""

    def __init__(self, models: Mapping[str, Reranker], **config: object) -> None:
        from rankwise.server.config import ServerConfig
        from rankwise.server.runner import build_server

        self.config = ServerConfig(port=free_port(), log_level="warning", **config)  # type: ignore[arg-type]
        self.server = build_server(self.config, models)
        self.url = f"http://127.0.0.1:{self.config.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def app(self):  # noqa: ANN201
        return self.server.config.app

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        text = httpx.get(self.url + "/metrics", headers=self.auth_headers(), timeout=10).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
            if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
                return float(m.group(3))
        return 0.0

    def auth_headers(self) -> dict[str, str]:
        keys = self.config.all_api_keys()
        return {"Authorization": f"Bearer {keys[0]}"} if keys else {}

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        """Poll until ``condition()`` holds (a wait for an event, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)


@contextmanager
def live_server(models: Mapping[str, Reranker], **config: object) -> Iterator[LiveServer]:
    server = LiveServer(models, **config).start()
    try:
        yield server
    finally:
        server.stop()


class GatedCrossEncoder(CrossEncoderReranker):
    """The real torch cross-encoder, whose model calls wait for ``gate`` (tests hold the worker busy with it)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[list[int]] = []  # group sizes of each score_groups call

    def score_groups(
        self, groups: Sequence[tuple[str, Sequence[str]]], *, progress: Callable[[int, int], None] | None = None
    ) -> list[np.ndarray]:
        self.calls.append([len(t) for _, t in groups])
        self.entered.set()
        if not self.gate.wait(60):
            raise RuntimeError("gate never opened")
        return super().score_groups(groups)  # progress not passed on: a model call that runs to its end once begun


class WordOverlapReranker(Reranker):
    """A tiny real re-ranker scored whole (``independent_scores`` is not declared): fraction of query words found in
    the document.

    ``explode`` as the query makes it fail, to test that a model error becomes a clean 500.
    """

    name = "overlap"

    def __init__(self) -> None:
        self.calls = 0

    def _score(self, query: str, documents: list[Document], progress: object) -> list[float]:
        self.calls += 1
        if query == "explode":
            raise RuntimeError("model failure on purpose (secret internal detail)")
        words = set(query.lower().split())
        return [len(words & set(d.text.lower().split())) / len(words) for d in documents]


class GatedBatchCrossEncoder(CrossEncoderReranker):
    """The real torch cross-encoder whose every finished batch waits for ``gate`` before it is handed back; ``batches``
    counts the batches handed back (so a test knows how far a model call went before it stopped)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches = 0

    def _forward(self, batches):  # noqa: ANN001, ANN202
        for item in super()._forward(batches):
            self.batches += 1
            self.entered.set()
            if not self.gate.wait(60):
                raise RuntimeError("gate never opened")
            yield item


def gated_bi_encoder(batch_size: int = 4):  # noqa: ANN201 - a BiEncoderReranker subclass instance
    """The real MiniLM bi-encoder whose every embedded batch waits for ``gate``; ``batches`` counts them."""
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

    class GatedBiEncoder(BiEncoderReranker):
        def __init__(self) -> None:
            super().__init__(device="cpu", batch_size=batch_size)
            self.gate = threading.Event()
            self.gate.set()
            self.entered = threading.Event()
            self.batches = 0

        def _encode(self, texts: list[str]) -> np.ndarray:
            vectors = super()._encode(texts)
            self.batches += 1
            self.entered.set()
            if not self.gate.wait(60):
                raise RuntimeError("gate never opened")
            return vectors

    return GatedBiEncoder()
