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
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


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
    Without one, ``workers <= 1`` runs inline in the calling thread.
    """
    if workers <= 1 and initializer is None:
        yield from map(fn, items)
        return
    workers = max(1, workers)
    with ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=initializer) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
