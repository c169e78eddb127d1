"""A queued request of the dynamic batcher, the errors it can end with, and the helper that hands its result back to
the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankwise.errors import RankwiseError


class OverloadedError(RankwiseError):
    """The model's queue is full (or the server is stopping); the client should retry later (HTTP 503)."""


class DeadlinePassed(RankwiseError):
    """The request's deadline passed before its work was done (the route answers 504)."""


class StepAbandoned(Exception):
    """Raised by the progress callback: every request of the running step is gone, so the model call stops."""


@dataclass(eq=False)
class Job:
    query: str
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    arrived: float
    deadline: float | None = None  # time.monotonic() past which nobody waits for this request
    metadata: Sequence[Mapping[str, Any]] | None = None  # per document (None: all strings)
    scores: np.ndarray = field(init=False)
    next: int = 0  # first document not yet handed to the model
    done: int = 0  # documents scored
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.scores = np.empty(len(self.texts), dtype=np.float64)

    @property
    def size(self) -> int:
        return len(self.texts)

    def abandoned(self) -> bool:
        """Nobody waits for this request any more: its client left, or its deadline passed."""
        return self.cancelled or (self.deadline is not None and time.monotonic() >= self.deadline)


def settle(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a disconnect meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
