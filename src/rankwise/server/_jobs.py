"""A queued request of the dynamic batcher, and the small helpers that hand its result back to the event loop."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Job:
    query: str
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    arrived: float
    deadline: float | None = None  # time.monotonic() past which nobody waits for this request
    metadata: Sequence[Mapping[str, Any]] | None = None  # per document, for models scored whole (never split)
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


def accepts_progress(method: Callable[..., Any]) -> bool:
    """Whether ``method`` takes a ``progress=`` keyword (a model's ``score_groups`` may predate it).

    Example:
        >>> accepts_progress(lambda groups, progress=None: None), accepts_progress(lambda groups: None)
        (True, False)
    """
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "progress" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def settle(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a disconnect meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
