"""Score batches side by side: a bounded, order-keeping parallel map over a lazy stream of batches.

On a CPU, one batch per core (each on one thread) beats one batch spread over every core: no barriers between
threads, and each core keeps its own cache-sized batch (docs/onnx.md measures it). onnxruntime's ``run`` and
torch's operators release the GIL, so plain threads suffice.

Example:
    >>> list(ordered_map(lambda x: x * x, iter(range(5)), workers=2))
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from rankwise.errors import InvalidInputError

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(threads: Any, workers: Any, *, default_threads: int, side_by_side: bool) -> tuple[int, int]:
    """The checked ``(threads, workers)`` of a backend: ``threads`` in all (default ``default_threads``), and
    batches run at once, never more than ``threads`` (default: ``threads`` when ``side_by_side``, i.e. on a CPU,
    else 1).

    Example:
        >>> resolve_workers(None, None, default_threads=4, side_by_side=True)
        (4, 4)
        >>> resolve_workers(2, 8, default_threads=4, side_by_side=False)
        (2, 2)

    Raises:
        InvalidInputError: ``threads`` or ``workers`` is neither None nor a positive integer.
    """
    for label, value in (("threads", threads), ("workers", workers)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidInputError(f"{label} must be a positive integer or None, got {value!r}.")
    threads = threads or default_threads
    return threads, min(workers or (threads if side_by_side else 1), threads)


def ordered_map(
    fn: Callable[[T], R],
    items: Iterator[T],
    workers: int,
    initializer: Callable[[], object] | None = None,
    name: str = "rankwise-worker",
) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, results in input order.

    At most ``2 * workers`` items are in flight, so a huge input never sits in memory at once; ``items`` is read
    from the calling thread. A pool per call (a few hundred microseconds) keeps re-rankers free of thread state,
    hence picklable. ``initializer`` runs once in each worker thread (e.g. to set a per-thread thread count), so
    with one it always uses worker threads, even for ``workers=1``: it must never touch the caller's own thread.
    Without one, ``workers <= 1`` runs inline in the calling thread. When the consumer stops early (closes the
    generator, e.g. because a progress callback raised), queued items that have not started are cancelled; only
    the ones already running finish.
    """
    if workers <= 1 and initializer is None:
        yield from map(fn, items)
        return
    workers = max(1, workers)
    with ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=initializer) as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped early (an error, a progress callback aborting): start no queued item
            for future in pending:
                future.cancel()
