"""Dynamic batching: concurrent requests' (query, document) pairs share model calls, run in a worker thread.

One :class:`Scheduler` per served model. Requests wait in a ring; the worker thread takes the next *step*:

* it waits at most ``max_wait_ms`` after the oldest waiting request arrived (or less, once ``max_batch_pairs``
  documents wait) so that concurrent requests can join;
* it takes up to ``chunk_pairs`` documents from each waiting request in turn, in arrival order, pass after pass,
  until the step holds ``max_batch_pairs``. A request of 1,000 documents gets 32 per pass like every other, so it
  never starves a request of 20 that arrives after it; among requests of similar size the oldest finish first;
* it scores the step with ``reranker.score_groups([(query, texts), ...])`` (cross-encoders: all pairs in shared,
  length-sorted token-budget batches), and hands each request its slice of the scores as soon as its last slice is done.

A request whose client disconnects is cancelled: its unscheduled documents leave the ring at once. Re-rankers without
``score_groups`` (BM25, bi-encoders, fusion: their scores depend on the whole candidate list) are scored one whole
request at a time, in arrival order. With ``batching=False`` every request is one ``reranker.score`` call, in order.

The model runs only in the worker thread, so the event loop stays free and the re-ranker is never called concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.rerankers.base import Reranker
from rankwise.server.metrics import ServerMetrics

logger = logging.getLogger(__name__)


class OverloadedError(RankwiseError):
    """The model's queue is full (or the server is stopping); the client should retry later (HTTP 503)."""


@dataclass(eq=False)
class _Job:
    query: str
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    arrived: float
    scores: np.ndarray = field(init=False)
    next: int = 0  # first document not yet handed to the model
    done: int = 0  # documents scored
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.scores = np.empty(len(self.texts), dtype=np.float64)

    @property
    def size(self) -> int:
        return len(self.texts)


def _settle(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a disconnect meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Scheduler:
    """Queues scoring work for one model and runs it in a worker thread.

    Args:
        reranker: the model (shared; only this scheduler's thread calls it).
        name: the model's served name (metrics label).
        metrics: where batch sizes, queue depth and cancellations are counted.
        batching: merge concurrent requests (False: one ``score`` call per request, in arrival order).
        max_batch_pairs: most documents in one step.
        max_wait_ms: longest a request waits for others to join its step.
        chunk_pairs: documents taken from one request per pass over the waiting requests.
        max_queue_pairs: documents allowed to wait; beyond that a request is refused (:class:`OverloadedError`).

    Example:
        >>> import asyncio, rankwise                                     # doctest: +SKIP
        >>> s = Scheduler(rankwise.load("bm25"), "bm25", ServerMetrics()); s.start()  # doctest: +SKIP
        >>> asyncio.run(s.score("lstm", ["lstm memory", "cnn"]))        # doctest: +SKIP
        array([0.46, 0.  ])
    """

    def __init__(
        self,
        reranker: Reranker,
        name: str,
        metrics: ServerMetrics,
        *,
        batching: bool = True,
        max_batch_pairs: int = 256,
        max_wait_ms: float = 5.0,
        chunk_pairs: int = 32,
        max_queue_pairs: int = 200_000,
    ) -> None:
        self.reranker = reranker
        self.name = name
        self.metrics = metrics
        self.batching = batching
        self.splittable = batching and callable(getattr(reranker, "score_groups", None))
        self.max_batch_pairs = max_batch_pairs
        self.max_wait_s = max_wait_ms / 1000.0
        self.chunk_pairs = chunk_pairs
        self.max_queue_pairs = max_queue_pairs
        self._cond = threading.Condition()
        self._ring: deque[_Job] = deque()
        self._pending = 0  # documents in the ring, not yet handed to the model
        self._open_jobs = 0  # requests submitted and not finished
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ---- event-loop side -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"rankwise-model-{self.name}", daemon=True)
            self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    async def score(self, query: str, texts: list[str]) -> np.ndarray:
        """Scores of ``texts`` for ``query``, in input order. Cancelling the awaiting task cancels the work."""
        if not texts:
            return np.empty(0, dtype=np.float64)
        loop = asyncio.get_running_loop()
        job = _Job(query, texts, loop.create_future(), loop, time.monotonic())
        with self._cond:
            if self._stopping:
                raise OverloadedError("the server is shutting down; retry on another replica.")
            if self._pending and self._pending + job.size > self.max_queue_pairs:
                raise OverloadedError(
                    f"model {self.name!r} has {self._pending} documents waiting (limit {self.max_queue_pairs}); "
                    "retry later."
                )
            self._ring.append(job)
            self._pending += job.size
            self._open_jobs += 1
            self._update_gauges()
            self._cond.notify()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise
        finally:
            with self._cond:
                self._open_jobs -= 1
                self._update_gauges()

    def _cancel(self, job: _Job) -> None:
        with self._cond:
            if job.cancelled or job.done == job.size:
                return
            job.cancelled = True
            if job in self._ring:
                self._ring.remove(job)
                self._pending -= job.size - job.next
            self._update_gauges()
        self.metrics.cancelled.labels(self.name).inc()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the queued work, then end the worker thread (waits at most ``timeout`` seconds)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- worker side (holding the lock only to pick work) ----------------------------------------------------
    def _update_gauges(self) -> None:
        self.metrics.queue_pairs.labels(self.name).set(self._pending)
        self.metrics.queue_requests.labels(self.name).set(self._open_jobs)

    def _run(self) -> None:
        while True:
            try:
                step = self._next_step()
                if step is None:
                    return
                self._execute(step)
            except Exception:  # a bug here must not kill the model's thread; the requests get a 500
                logger.exception("rankwise scheduler for %r: unexpected error", self.name)

    def _next_step(self) -> list[tuple[_Job, int, int]] | None:
        with self._cond:
            while True:
                while not self._ring:
                    if self._stopping:
                        return None
                    self._cond.wait()
                if self.splittable and self.max_wait_s > 0:
                    deadline = min(j.arrived for j in self._ring) + self.max_wait_s
                    while self._ring and self._pending < self.max_batch_pairs and not self._stopping:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                if self._ring:  # (every waiting request may have been cancelled meanwhile)
                    step = self._take()
                    self._update_gauges()
                    return step

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Pick the next step's slices: whole requests, or chunks taken in passes over the waiting requests.

        Each pass visits the requests in arrival order and takes at most ``chunk_pairs`` documents from each, until
        the step holds ``max_batch_pairs``. So no request gets more than its turn while others wait (a huge request
        cannot starve small ones), and among equals the oldest finish first (not all together at the end).
        """
        ring = self._ring
        if not self.splittable:
            job = ring.popleft()
            self._pending -= job.size - job.next
            step = [(job, job.next, job.size)]
            job.next = job.size
            return step
        budget = self.max_batch_pairs
        slices: dict[_Job, list[int]] = {}
        while ring and budget > 0:
            for job in ring:
                take = min(job.size - job.next, self.chunk_pairs, budget)
                bounds = slices.setdefault(job, [job.next, job.next])
                bounds[1] += take
                job.next += take
                budget -= take
                self._pending -= take
                if budget == 0:
                    break
            waiting = [j for j in ring if j.next < j.size]  # fully handed out: leave the queue, order kept
            ring.clear()
            ring.extend(waiting)
        return [(job, start, end) for job, (start, end) in slices.items()]

    def _execute(self, step: list[tuple[_Job, int, int]]) -> None:
        groups = [(job.query, job.texts[start:end]) for job, start, end in step]
        pairs = sum(len(texts) for _, texts in groups)
        began = time.monotonic()
        try:
            if self.splittable:
                results = list(self.reranker.score_groups(groups))  # type: ignore[attr-defined]
            else:
                results = [
                    np.asarray(self.reranker.score(query, texts), dtype=np.float64) for query, texts in groups
                ]
        except Exception as exc:  # noqa: BLE001 - reported to each request of the step, the thread goes on
            logger.exception("model %r failed on a step of %d documents", self.name, pairs)
            for job, _, _ in step:
                self._fail(job, exc)
            return
        m = self.metrics
        m.batch_seconds.labels(self.name).observe(time.monotonic() - began)
        m.batch_pairs.labels(self.name).observe(pairs)
        m.batch_requests.labels(self.name).observe(len(step))
        m.pairs_scored.labels(self.name).inc(pairs)
        for (job, start, end), scores in zip(step, results):
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (end - start,) or np.isnan(scores).any():
                bad = RankwiseError(
                    f"model {self.name!r} returned {scores.shape} scores (NaN?) for {end - start} documents."
                )
                self._fail(job, bad)
                continue
            job.scores[start:end] = scores
            job.done += end - start
            if job.done == job.size and not job.cancelled:
                job.loop.call_soon_threadsafe(_settle, job.future, job.scores, None)

    def _fail(self, job: _Job, error: BaseException) -> None:
        with self._cond:
            if job in self._ring:  # its other slices will not run
                self._ring.remove(job)
                self._pending -= job.size - job.next
                job.next = job.size
            self._update_gauges()
        job.loop.call_soon_threadsafe(_settle, job.future, None, error)
