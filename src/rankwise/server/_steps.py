"""What the dynamic batcher's next step takes from its ring of waiting requests
(:mod:`rankwise.server.batcher`).

Each function takes documents off the ring and marks them handed out (``job.next``); the caller holds the
scheduler's lock and subtracts what was taken from its count of waiting documents.
"""

from __future__ import annotations

from collections import deque

from rankwise.server._jobs import Job

Slice = tuple[Job, int, int]
"""``(job, start, end)``: the documents ``start:end`` of one request, scored in one step."""


def take_whole(ring: deque[Job]) -> list[Slice]:
    """The oldest request, all its documents not yet handed out (models scored one whole request at a time)."""
    job = ring.popleft()
    step = [(job, job.next, job.size)]
    job.next = job.size
    return step


def take_chunks(ring: deque[Job], max_pairs: int, chunk_pairs: int) -> list[Slice]:
    """Chunks taken in passes over the waiting requests, until the step holds ``max_pairs`` documents.

    Each pass visits the requests in arrival order and takes at most ``chunk_pairs`` documents from each. So
    no request gets more than its turn while others wait (a huge request cannot starve small ones), and among
    equals the oldest finish first (not all together at the end).
    """
    budget = max_pairs
    slices: dict[Job, list[int]] = {}
    while ring and budget > 0:
        for job in ring:
            take = min(job.size - job.next, chunk_pairs, budget)
            bounds = slices.setdefault(job, [job.next, job.next])
            bounds[1] += take
            job.next += take
            budget -= take
            if budget == 0:
                break
        waiting = [j for j in ring if j.next < j.size]  # fully handed out: leave the queue, order kept
        ring.clear()
        ring.extend(waiting)
    return [(job, start, end) for job, (start, end) in slices.items()]


def take_express(ring: deque[Job], most: int) -> Job | None:
    """The oldest untouched request of at most ``most`` documents, taken off the ring whole (express lane)."""
    for job in ring:
        if job.next == 0 and job.size <= most:
            ring.remove(job)
            job.next = job.size
            return job
    return None
