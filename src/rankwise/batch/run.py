"""``rerank_dataset``: re-rank a whole dataset into Parquet shards, resumable, on this machine or on Ray.

Example:
    >>> from rankwise.batch import rerank_dataset                                   # doctest: +SKIP
    >>> report = rerank_dataset("groups.jsonl", "out", "bm25", top_k=10, trec="out/run.trec")  # doctest: +SKIP
    >>> print(report.summary())                                                     # doctest: +SKIP
    1200 groups, 120000 pairs scored, 3 rejects (out/rejects), 3 shards, 12000 rows in 41s (2926 pairs/s)
    >>> import pyarrow.dataset as ds                                                # doctest: +SKIP
    >>> ds.dataset("out/shards").to_table().num_rows                                # doctest: +SKIP
    12000
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankwise._validation import check_top_k
from rankwise.batch._beir import index_paths
from rankwise.batch._files import lock_file, remove_temporary
from rankwise.batch._manifest import check_folder, job_settings, start_job, write_manifest
from rankwise.batch.inputs import InputSource, open_input
from rankwise.batch.outputs import count_lines, export_jsonl, export_trec
from rankwise.batch.progress import BatchProgress, Tracker
from rankwise.batch.shards import (
    DEFAULT_SHARD_PAIRS,
    ShardSpec,
    ShardSummary,
    check_shard_pairs,
    finished_summary,
    plan_shards,
    prepare_input,
    process_shard,
)
from rankwise.errors import InvalidInputError
from rankwise.progress import format_duration
from rankwise.rerankers.base import Reranker

ENGINES = ("local", "ray")

_Engine = Callable[[InputSource, list[ShardSpec], Path, Tracker], list[ShardSummary]]
"""``run(source, pending, out, tracker)``: scores a job's pending shards; the summaries of those it finished."""


@dataclass(frozen=True)
class BatchReport:
    """What a batch job did, over the whole job (shards finished by an earlier run included).

    Attributes:
        output_dir: the job's folder; ``output_dir / "shards"`` is the Parquet dataset.
        groups, pairs: groups and candidates scored; rows: rows written (fewer with ``top_k``).
        rejects: lines in ``output_dir / "rejects"`` (input units not scored, each with its reason).
        shards: shards of the job; shards_resumed: those an earlier run had finished (skipped now).
        seconds: this call's wall time.
        trec, jsonl: the exports written, if any.
    """

    output_dir: Path
    groups: int
    pairs: int
    rows: int
    rejects: int
    shards: int
    shards_resumed: int
    seconds: float
    trec: Path | None = None
    jsonl: Path | None = None

    def summary(self) -> str:
        """One line: counts, rejects, time."""
        resumed = f" ({self.shards_resumed} finished earlier)" if self.shards_resumed else ""
        rejects = f" ({self.output_dir / 'rejects'})" if self.rejects else ""
        return (
            f"{self.groups} groups, {self.pairs} pairs scored, {self.rejects} rejects{rejects}, "
            f"{self.shards} shards{resumed}, {self.rows} rows in {self.output_dir / 'shards'}, "
            f"done in {format_duration(self.seconds)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _check_engine(engine: str, actors: int, cpus: float, gpus: float, model: Any) -> None:
    if engine not in ENGINES:
        raise InvalidInputError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise InvalidInputError(f"actors must be an integer >= 1, got {actors!r}.")
    for name, value in (("cpus_per_actor", cpus), ("gpus_per_actor", gpus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidInputError(f"{name} must be a number >= 0, got {value!r}.")
    if engine == "ray" and isinstance(model, Reranker):
        raise InvalidInputError(
            "engine='ray' loads the model in each actor: pass its name or folder (and backend/options), "
            "not a Reranker instance."
        )


def rerank_dataset(
    input: str | Path,
    output_dir: str | Path,
    model: str | Path | Reranker,
    *,
    backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    top_k: int | None = None,
    input_format: str | None = None,
    fields: tuple[str, ...] | list[str] | None = None,
    shard_pairs: int = DEFAULT_SHARD_PAIRS,
    resume: bool = False,
    engine: str = "local",
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    ray_address: str | None = None,
    trec: str | Path | None = None,
    jsonl: str | Path | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
) -> BatchReport:
    """Re-rank every query group of ``input`` with ``model`` into Parquet shards under ``output_dir``.

    Args:
        input: a BEIR folder (or its run file), a JSONL file of groups, or a Parquet file of pairs (docs/batch.md).
        output_dir: a new or empty folder, or the folder of the job to resume.
        model: a preset or model name/folder (``rankwise.load``), or a Reranker (local engine only).
        backend, options: as ``rankwise.load(model, backend, **options)``.
        top_k: keep each query's best ``top_k`` rows (all when None).
        input_format: ``"beir"``, ``"jsonl"``, ``"parquet"``, or None to sniff it.
        fields: the document fields that form the text the model reads.
        shard_pairs: pairs per shard (the unit of resume and of distribution).
        resume: continue the job in ``output_dir``: finished shards are skipped; its settings must match.
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data actors; ``pip install 'rankwise[ray]'``), with
            ``actors``, ``cpus_per_actor``, ``gpus_per_actor`` and ``ray_address`` (None: a local Ray).
        trec, jsonl: also write the results as a TREC run / JSONL (one line per query) at these paths.
        progress: called with a :class:`BatchProgress` as work is done.

    Raises:
        InvalidInputError: a bad argument, an unusable input or output folder, or a resume whose settings differ
            (:class:`~rankwise.batch._manifest.SettingsMismatchError` names the setting). Bad input *records* never
            raise: they are written to ``output_dir/rejects`` and counted.
    """
    started = time.monotonic()
    _check_engine(engine, actors, cpus_per_actor, gpus_per_actor, model)
    top_k, shard_pairs = check_top_k(top_k), check_shard_pairs(shard_pairs)
    source = open_input(input, input_format, fields=fields)
    options = dict(options or {})
    name = model.name if isinstance(model, Reranker) else str(model)
    settings = job_settings(source, name, backend, options, top_k, shard_pairs)
    ray = {"actors": actors, "cpus": cpus_per_actor, "gpus": gpus_per_actor, "address": ray_address}
    # The model loads before anything is written: a wrong name or option leaves no half-started job behind.
    run = _engine(engine, model, name, backend, options, top_k, ray)
    with _job_folder(output_dir) as out:
        manifest = start_job(out, settings, resume)
        specs, summaries, resumed = _run_shards(source, out, shard_pairs, run, progress)
        report = _report(out, source, specs, summaries, resumed, started, name, trec, jsonl)
        write_manifest(out, {**manifest, "status": "complete", "shards": len(specs), "report": report.to_dict()})
    return report


def _engine(
    engine: str, model: Any, name: str, backend: str | None, options: dict[str, Any], top_k: int | None,
    ray: dict[str, Any],
) -> _Engine:
    """How the job's shards will run: the local engine with the model loaded now, or Ray's actor pool
    (``ray``: actors, cpus, gpus, address), which loads the model in each actor."""
    if engine == "ray":
        return lambda source, pending, out, tracker: _run_ray(
            source, pending, out, name, backend, options, top_k, tracker, **ray
        )
    reranker = _load(model, backend, options)
    return lambda source, pending, out, tracker: _run_local(source, pending, out, reranker, top_k, tracker)


@contextmanager
def _job_folder(output_dir: str | Path) -> Iterator[Path]:
    """The job's folder, resolved, created and locked for this run (a second run on it fails at once)."""
    out = Path(output_dir).expanduser().resolve()
    check_folder(out)  # before the lock file: a folder that is not ours is left untouched
    out.mkdir(parents=True, exist_ok=True)
    with lock_file(out / ".lock", wait=False, holder=str(out)):
        yield out


def _run_shards(
    source: InputSource, out: Path, shard_pairs: int, run: _Engine,
    progress: Callable[[BatchProgress], None] | None,
) -> tuple[list[ShardSpec], dict[int, ShardSummary], int]:
    """Plan the job's shards and run those not finished yet: the shards, every shard's summary, and how many
    an earlier run had finished."""
    specs, done = _plan(source, out, shard_pairs)
    tracker = Tracker(specs, done, progress)
    new = run(source, [s for s in specs if s.index not in done], out, tracker)
    return specs, {**done, **{s.index: s for s in new}}, len(done)


def _load(model: Any, backend: str | None, options: dict[str, Any]) -> Reranker:
    if isinstance(model, Reranker):
        return model
    from rankwise._hub import hub_errors
    from rankwise.registry import load

    what = "a cross-encoder" if backend in (None, "cross-encoder", "onnx") else f"a {backend} model"
    with hub_errors(str(model), what):  # an unreachable hub name: the library's one-line error
        return load(model, backend=backend, **options)


def _plan(source: InputSource, out: Path, shard_pairs: int) -> tuple[list[ShardSpec], dict[int, ShardSummary]]:
    """The job's shards, and the summaries of those already finished (their Parquet file exists)."""
    for folder in (out, out / "shards", out / "rejects", out / "index"):
        remove_temporary(folder)  # what a killed run was writing
    specs = list(plan_shards(source, shard_pairs))
    prepare_input(source, out)
    done = {s.index: summary for s in specs if (summary := finished_summary(out, s.index)) is not None}
    return specs, done


def _run_local(
    source: InputSource, pending: list[ShardSpec], out: Path, reranker: Reranker, top_k: int | None,
    tracker: Tracker,
) -> list[ShardSummary]:
    """The local engine: one model, the pending shards in order."""
    summaries = []
    for spec in pending:
        summary = process_shard(reranker, source, spec, out, top_k, progress=tracker.within(spec))
        tracker.shard_done(spec, summary)
        summaries.append(summary)
    return summaries


def _run_ray(
    source: InputSource, pending: list[ShardSpec], out: Path, model: str, backend: str | None,
    options: dict[str, Any], top_k: int | None, tracker: Tracker, *, actors: int, cpus: float, gpus: float,
    address: str | None,
) -> list[ShardSummary]:
    """The Ray engine (rankwise.distributed.ray): the same shards, run by an actor pool."""
    if not pending:
        return []
    from rankwise.distributed.ray import run_shards

    by_index = {s.index: s for s in pending}
    return run_shards(
        source, pending, out, model=model, backend=backend, options=options, top_k=top_k, actors=actors,
        cpus_per_actor=cpus, gpus_per_actor=gpus, address=address,
        on_done=lambda summary: tracker.shard_done(by_index[summary.index], summary),
    )


def _report(
    out: Path, source: InputSource, specs: list[ShardSpec], summaries: dict[int, ShardSummary], resumed: int,
    started: float, name: str, trec: str | Path | None, jsonl: str | Path | None,
) -> BatchReport:
    """Write the exports and count the whole job."""
    indices = [s.index for s in specs]
    trec_path = export_trec(out, indices, trec, tag=name) if trec is not None else None
    jsonl_path = export_jsonl(out, indices, jsonl) if jsonl is not None else None
    index_rejects = sum(count_lines(r) for _, r in index_paths(out).values()) if source.kind == "beir" else 0
    return BatchReport(
        output_dir=out,
        groups=sum(s.groups for s in summaries.values()),
        pairs=sum(s.pairs for s in summaries.values()),
        rows=sum(s.rows for s in summaries.values()),
        rejects=sum(s.rejects for s in summaries.values()) + index_rejects,
        shards=len(specs),
        shards_resumed=resumed,
        seconds=time.monotonic() - started,
        trec=trec_path,
        jsonl=jsonl_path,
    )
