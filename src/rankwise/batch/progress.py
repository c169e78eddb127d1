"""Progress of a batch job: what ``rerank_dataset(progress=...)`` receives, and the CLI's reporter for it.

Example:
    >>> def show(p: BatchProgress) -> None:
    ...     print(f"{p.pairs_done}/{p.pairs_total} pairs, ETA {p.eta_s}")
    >>> # rerank_dataset("groups.jsonl", "out", "bm25", progress=show)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot of a batch job. Counts cover the whole job, shards finished by an earlier run included
    (``pairs_resumed`` of them); the rate and the ETA come from this run's work only.

    ``pairs_done`` counts the candidates of the groups scored so far (a shard's rejects are added when it ends).
    """

    groups_done: int
    groups_total: int
    pairs_done: int
    pairs_total: int
    rejects: int
    shards_done: int
    shards_total: int
    pairs_resumed: int
    elapsed_s: float

    @property
    def pairs_per_s(self) -> float:
        """Pairs per second in this run (0.0 before the first group)."""
        done = self.pairs_done - self.pairs_resumed
        return done / self.elapsed_s if self.elapsed_s > 0 and done > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at this run's rate; None before there is a rate."""
        rate = self.pairs_per_s
        return max(self.pairs_total - self.pairs_done, 0) / rate if rate > 0 else None


class Tracker:
    """Counts a job's work from its shard specs and reports :class:`BatchProgress` to a callback.

    The local engine reports after each group (``within(spec)``), a distributed one after each shard
    (``shard_done``); both may call from worker threads.
    """

    def __init__(
        self,
        specs: list[Any],
        done: dict[int, Any],
        callback: Callable[[BatchProgress], None] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.callback, self.clock, self.started = callback, clock, clock()
        self.groups_total = sum(s.groups for s in specs)
        self.pairs_total = sum(s.pairs for s in specs)
        self.shards_total = len(specs)
        finished = [s for s in specs if s.index in done]
        self.groups = sum(s.groups for s in finished)
        self.pairs = self.resumed = sum(s.pairs for s in finished)
        self.rejects = sum(done[s.index].rejects for s in finished)
        self.shards = len(finished)
        self._inner = (0, 0)  # groups and pairs of the shard running now (local engine)
        self._lock = threading.Lock()

    def snapshot(self) -> BatchProgress:
        groups, pairs = self._inner
        return BatchProgress(
            groups_done=self.groups + groups,
            groups_total=self.groups_total,
            pairs_done=self.pairs + pairs,
            pairs_total=self.pairs_total,
            rejects=self.rejects,
            shards_done=self.shards,
            shards_total=self.shards_total,
            pairs_resumed=self.resumed,
            elapsed_s=self.clock() - self.started,
        )

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())

    def within(self, spec: Any) -> Callable[[int, int], None]:
        """The ``progress(groups, pairs)`` callback for the shard ``spec`` while it runs."""

        def inner(groups: int, pairs: int) -> None:
            with self._lock:
                self._inner = (groups, pairs)
                self._report()

        return inner

    def shard_done(self, spec: Any, summary: Any) -> None:
        """Count a finished shard in full: its groups and pairs as planned (rejected ones included)."""
        with self._lock:
            self._inner = (0, 0)
            self.groups += spec.groups
            self.pairs += spec.pairs
            self.rejects += summary.rejects
            self.shards += 1
            self._report()


def cli_reporter(reporter: Any) -> Callable[[BatchProgress], None]:
    """A ``progress=`` callback that drives a :class:`rankwise.progress.ProgressReporter` counting pairs: the bar or
    log line shows pairs done, pairs/s and the ETA of this run, with groups done and rejects in its description."""

    def show(p: BatchProgress) -> None:
        reporter.desc = f"{p.groups_done}/{p.groups_total} groups, {p.rejects} rejects"
        reporter(p.pairs_done - p.pairs_resumed, p.pairs_total - p.pairs_resumed)

    return show
