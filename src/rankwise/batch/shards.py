"""Shards: the unit of work of a batch job. Plan them, read one, score it, write it.

A shard is a run of consecutive query groups of the input. It closes once it holds ``shard_pairs`` pairs (a line
that lists no candidate counts as one), always at a group boundary, so a query's candidates stay together. The
boundaries depend only on the input and ``shard_pairs``: a rerun or a resume, on any engine, sees the same shards.

Each shard writes ``rejects/part-NNNNN.jsonl`` (when it has rejects) and then ``shards/part-NNNNN.parquet``, each
atomically; the Parquet file existing is the proof the shard is done. Each group is scored alone
(``reranker.score(query, documents)``), so its scores never depend on its neighbours or on the engine.

Example:
    >>> from rankwise.batch.inputs import open_input                   # doctest: +SKIP
    >>> source = open_input("groups.jsonl")                            # doctest: +SKIP
    >>> [s.pairs for s in plan_shards(source, shard_pairs=1000)]       # doctest: +SKIP
    [1000, 1000, 412]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankwise._validation import check_top_k
from rankwise.batch import _beir, _jsonl, _parquet
from rankwise.batch._index import SeenKeys
from rankwise.batch.inputs import Group, InputSource, Reject, Unit
from rankwise.batch.outputs import open_shard, read_shard_counts, write_rejects
from rankwise.errors import InvalidInputError, RankwiseError
from rankwise.rerankers.base import Reranker

DEFAULT_SHARD_PAIRS = 50_000
_READERS: dict[str, Any] = {"jsonl": _jsonl, "beir": _beir, "parquet": _parquet}


@dataclass(frozen=True)
class ShardSpec:
    """One shard, without texts (small and picklable).

    Attributes:
        index: its number, from 0 (``part-{index:05d}``).
        start, stop: where it starts and ends: byte offsets (JSONL, run file) or row numbers (Parquet).
        groups: the groups (JSONL lines, runs of a query's lines or rows) it holds; pairs: their candidates.
        line: the line (or row) number at ``start``, for the ``where`` of rejects.
        strays: ``(position, first line or row)`` of each group whose query id came earlier in the input: those
            rows are rejected (a query's rows must be contiguous), never merged or lost.
    """

    index: int
    start: int
    stop: int
    groups: int
    pairs: int
    line: int = 1
    strays: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ShardSummary:
    """What a finished shard reports: groups and pairs scored, rejects written, seconds taken, rows written (fewer
    than ``pairs`` with ``top_k``)."""

    index: int
    groups: int
    pairs: int
    rejects: int
    seconds: float
    rows: int = 0


class _Open:
    """The shard being planned."""

    def __init__(self, index: int, unit: Unit) -> None:
        self.index, self.start, self.line = index, unit.start, unit.line
        self.stop = self.groups = self.pairs = self.weight = 0
        self.strays: list[tuple[int, int]] = []

    def add(self, unit: Unit, first: int | None) -> None:
        self.stop, self.groups, self.pairs = unit.stop, self.groups + 1, self.pairs + unit.pairs
        self.weight += max(1, unit.pairs)  # a line without candidates still takes a slot: shards stay bounded
        if first is not None:
            self.strays.append((unit.start, first))

    def spec(self) -> ShardSpec:
        return ShardSpec(
            self.index, self.start, self.stop, self.groups, self.pairs, self.line, tuple(self.strays)
        )


def check_shard_pairs(shard_pairs: Any) -> int:
    """``shard_pairs`` when it is an integer >= 1, else :class:`InvalidInputError`."""
    if isinstance(shard_pairs, bool) or not isinstance(shard_pairs, int) or shard_pairs < 1:
        raise InvalidInputError(f"shard_pairs must be an integer >= 1, got {shard_pairs!r}.")
    return shard_pairs


def plan_shards(source: InputSource, shard_pairs: int = DEFAULT_SHARD_PAIRS) -> Iterator[ShardSpec]:
    """The shards of ``source``, in input order, from one streaming pass (memory does not grow with the input:
    query ids already seen are kept in a temporary sqlite file). An empty input gives one empty shard.

    Raises:
        InvalidInputError: ``shard_pairs`` is not an integer >= 1.
    """
    check_shard_pairs(shard_pairs)
    reader = _READERS[source.kind]
    with SeenKeys() as seen:
        current: _Open | None = None
        index = 0
        for unit in reader.scan(source):
            if current is None:
                current = _Open(index, unit)
            current.add(unit, None if unit.key is None else seen.first(unit.key, unit.line))
            if current.weight >= shard_pairs:
                yield current.spec()
                current, index = None, index + 1
        if current is not None:
            yield current.spec()
        elif index == 0:  # an empty input is one empty shard: the output dataset still has its schema
            yield ShardSpec(0, 0, 0, 0, 0)


def prepare_input(source: InputSource, out_dir: str | Path) -> None:
    """Build what reading needs once per job before shards run (a BEIR folder's id -> offset indexes, kept in
    ``out_dir/index``). :func:`process_shard` builds it too when missing, so calling this is an optimisation that
    keeps the work (and its time) in one process."""
    if source.kind == "beir":
        _beir.prepare(source, Path(out_dir))


def read_shard(source: InputSource, spec: ShardSpec, out_dir: str | Path) -> Iterator[Group | Reject]:
    """The groups of one shard in input order, each preceded by the rejects of its unusable lines or rows."""
    return _READERS[source.kind].read(source, spec, Path(out_dir))


def process_shard(
    reranker: Reranker,
    source: InputSource,
    spec: ShardSpec,
    out_dir: Path,
    top_k: int | None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ShardSummary:
    """Score one shard and write its files (rejects, then the Parquet shard, each atomically).

    Each group is scored alone. A group the re-ranker refuses (a :class:`~rankwise.errors.RankwiseError`, e.g. a NaN
    score) becomes rejects with the re-ranker's message; any other error is a bug or an outage and propagates (the
    shard is not written, so a resume redoes it). ``progress(groups, pairs)`` is called after each group.
    """
    started = time.perf_counter()
    top_k = check_top_k(top_k)
    out_dir = Path(out_dir)
    rejects: list[Reject] = []
    groups = pairs = 0
    with open_shard(out_dir, spec.index) as writer:
        for item in read_shard(source, spec, out_dir):
            if isinstance(item, Reject):
                rejects.append(item)
                continue
            try:
                scores = reranker.score(item.query, item.documents)
            except RankwiseError as exc:
                rejects.extend(item.reject(f"the re-ranker refused this group: {exc}"))
                continue
            writer.add(item.query_id, item.doc_ids, scores, top_k)
            groups, pairs = groups + 1, pairs + len(item.documents)
            if progress is not None:
                progress(groups, pairs)
        write_rejects(out_dir, spec.index, rejects)  # before the shard appears: a done shard has its rejects
        writer.finish({"groups": groups, "pairs": pairs, "rejects": len(rejects)})
    return ShardSummary(spec.index, groups, pairs, len(rejects), time.perf_counter() - started, writer.rows)


def finished_summary(out_dir: str | Path, index: int) -> ShardSummary | None:
    """The summary of shard ``index`` when its Parquet file exists (a done shard), else None; ``seconds`` is 0.0
    (the time of an earlier run is not kept)."""
    counts = read_shard_counts(Path(out_dir), index)
    if counts is None:
        return None
    return ShardSummary(index, counts["groups"], counts["pairs"], counts["rejects"], 0.0, counts["rows"])
