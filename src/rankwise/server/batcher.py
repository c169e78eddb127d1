"""Dynamic batching: concurrent requests' (query, document) pairs share model calls, run in a worker thread.

One :class:`Scheduler` per served model. Requests wait in a ring; the worker thread takes the next *step*:

* it waits at most ``max_wait_ms`` after the oldest waiting request arrived (or less, once ``max_batch_pairs``
  documents wait) so that concurrent requests can join -- but only once concurrency has been seen: a request that
  finds the worker idle, when the previous step held one request and nothing arrived while it ran, is scored at once
  (waiting for company that is not coming only adds latency; ``wait_alone=True`` always waits). Under concurrent
  load requests arrive while a step runs, so the next step waits and batches as before;
* it takes up to ``chunk_pairs`` documents from each waiting request in turn, in arrival order, pass after pass,
  until the step holds ``max_batch_pairs``. A request of 1,000 documents gets 32 per pass like every other, so it
  never starves a request of 20 that arrives after it; among requests of similar size the oldest finish first;
* it scores the step with ``reranker.score_groups([(query, documents), ...])`` (cross-encoders: all pairs in shared,
  length-sorted token-budget batches), and hands each request its slice of the scores as soon as its last slice is done.
  A failed step is scored again request by request, so one request's bad input fails that request only.

A request whose client disconnects, or whose deadline passes, is cancelled: its unscheduled documents leave the ring
at once, and a model call already running for it stops at the next batch boundary: the worker hands the model a
``progress`` callback that raises once every request of the step is gone (``score(..., progress=)`` and
``score_groups(..., progress=)``). So one huge request for a model scored whole cannot make the next small request
wait past its own deadline. Which requests may be split is the model's declared ability
(:attr:`~rankwise.Reranker.independent_scores`): re-rankers whose scores depend on the whole candidate list (BM25 over
the candidates, z-score fusion) are scored one whole request at a time, in arrival order. With ``batching=False``
every request is one ``reranker.score`` call, in order. Either way the model reads each document's metadata too
(:func:`~rankwise.server.documents.text_carrier`).

*Express lane* (models scored whole only: split models already interleave requests chunk by chunk, and their small
requests are better off batched together). While the worker thread scores a whole request, a small request (at most
``express_pairs`` documents) does not wait behind it: a second thread scores it at once, and the busy call pauses at
its next batch boundary (its progress callback) until the express thread has been idle for a moment. So one huge
request delays small ones by at most the rest of one batch, not the whole request. The re-ranker is then called from
two threads at once, which every backend allows (options are fixed at construction; see :class:`~rankwise.Reranker`).

The models run only in these threads, so the event loop stays free.
A model failure is handed to its requests (each answers 500 and logs the traceback once); it is not logged here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rankwise.errors import RankwiseError
from rankwise.rerankers.base import Reranker
from rankwise.server._jobs import DeadlinePassed, Job, OverloadedError, StepAbandoned, settle
from rankwise.server._steps import Slice, take_chunks, take_express, take_whole
from rankwise.server.documents import text_carrier
from rankwise.server.metrics import ServerMetrics
from rankwise.types import Document

logger = logging.getLogger(__name__)


class Scheduler:
    """Queues scoring work for one model and runs it in a worker thread.

    Args:
        reranker: the model (shared; only this scheduler's thread calls it).
        name: the model's served name (metrics label).
        metrics: where batch sizes, queue depth and cancellations are counted.
        batching: merge concurrent requests (False: one ``score`` call per request, in arrival order).
        max_batch_pairs: most documents in one step.
        max_wait_ms: longest a request waits for others to join its step.
        wait_alone: wait ``max_wait_ms`` even when no concurrency has been seen (default: score a lone request at
            once; see the module text).
        chunk_pairs: documents taken from one request per pass over the waiting requests.
        max_queue_pairs: documents allowed to wait; beyond that a request is refused (:class:`OverloadedError`).
        express_pairs: for a model scored whole, requests of at most this many documents take the express lane while
            a larger one runs (0: never).

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
        wait_alone: bool = False,
        chunk_pairs: int = 32,
        max_queue_pairs: int = 200_000,
        express_pairs: int = 32,
    ) -> None:
        self.reranker = reranker
        self.name = name
        self.metrics = metrics
        self.batching = batching
        self.splittable = batching and reranker.independent_scores
        self._carry = text_carrier(reranker)
        self.max_batch_pairs = max_batch_pairs
        self.max_wait_s = max_wait_ms / 1000.0
        self.wait_alone = wait_alone
        self._company = False  # the last step held several requests, or one arrived while it ran
        self.chunk_pairs = chunk_pairs
        self.max_queue_pairs = max_queue_pairs
        self._cond = threading.Condition()
        self._ring: deque[Job] = deque()
        self._pending = 0  # documents in the ring, not yet handed to the model
        self._open_jobs = 0  # requests submitted and not finished
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.express_pairs = express_pairs
        self._express: threading.Thread | None = None
        self._main_busy = False  # the worker thread is scoring a step
        self._express_busy = False
        self._express_idle_since = 0.0

    # ---- event-loop side -------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work_loop, name=f"rankwise-model-{self.name}", daemon=True)
            self._thread.start()
        if self._express is None and self.express_pairs > 0 and not self.splittable:
            self._express = threading.Thread(
                target=self._express_loop, name=f"rankwise-express-{self.name}", daemon=True
            )
            self._express.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    async def score(
        self,
        query: str,
        texts: list[str],
        *,
        deadline: float | None = None,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> np.ndarray:
        """Scores of ``texts`` for ``query``, in input order. Cancelling the awaiting task cancels the work.

        ``deadline`` (a ``time.monotonic()`` value) also stops the work once passed: the model call stops at its next
        batch and :class:`~rankwise.server._jobs.DeadlinePassed` is raised. ``metadata`` (one mapping per text)
        reaches the model as each document's metadata (for models that score by a metadata field).
        """
        if not texts:
            return np.empty(0, dtype=np.float64)
        loop = asyncio.get_running_loop()
        job = Job(query, texts, loop.create_future(), loop, time.monotonic(), deadline, metadata)
        with self._cond:
            if self._stopping:
                raise OverloadedError("the server is shutting down; retry on another replica.")
            if self._pending and self._pending + job.size > self.max_queue_pairs:
                raise OverloadedError(
                    f"model {self.name!r} has {self._pending} documents waiting (limit {self.max_queue_pairs}); "
                    "retry later."
                )
            if self._main_busy:
                self._company = True  # arrived while a step ran: concurrent callers, worth waiting for
            self._ring.append(job)
            self._pending += job.size
            self._open_jobs += 1
            self._update_gauges()
            self._cond.notify_all()  # the worker and the express lane both wait here
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise
        finally:
            with self._cond:
                self._open_jobs -= 1
                self._update_gauges()

    def _cancel(self, job: Job) -> None:
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
        for thread in (self._thread, self._express):
            if thread is not None:
                thread.join(timeout)

    # ---- worker side (holding the lock only to pick work) ----------------------------------------------------
    def _update_gauges(self) -> None:
        self.metrics.queue_pairs.labels(self.name).set(self._pending)
        self.metrics.queue_requests.labels(self.name).set(self._open_jobs)

    def _work_loop(self) -> None:
        while True:
            try:
                step = self._next_step()
                if step is None:
                    return
                try:
                    self._execute(step)
                finally:
                    with self._cond:
                        self._main_busy = False
            except Exception:  # a bug here (not a model failure) must not kill the model's thread
                logger.exception("rankwise scheduler for %r: unexpected error", self.name)

    # ---- express lane ------------------------------------------------------------------------------------------
    def _express_job(self) -> Job | None:
        """The oldest small, untouched request, taken off the ring whole (call holding the lock)."""
        job = take_express(self._ring, self.express_pairs)
        if job is not None:
            self._pending -= job.size
        return job

    def _express_loop(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._stopping and not self._ring:
                        return
                    job = self._express_job() if self._main_busy else None
                    if job is None:
                        self._cond.wait(0.5 if self._stopping else None)
                self._express_busy = True
                self._update_gauges()
            try:
                self._execute([(job, 0, job.size)])
            except Exception:  # a bug here (not a model failure) must not kill the lane
                logger.exception("rankwise express lane for %r: unexpected error", self.name)
            finally:
                with self._cond:
                    self._express_busy = False
                    self._express_idle_since = time.monotonic()
                    self._cond.notify_all()

    def _yield_to_express(self, jobs: list[Job]) -> None:
        """Pause the running step while the express lane works, and a moment after (sequential small requests
        arrive a few milliseconds apart), unless every request of the step is gone meanwhile."""
        grace = 0.02
        with self._cond:
            while not self._stopping and not all(job.abandoned() for job in jobs):
                quiet = time.monotonic() - self._express_idle_since
                if not self._express_busy and quiet >= grace:
                    return
                self._cond.wait(0.1 if self._express_busy else grace - quiet)

    def _next_step(self) -> list[Slice] | None:
        with self._cond:
            while True:
                while not self._ring:
                    if self._stopping:
                        return None
                    self._cond.wait()
                if self.splittable and self.max_wait_s > 0 and (self.wait_alone or self._company or len(self._ring) > 1):
                    deadline = min(j.arrived for j in self._ring) + self.max_wait_s
                    while self._ring and self._pending < self.max_batch_pairs and not self._stopping:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                if self._ring:  # (every waiting request may have been cancelled meanwhile)
                    step = self._take()
                    self._company = len(step) > 1
                    self._main_busy = True
                    self._update_gauges()
                    self._cond.notify_all()  # small requests already waiting may take the express lane now
                    return step

    def _take(self) -> list[Slice]:
        """Pick the next step's slices: a whole request, or chunks taken in passes over the waiting requests
        (fair shares: :func:`~rankwise.server._steps.take_chunks`)."""
        if self.splittable:
            step = take_chunks(self._ring, self.max_batch_pairs, self.chunk_pairs)
        else:
            step = take_whole(self._ring)
        self._pending -= sum(end - start for _, start, end in step)
        return step

    def _live(self, step: list[Slice]) -> list[Slice]:
        """The slices of ``step`` someone still waits for; a request whose deadline passed is answered now."""
        live = []
        for job, start, end in step:
            if not job.abandoned():
                live.append((job, start, end))
            elif not job.cancelled:
                passed = DeadlinePassed(f"the request's deadline passed before model {self.name!r} finished it.")
                self._fail(job, passed)
        return live

    def _progress(self, step: list[Slice]) -> Callable[[int, int], None]:
        """The model's ``progress`` callback: stops the call once every request of the step is gone."""
        jobs = [job for job, _, _ in step]

        def check(done: int, total: int) -> None:
            if self._express is not None and threading.current_thread() is self._thread:
                self._yield_to_express(jobs)
            if all(job.abandoned() for job in jobs):
                raise StepAbandoned

        return check

    def _documents(self, job: Job, start: int, end: int) -> list[str | Document]:
        """The documents of ``job[start:end]`` as the model reads them (text in its field, metadata along)."""
        metadata = job.metadata
        return [self._carry(job.texts[i], metadata[i] if metadata else {}) for i in range(start, end)]

    def _call_model(self, step: list[Slice]) -> list[Any]:
        progress = self._progress(step)
        if self.splittable:
            groups = [(job.query, self._documents(job, start, end)) for job, start, end in step]
            return list(self.reranker.score_groups(groups, progress=progress))
        out = []
        for job, start, end in step:  # whole requests (scores that depend on the candidate list, or batching off)
            scores = self.reranker.score(job.query, self._documents(job, start, end), progress=progress)
            out.append(np.asarray(scores, np.float64))
        return out

    def _execute(self, step: list[Slice]) -> None:
        step = self._live(step)
        if not step:
            return
        pairs = sum(end - start for _, start, end in step)
        began = time.monotonic()
        try:
            results = self._call_model(step)
        except Exception as exc:  # noqa: BLE001 - reported to each request of the step, the thread goes on
            self._failed(step, pairs, exc)
            return
        m = self.metrics
        m.batch_seconds.labels(self.name).observe(time.monotonic() - began)
        m.batch_pairs.labels(self.name).observe(pairs)
        m.batch_requests.labels(self.name).observe(len(step))
        m.pairs_scored.labels(self.name).inc(pairs)
        for (job, start, end), scores in zip(step, results):
            self._deliver(job, start, end, scores)

    def _failed(self, step: list[Slice], pairs: int, exc: Exception) -> None:
        """A step's model call raised: stopped for requests that are gone, else each request gets its own answer."""
        if isinstance(exc, StepAbandoned) or all(job.abandoned() for job, _, _ in step):
            logger.debug("model %r stopped a step of %d documents: its requests are gone", self.name, pairs)
            self._live(step)  # answers those whose deadline passed (the others' clients left)
            return
        if len(step) > 1:  # whose input failed? each slice alone, so a neighbour's bad input fails only its owner
            for piece in step:
                self._execute([piece])
            return
        job = step[0][0]
        self._fail(job, exc)  # the route answers 500 (or 400 for bad input) and logs the traceback, once

    def _deliver(self, job: Job, start: int, end: int, scores: Any) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (end - start,) or not np.isfinite(scores).all():
            bad = RankwiseError(
                f"model {self.name!r} returned {scores.shape} scores (NaN or infinite?) for {end - start} documents."
            )
            self._fail(job, bad)
            return
        job.scores[start:end] = scores
        job.done += end - start
        if job.done == job.size and not job.cancelled:
            job.loop.call_soon_threadsafe(settle, job.future, job.scores, None)

    def _fail(self, job: Job, error: BaseException) -> None:
        with self._cond:
            if job in self._ring:  # its other slices will not run
                self._ring.remove(job)
                self._pending -= job.size - job.next
                job.next = job.size
            self._update_gauges()
        job.loop.call_soon_threadsafe(settle, job.future, None, error)
