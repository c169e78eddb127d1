"""Batch re-ranking on Ray Data: the engine of ``rankwise batch --engine ray``, and :class:`Scorer` for your own pipelines.

The engine (:func:`run_shards`) makes a Ray Dataset of the job's pending shards (their specs: positions in the input,
no texts) and maps it with a fixed pool of actors (``map_batches``, one shard per call). Each actor loads the
re-ranker once and runs :func:`rankwise.batch.shards.process_shard` on the shards it is given: it reads the shard's
groups straight from the input with pyarrow, scores each group alone and writes ``shards/part-NNNNN.parquet``
atomically. So the files are the local engine's, byte for byte, and the texts never pass through Ray's object store.
The input and the output folder must be visible at the same path on every node (one machine, or a shared
filesystem).

Faults: an actor lost with its node (or its process) is recreated on a node that is left, where it loads the model
again, and the shard it was running is run again there. Two Ray settings, chosen on purpose:

* ``max_task_retries=-1``: for the seconds Ray takes to declare a node dead, calls to its actors fail at once as
  "unavailable"; a finite count is spent in that window (3 retries were gone before the actor could be recreated,
  in tests/test_distributed_ray_fault.py), so the shard waits for its actor instead, however long that takes.
* ``max_restarts=`` :data:`MAX_ACTOR_RESTARTS`: what bounds the job instead. A shard that kills its actor every time
  (out of memory on one huge group) costs one restart per try, and the job fails after that many, rather than loop.

A rerun rewrites the same file name from the same input, and a shard is written with one ``os.replace``, so no group
is lost or written twice; a job that fails anyway keeps its finished shards and is finished by ``--resume``.

Example (your own pipeline; ``pip install 'rankwise[ray]'``):
    >>> import ray                                                                  # doctest: +SKIP
    >>> from rankwise.distributed.ray import Scorer                                 # doctest: +SKIP
    >>> ds = ray.data.read_parquet("pairs.parquet")   # query_id, query, doc_id, text  # doctest: +SKIP
    >>> ranked = ds.groupby("query_id").map_groups(                                 # doctest: +SKIP
    ...     Scorer, fn_constructor_args=("./my-cross-encoder",), fn_constructor_kwargs={"top_k": 10},
    ...     batch_format="pyarrow", concurrency=2, num_cpus=1)   # leave a CPU free for the groupby's shuffle
    >>> ranked.write_parquet("ranked/")                                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import pickle
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rankwise.batch.inputs import InputSource
from rankwise.batch.shards import ShardSpec, ShardSummary, process_shard
from rankwise.distributed._scoring import OUTPUT_COLUMNS, score_table, to_table
from rankwise.distributed._session import ray_session
from rankwise.errors import InvalidInputError, RankwiseError, require

logger = logging.getLogger(__name__)

MAX_ACTOR_RESTARTS = 10
"""How often Ray recreates one engine actor (its node lost, its process killed) before the job fails."""
__all__ = ["MAX_ACTOR_RESTARTS", "OUTPUT_COLUMNS", "Scorer", "check_engine_settings", "run_shards"]

_SUMMARY_FIELDS = ("index", "groups", "pairs", "rejects", "seconds", "rows")


def _load(model: str, backend: str | None, options: Mapping[str, Any]) -> Any:
    from rankwise.registry import load

    return load(model, backend=backend, **actor_options(model, backend, options))


def actor_options(model: str, backend: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options``, plus ``threads`` = the CPUs Ray reserved for this actor, when run in a Ray actor whose backend
    takes ``threads`` and none was given.

    Why: a backend's default is every CPU the process may use, and Ray does not pin actors to cores, so two 1-CPU
    actors on a 2-core machine would each start 2 threads and fight over the cores. Thread counts never change the
    scores (checked on the ONNX int8 and torch cross-encoders), so the output stays the local engine's.
    """
    options = dict(options)
    ray = sys.modules.get("ray")  # not imported: not in a Ray worker
    if "threads" in options or ray is None or not ray.is_initialized():
        return options
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
    except Exception:  # noqa: BLE001 - the driver, or a Ray without this API: keep the backend's default
        return options
    if cpus >= 1:
        from rankwise.registry import options_of

        accepted = options_of(model, backend)
        if accepted is not None and "threads" in accepted:
            options["threads"] = int(cpus)
    return options


class _ShardActor:
    """One actor of the engine's pool: the re-ranker, loaded once, and ``process_shard`` for each shard it is sent."""

    def __init__(
        self,
        source: InputSource,
        out_dir: str,
        model: str,
        backend: str | None,
        options: Mapping[str, Any],
        top_k: int | None,
    ) -> None:
        self.source, self.out_dir, self.top_k = source, Path(out_dir), top_k
        self.reranker: Any = None
        self.failed: RankwiseError | None = None
        try:
            self.reranker = _load(model, backend, options)
        except RankwiseError as exc:  # reported with the first shard (see __call__)
            self.failed = exc

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        # A RankwiseError (a model that does not load, an unusable option) comes back as data, pickled, and the driver
        # raises it as it was: raised here, Ray would hand the driver its own wrapper with the message buried in a
        # remote traceback (and a failing constructor would be retried first).
        out: dict[str, list[Any]] = {name: [] for name in (*_SUMMARY_FIELDS, "error")}
        for blob in batch["spec"]:
            spec: ShardSpec = pickle.loads(blob)  # written by run_shards in this job: trusted
            try:
                if self.failed is not None:
                    raise self.failed
                summary = process_shard(self.reranker, self.source, spec, self.out_dir, self.top_k)
            except RankwiseError as exc:
                summary, error = ShardSummary(spec.index, 0, 0, 0, 0.0), pickle.dumps(exc)
            else:
                error = b""
            for name in _SUMMARY_FIELDS:
                out[name].append(getattr(summary, name))
            out["error"].append(error)
        return out


def check_engine_settings(actors: Any, cpus_per_actor: Any, gpus_per_actor: Any) -> None:
    """Refuse an actor count below 1 or negative CPUs/GPUs, naming the value."""
    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise InvalidInputError(f"actors must be an integer >= 1, got {actors!r}.")
    for name, value in (("cpus_per_actor", cpus_per_actor), ("gpus_per_actor", gpus_per_actor)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidInputError(f"{name} must be a number >= 0, got {value!r}.")


def _check_fits(ray: Any, actors: int, cpus: float, gpus: float, local: bool) -> None:
    """A fixed pool that cannot be placed would wait forever: refuse it on a local Ray, warn on a cluster (an
    autoscaler may add nodes)."""
    have = ray.cluster_resources()
    short = [
        f"{actors} x {per:g} {kind} = {actors * per:g} {kind}, the cluster has {have.get(kind, 0):g}"
        for kind, per in (("CPU", cpus), ("GPU", gpus))
        if actors * per > have.get(kind, 0)
    ]
    if not short:
        return
    message = f"the actor pool does not fit: {'; '.join(short)}. Lower --actors or --cpus-per-actor/--gpus-per-actor"
    if local:
        raise InvalidInputError(message + ".")
    logger.warning("%s, or add nodes (the job waits until they come).", message)


def run_shards(
    source: InputSource,
    specs: Sequence[ShardSpec],
    out_dir: Path,
    *,
    model: str,
    backend: str | None,
    options: Mapping[str, Any],
    top_k: int | None,
    actors: int,
    cpus_per_actor: float,
    gpus_per_actor: float,
    address: str | None,
    on_done: Callable[[ShardSummary], None] | None = None,
) -> list[ShardSummary]:
    """Run ``specs`` on a pool of ``actors`` Ray actors; the summaries, by shard index.

    Writes the same files as the local engine (``process_shard`` in each actor). ``on_done`` is called in this
    process as each shard finishes (in completion order). ``address`` joins a running cluster; without it a local
    Ray with this machine's CPUs is started and stopped (or the Ray this process already runs is used).

    Raises:
        InvalidInputError: bad actor settings, a pool that cannot fit on a local Ray, or a Ray that cannot start.
    """
    check_engine_settings(actors, cpus_per_actor, gpus_per_actor)
    specs = list(specs)
    if not specs:
        return []
    data = require("ray.data", "ray", "The Ray batch engine")
    constructor = {
        "source": source,
        "out_dir": str(Path(out_dir).resolve()),
        "model": model,
        "backend": backend,
        "options": dict(options),
        "top_k": top_k,
    }
    cpus, gpus = float(cpus_per_actor), float(gpus_per_actor)
    with ray_session(address, purpose="The Ray batch engine"):
        import ray

        _check_fits(ray, actors, cpus, gpus, local=address is None)
        context = data.DataContext.get_current()
        bars, context.enable_progress_bars = context.enable_progress_bars, False  # rankwise reports progress
        try:
            # one block per shard, so the pool hands shards out one at a time
            dataset = data.from_items([{"spec": pickle.dumps(s)} for s in specs], override_num_blocks=len(specs))
            summaries = _collect(_map(data, dataset, constructor, actors, cpus, gpus), on_done)
        finally:
            context.enable_progress_bars = bars
    return sorted(summaries, key=lambda s: s.index)


def _map(data: Any, dataset: Any, constructor: dict[str, Any], actors: int, cpus: float, gpus: float) -> Any:
    """The dataset of shard specs mapped by the actor pool (lazy: runs as :func:`_collect` reads it)."""
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for max_restarts/max_task_retries and warns that remote args passed this
        # way go in 2.64; until then it is the only way to set them (the module docstring says why these values)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(
            _ShardActor,
            batch_size=1,
            batch_format="numpy",
            compute=data.ActorPoolStrategy(size=actors),
            num_cpus=cpus,
            num_gpus=gpus,
            fn_constructor_kwargs=constructor,
            max_restarts=MAX_ACTOR_RESTARTS,
            max_task_retries=-1,
        )


def _collect(mapped: Any, on_done: Callable[[ShardSummary], None] | None) -> list[ShardSummary]:
    """Run the job and read the summaries as shards finish (each is reported once its file is written)."""
    summaries = []
    for row in mapped.iter_rows():
        if row["error"]:
            raise pickle.loads(row["error"])  # an actor's RankwiseError, pickled in this job by _ShardActor
        # numpy scalars from the dataset -> plain Python numbers
        summary = ShardSummary(**{name: (float if name == "seconds" else int)(row[name]) for name in _SUMMARY_FIELDS})
        summaries.append(summary)
        if on_done is not None:
            on_done(summary)
    return summaries


# -- Scorer: rankwise inside a user's own Ray Data pipeline ------------------------------------------------------
class Scorer:
    """A Ray Data callable class that re-ranks query groups: ``ds.groupby("query_id").map_groups(Scorer, ...)``.

    Rows are pairs, as in a batch job's Parquet input: ``query_id``, ``query``, ``doc_id``, ``text`` (plus
    ``title`` and any other columns; ``fields`` picks the ones the model reads). Each actor loads the re-ranker once.
    Each call returns its rows with three more columns: ``score`` (float64) and ``rank`` (int32, 1 = best) for scored
    rows, ordered by rank within each query (the best ``top_k`` only, when given), and ``reject_reason`` for rows that
    cannot be scored (no text, a duplicate doc id, a query id that is not a string...), which are kept, after the
    scored rows of their query, with a null score and rank. The rules and the scores are those of ``rankwise batch``.

    A batch holding several queries is split by ``query_id``; a query split over two batches would be ranked in two
    parts, hence ``groupby("query_id").map_groups``. Size the pool so that some CPU stays free: the groupby's shuffle
    runs as tasks, and actors holding every CPU would leave it waiting forever.

    Args:
        model: what :func:`rankwise.load` takes (a preset, a folder, a hub name).
        backend: the backend, as for :func:`rankwise.load`.
        fields: the document fields the model reads (default: title and text).
        top_k: keep each query's best ``top_k`` rows (rejected rows are always kept).
        keep_columns: keep every input column (default); False keeps ``query_id`` and ``doc_id`` only.
        **options: the backend's options (``quantize="int8"``, ``max_length=256``...).
    """

    def __init__(
        self,
        model: str,
        *,
        backend: str | None = None,
        fields: Sequence[str] | None = None,
        top_k: int | None = None,
        keep_columns: bool = True,
        **options: Any,
    ) -> None:
        from rankwise._validation import check_fields, check_top_k

        self.fields = tuple(check_fields(fields)) if fields is not None else None
        self.top_k = check_top_k(top_k)
        self.keep_columns = bool(keep_columns)
        self.reranker = _load(model, backend, options)

    def __call__(self, batch: Any) -> Any:
        """Score ``batch`` (a pyarrow Table, a pandas DataFrame or a dict of columns); a pyarrow Table back."""
        table = to_table(batch)
        return score_table(self.reranker, table, self.fields, self.top_k, self.keep_columns)
