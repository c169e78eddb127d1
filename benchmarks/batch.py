"""Batch re-ranking: the local engine vs the Ray engine, memory vs input size, resume after a kill, scaling on paper.

One run measures, on this machine (2 cores here), and writes benchmarks/results/batch.json:

1. engines: the same 5,000 SciFact pairs (the first 50 test queries x their BM25 top-100: the evaluation's cached
   first-stage run, rankwise.evaluation.first_stage) as BEIR inputs, re-ranked by the MiniLM-shaped cross-encoder
   (benchmarks/throughput.py's model; ONNX int8, truncated at 512 tokens) with ``rerank_dataset`` on the local engine
   and on the Ray engine (1 actor x 2 CPUs: the same 2 cores), shards of 500 pairs, in two halves run local, ray |
   ray, local; throughput ratio ray/local, and whether the shard files (so the scores) are identical byte for byte.
   Ray's startup is timed apart.
2. Ray's per-task overhead: a Ray Data actor pool running no-op tasks, 1 block per task.
3. memory: peak RSS (ru_maxrss) of the local engine on 10k vs 1M BM25-scored pairs (synthetic SciFact groups,
   benchmarks/_batch_data.py), each job in its own process.
4. resume: a BM25 job killed with SIGKILL once half its shards are written, then resumed: time of the resumed part vs
   an uninterrupted run, shards recomputed (must be 0), output identical to the uninterrupted run's.
5. I/O rates of one process (planning, reading a shard, writing one), and a scaling table for N machines computed
   from the measured per-actor throughput and per-task overhead, with its assumptions.

    python benchmarks/batch.py            # full size (~15 min on 2 quiet cores) -> benchmarks/results/batch.json
    python benchmarks/batch.py --quick    # small sizes, to prove it runs -> benchmarks/results/batch_quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # throughput.py, _batch_data.py

from _report import code_version, machine_info, write_report
from throughput import CACHE, DATA, RESULTS, model_folder

FULL = {"queries": 50, "shard_pairs": 500, "rss_pairs": (10_000, 1_000_000), "resume_pairs": 100_000,
        "resume_shard": 5_000, "noop_tasks": 200}
QUICK = {"queries": 4, "shard_pairs": 100, "rss_pairs": (2_000, 20_000), "resume_pairs": 10_000,
         "resume_shard": 1_000, "noop_tasks": 20}
PER_QUERY = 100


def onnx_options() -> dict[str, Any]:
    """throughput.py's onnx_int8 configuration (threads: the engine's default, i.e. the CPUs it may use)."""
    return {"quantize": "int8", "overflow": "truncate", "max_length": 512, "cache_dir": str(CACHE / "onnx")}


def scifact_input(folder: Path, queries: int, skip: int = 0) -> Path:
    """A BEIR folder of SciFact test queries ``skip`` .. ``skip + queries`` (those with 100 BM25 candidates) with
    their 100 candidates each (symlinks to the shared data, not copies, plus the run file)."""
    from rankwise.evaluation import load_dataset
    from rankwise.evaluation.first_stage import first_stage_run
    from rankwise.evaluation.loader import write_run

    scifact = DATA / "scifact"
    run = first_stage_run(load_dataset(scifact, "test"), depth=PER_QUERY, cache_dir=CACHE)
    chosen = {q: hits for q, hits in run.items() if len(hits) >= PER_QUERY}
    chosen = dict(list(chosen.items())[skip:skip + queries])
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("queries.jsonl", "corpus.jsonl"):
        (folder / name).symlink_to(scifact / name)
    write_run(chosen, folder / "candidates.run", tag="bm25")
    return folder


def _recording_run_shards(store: list) -> Any:
    """Wrap the Ray engine's run_shards to keep its per-shard summaries (seconds spent in the actor)."""
    import rankwise.distributed.ray as engine

    original = engine.run_shards

    def run_shards(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        store.extend(out)
        return out

    engine.run_shards = run_shards
    return original


def _timed_job(engine: str, source: Path, out: Path, folder: str, shard_pairs: int) -> tuple[Any, float]:
    from rankwise.batch import rerank_dataset

    engine_args = {"engine": "ray", "actors": 1, "cpus_per_actor": 2.0} if engine == "ray" else {}
    report = rerank_dataset(source, out, folder, backend="onnx", options=onnx_options(), shard_pairs=shard_pairs,
                            **engine_args)
    return report, report.seconds


def run_engines(work: Path, queries: int, shard_pairs: int, noop_tasks: int) -> dict[str, Any]:
    """Local engine vs Ray (1 actor x 2 CPUs) on the same pairs and model. The queries are cut in two halves, run in
    the order local, ray | ray, local (ABBA), so neither engine always runs first on a machine whose load drifts;
    Ray is started (and timed) first and stays up for all four jobs."""
    import ray

    import rankwise

    folder = str(model_folder())
    rankwise.load(folder, backend="onnx", **onnx_options())  # export + quantize once, before any timing
    halves = [scifact_input(work / "in-a", queries // 2), scifact_input(work / "in-b", queries - queries // 2,
                                                                         skip=queries // 2)]
    began = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray_start = time.perf_counter() - began
    summaries: list = []
    _recording_run_shards(summaries)
    seconds = {"local": 0.0, "ray": 0.0}
    pairs = groups = shards = 0
    try:
        for source in halves:
            _warm(source, work / f"warm-{source.name}")
        # one small job first: the first job in a process pays one-time costs (libraries, onnxruntime set-up)
        _timed_job("local", scifact_input(work / "in-warm", 1), work / "warm-job", folder, shard_pairs)
        for half, order in zip(halves, (("local", "ray"), ("ray", "local"))):
            for engine in order:
                report, took = _timed_job(engine, half, work / f"{engine}-{half.name}", folder, shard_pairs)
                seconds[engine] += took
            pairs, groups, shards = pairs + report.pairs, groups + report.groups, shards + report.shards
        overhead = ray_task_overhead(noop_tasks)
    finally:
        ray.shutdown()
    same = all(_shard_bytes(work / f"local-{h.name}") == _shard_bytes(work / f"ray-{h.name}") for h in halves)
    actor_seconds = sum(s.seconds for s in summaries)
    return {
        "pairs": pairs, "groups": groups, "shards": shards, "shard_pairs": shard_pairs, "jobs_per_engine": 2,
        "model": "ms-marco-MiniLM-L-6-v2-shaped cross-encoder (untrained head), ONNX int8", "options": onnx_options(),
        "local": {"seconds": round(seconds["local"], 2), "pairs_per_s": round(pairs / seconds["local"], 2)},
        "ray_start_s": round(ray_start, 2),
        "ray": {"actors": 1, "cpus_per_actor": 2.0, "seconds": round(seconds["ray"], 2),
                "pairs_per_s": round(pairs / seconds["ray"], 2),
                "per_actor_pairs_per_s": round(pairs / actor_seconds, 2),
                "seconds_outside_shards": round(seconds["ray"] - actor_seconds, 2)},
        "throughput_ratio": round(seconds["local"] / seconds["ray"], 3),
        "throughput_ratio_with_ray_start": round(seconds["local"] / (seconds["ray"] + ray_start), 3),
        "identical_scores": same, "identical_files": same,
        "ray_task_overhead": overhead,
        "timing": ("seconds = rerank_dataset wall time summed over the two halves (planning, BEIR index, model load, "
                   "scoring, writing); the Ray jobs run on a Ray already started (ray_start_s, once), so they include "
                   "actor start and model load in the actor, twice"),
    }


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.parquet"))}


def _warm(source: Path, scratch: Path) -> None:
    """Read the input once (page cache, sqlite, imports) so that the engine timed first pays nothing extra."""
    from rankwise.batch.inputs import open_input
    from rankwise.batch.shards import plan_shards, prepare_input, read_shard

    src = open_input(source)
    prepare_input(src, scratch)
    for spec in plan_shards(src):
        for _ in read_shard(src, spec, scratch):
            pass


class _NoOp:
    def __call__(self, batch: dict) -> dict:
        return batch


def ray_task_overhead(tasks: int) -> dict[str, Any]:
    """Seconds per task of a 1-actor Ray Data pool doing nothing: (T(n) - T(n/10)) / (n - n/10), so the pool's
    start cancels out."""
    import ray

    def timed(n: int) -> float:
        began = time.perf_counter()
        ds = ray.data.from_items([{"i": i} for i in range(n)], override_num_blocks=n)
        for _ in ds.map_batches(_NoOp, batch_size=1, compute=ray.data.ActorPoolStrategy(size=1),
                                num_cpus=1).iter_rows():
            pass
        return time.perf_counter() - began

    small = max(2, tasks // 10)
    t_small, t_big = timed(small), timed(tasks)
    return {"tasks": [small, tasks], "seconds": [round(t_small, 2), round(t_big, 2)],
            "per_task_s": round((t_big - t_small) / (tasks - small), 4)}


# -- jobs in their own process (memory, resume) --------------------------------------------------------------------
def child(input_path: str, out: str, shard_pairs: int, resume: bool) -> None:
    """One BM25 job; prints its counts, seconds and this process's peak RSS as JSON."""
    from rankwise.batch import rerank_dataset

    report = rerank_dataset(input_path, out, "bm25", shard_pairs=shard_pairs, resume=resume)
    print(json.dumps({"pairs": report.pairs, "groups": report.groups, "shards": report.shards,
                      "shards_resumed": report.shards_resumed, "seconds": round(report.seconds, 2),
                      "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that across fork and exec, so a child
    of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # pragma: no cover - not Linux


def _job(input_path: Path, out: Path, shard_pairs: int, resume: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", str(input_path), str(out), str(shard_pairs)]
    return subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"batch job failed with status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def synthetic(work: Path, pairs: int) -> Path:
    from _batch_data import write_inputs

    path = work / f"groups-{pairs}.jsonl"
    write_inputs(path, None, pairs)
    return path


def measure_memory(work: Path, sizes: tuple[int, int]) -> dict[str, Any]:
    """Peak RSS of the local engine (BM25, default shard size) on two input sizes, each in a fresh process."""
    runs = {}
    for pairs in sizes:
        path = synthetic(work, pairs)
        runs[str(pairs)] = _finish(_job(path, work / f"rss-{pairs}", 50_000)) | {"input_mb": round(
            path.stat().st_size / 2**20, 1)}
        path.unlink()
    small, big = (runs[str(n)]["peak_rss_mb"] for n in sizes)
    return {"runs": runs, "growth": round(big / small - 1, 4), "model": "bm25 (rankwise.load('bm25'))",
            "input": "benchmarks/_batch_data.py JSONL groups of 100 SciFact abstracts cut to 40 words",
            "measure": "peak RSS (VmHWM) of the job's own process: interpreter, imports and model included"}


def _shard_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (folder / "shards").glob("*.parquet")}


def measure_resume(work: Path, pairs: int, shard_pairs: int) -> dict[str, Any]:
    """An uninterrupted run, then a run killed (SIGKILL) at ~50% of its shards and resumed."""
    path = synthetic(work, pairs)
    full = _finish(_job(path, work / "whole", shard_pairs))
    half = -(-full["shards"] // 2)
    proc = _job(path, work / "killed", shard_pairs)
    while len(_shard_state(work / "killed")) < half and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _shard_state(work / "killed")
    resumed = _finish(_job(path, work / "killed", shard_pairs, resume=True))
    after = _shard_state(work / "killed")
    recomputed = sum(after.get(name) != state for name, state in before.items())
    same = all((work / "whole" / "shards" / n).read_bytes() == (work / "killed" / "shards" / n).read_bytes()
               for n in after) and set(after) == set(_shard_state(work / "whole"))
    return {"pairs": pairs, "shards": full["shards"], "shard_pairs": shard_pairs, "model": "bm25",
            "uninterrupted_s": full["seconds"], "killed_after_shards": len(before),
            "resumed_s": resumed["seconds"], "resumed_fraction_of_uninterrupted": round(
                resumed["seconds"] / full["seconds"], 3),
            "shards_recomputed": recomputed, "shards_resumed": resumed["shards_resumed"],
            "identical_to_uninterrupted": same}


def io_rates(source: Path, work: Path) -> dict[str, float]:
    """One process's planning, reading and writing rates (pairs/s) on the engines' BEIR input: the non-model work
    each actor (reading, writing) or the driver (planning) does."""
    from rankwise.batch.inputs import Group, open_input
    from rankwise.batch.outputs import open_shard
    from rankwise.batch.shards import plan_shards, prepare_input, read_shard

    src = open_input(source)
    prepare_input(src, work / "io")
    began = time.perf_counter()
    specs = list(plan_shards(src, 500))
    plan_s = time.perf_counter() - began
    began, groups = time.perf_counter(), []
    for spec in specs:
        groups += [(g.query_id, g.doc_ids) for g in read_shard(src, spec, work / "io") if isinstance(g, Group)]
    read_s = time.perf_counter() - began
    began = time.perf_counter()
    with open_shard(work / "io", 0) as shard:
        for query_id, doc_ids in groups:
            shard.add(query_id, doc_ids, [0.5] * len(doc_ids), None)
        shard.finish({"groups": len(groups), "pairs": shard.rows, "rejects": 0})
    write_s = time.perf_counter() - began
    rows = shard.rows
    n = rows
    corpus = source / "corpus.jsonl"
    with corpus.open("rb") as fh:
        doc_bytes = corpus.stat().st_size / sum(1 for _ in fh)
    return {"pairs": n, "plan_pairs_per_s": round(n / plan_s), "read_pairs_per_s": round(n / read_s),
            "write_rows_per_s": round(n / write_s), "bytes_read_per_pair": round(doc_bytes + 40)}


MACHINES = (1, 2, 4, 8, 16, 32, 64)
SCALING_JOB = {"pairs": 10_000_000, "shard_pairs": 50_000, "actors_per_machine": 1, "cpus_per_actor": 2,
               "shared_fs_mb_per_s": 200.0}


GPU_ACTOR_PAIRS_PER_S = 15_345  # DESIGN.md: this model shape, bf16, one H100, end to end (not measured here)


def _scaling_rows(rate: float, task_s: float, fixed_s: float, fs_pairs_per_s: float) -> list[dict[str, Any]]:
    job = SCALING_JOB
    shards = -(-job["pairs"] // job["shard_pairs"])
    shard_s = job["shard_pairs"] / rate + task_s
    rows = []
    for machines in MACHINES:
        actors = machines * job["actors_per_machine"]
        waves = -(-shards // actors)
        compute_s, read_s = waves * shard_s, job["pairs"] / fs_pairs_per_s  # every actor reads from one shared FS
        total = fixed_s + max(compute_s, read_s)
        busy = shards / (waves * actors)  # the last wave leaves actors idle when shards do not divide evenly
        limit = "shared filesystem (reading)" if read_s > compute_s else "the model"
        if busy < 0.9 and read_s <= compute_s:
            limit += f" (only {busy:.0%} of actor time busy: too few shards; lower shard_pairs)"
        rows.append({"machines": machines, "actors": actors, "hours": round(total / 3600, 3),
                     "pairs_per_s": round(job["pairs"] / total), "limited_by": limit})
    for row in rows:
        row["speedup"] = round(rows[0]["hours"] / row["hours"], 2)
    return rows


def scaling_table(engines: dict[str, Any], io: dict[str, float]) -> dict[str, Any]:
    """Time and throughput of a large job on N machines like this one, from the measured figures (see assumptions)."""
    job = SCALING_JOB
    rate = engines["ray"]["per_actor_pairs_per_s"]  # one actor, 2 CPUs: one machine like this one
    task_s = engines["ray_task_overhead"]["per_task_s"]
    plan_s = job["pairs"] / io["plan_pairs_per_s"]
    fixed_s = engines["ray_start_s"] + engines["ray"]["seconds_outside_shards"] + plan_s
    fs_pairs_per_s = job["shared_fs_mb_per_s"] * 2**20 / io["bytes_read_per_pair"]
    return {
        "job": job, "per_actor_pairs_per_s": rate, "per_task_overhead_s": task_s, "fixed_s": round(fixed_s, 1),
        "shared_fs_pairs_per_s": round(fs_pairs_per_s),
        "cpu_rows": _scaling_rows(rate, task_s, fixed_s, fs_pairs_per_s),
        "gpu_rows": _scaling_rows(GPU_ACTOR_PAIRS_PER_S, task_s, fixed_s, fs_pairs_per_s),
        "assumptions": [
            ("cpu_rows: each machine is like this one: 2 cores, one actor of 2 CPUs, the measured per-actor "
             "throughput (pairs / seconds spent in process_shard, in the Ray engine run) and Ray's measured per-task "
             "overhead; gpu_rows: the same with one actor per machine at 15,345 pairs/s (DESIGN.md's end-to-end "
             "H100 figure for this model shape, NOT measured by this script), to show where the limit moves"),
            ("fixed_s = Ray start + the Ray run's time outside shards (actor start, model load, BEIR index, exports), "
             "measured on the engines' input, + planning the big input at the measured planning rate (one streaming "
             "pass in the driver before any shard runs; it does not shrink with machines)"),
            "shards are equal (shard_pairs) and handed out in waves: ceil(shards / actors) shard times",
            ("every actor reads its shard from one shared filesystem of shared_fs_mb_per_s in all (an assumed "
             "NFS-class figure, not measured); bytes_read_per_pair = an average SciFact corpus line + its run line; "
             "reading overlaps the model (max of the two), writing (~40 bytes per output row) is never the limit"),
            ("one process's reading, planning and writing rates are measured (io): far above a CPU actor's model "
             "rate, so CPU clusters are model-bound; GPU actors reach the shared filesystem's limit within a few "
             "machines"),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to prove it runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/batch.json)")
    parser.add_argument("--child", nargs=3, metavar=("INPUT", "OUT", "SHARD_PAIRS"), help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.resume)
        return 0
    sizes = QUICK if args.quick else FULL
    result: dict[str, Any] = {"benchmark": "batch", "quick": args.quick, "machine": machine_info("cpu"),
                              "code_version": code_version(), "load_before": os.getloadavg()}
    work = Path(tempfile.mkdtemp(prefix="rankwise-batch-bench-"))
    try:
        result["engines"] = run_engines(work, sizes["queries"], sizes["shard_pairs"], sizes["noop_tasks"])
        result["io"] = io_rates(scifact_input(work / "in-io", sizes["queries"]), work)
        result["memory"] = measure_memory(work, sizes["rss_pairs"])
        result["resume"] = measure_resume(work, sizes["resume_pairs"], sizes["resume_shard"])
        result["scaling"] = scaling_table(result["engines"], result["io"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = os.getloadavg()
    out = args.out or RESULTS / ("batch_quick.json" if args.quick else "batch.json")
    write_report(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
