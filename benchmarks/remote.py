"""The `rankwise` remote backend against our own server on loopback vs the same model in process (issue 13).

A `rankwise serve` process (uvicorn, a free loopback port) serves a cross-encoder folder; the same folder is loaded in
this process. Both read the same requests (a SciFact query and 20 SciFact abstracts each, seeded):

* latency: requests one at a time, in process and through `rankwise.load(url, backend="rankwise")` alternately
  (drifting load from other processes hits both alike), each three times per side, the fastest counting; the added
  latency of a request is its remote time minus its in-process time: median and p95 (target: median < 10 ms on 20
  documents);
* throughput: 8 callers (threads) sharing one re-ranker object, remote and in process: requests/s and the ratio.

Two server settings: the default (dynamic batching waits up to 5 ms for other requests to join a model call) and
`--max-wait-ms 0` (a lone request is scored at once). Models: a tiny 2-layer cross-encoder (the overhead of going
remote is most of its time) and, at full size, a cross-encoder of MiniLM-L6's shape (realistic compute; random
head, so its scores mean nothing, only its cost does). Both sides run torch on --threads threads. The remote scores
are checked against the in-process ones.

    python benchmarks/remote.py            # tiny: 200 latency requests, 8 callers x 25; MiniLM-shaped: 50, 8 x 6
    python benchmarks/remote.py --quick    # the tiny model only: 30 latency requests, 8 callers x 4

Writes benchmarks/results/remote.json (remote_quick.json with --quick) and prints it. Timing on a shared machine is
provisional.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import code_version, machine_info, write_report  # noqa: E402
from _server_probe import started_server  # noqa: E402
from server_load import DATA, load_scifact, make_requests  # noqa: E402

import rankwise  # noqa: E402
from rankwise.rerankers.base import Reranker  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DOCS_PER_REQUEST = 20
CALLERS = 8
TARGET_MS = 10.0
ROUNDS = 3  # each latency request is sent this many times per side; the fastest counts
SIZES = {"tiny": (200, CALLERS * 25), "minilm-shaped": (50, CALLERS * 6)}  # model -> (latency, throughput) requests
SERVER_SETTINGS = {"default (5 ms batching window)": [], "--max-wait-ms 0": ["--max-wait-ms", "0"]}


def percentiles(values_s: list[float]) -> dict[str, float]:
    ms = np.asarray(values_s) * 1000
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean())}


def latency(local: Reranker, remote: Reranker, requests: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """Each request ROUNDS times in process and remotely, alternating which goes first; per side the fastest of the
    rounds (what the request costs when no other process interferes), then the per-request differences."""
    times: dict[str, list[float]] = {"local": [], "remote": []}
    worst = 0.0
    for query, docs in requests:
        best = {"local": float("inf"), "remote": float("inf")}
        scores = {}
        for r in range(ROUNDS):
            order = [("local", local), ("remote", remote)] if r % 2 == 0 else [("remote", remote), ("local", local)]
            for side, reranker in order:
                start = time.perf_counter()
                scores[side] = reranker.score(query, docs)
                best[side] = min(best[side], time.perf_counter() - start)
        for side, spent in times.items():
            spent.append(best[side])
        worst = max(worst, float(np.max(np.abs(np.subtract(scores["local"], scores["remote"])))))
    added = [r - lo for r, lo in zip(times["remote"], times["local"])]
    out = {side: percentiles(t) for side, t in times.items()}
    out["added"] = percentiles(added)
    out["target_median_ms"] = TARGET_MS
    out["met"] = out["added"]["median_ms"] < TARGET_MS
    out["max_abs_score_difference"] = worst
    return out


def throughput(reranker: Reranker, requests: list[tuple[str, list[str]]], callers: int) -> dict[str, Any]:
    """``callers`` threads share ``reranker`` and the request list; requests/s over the whole run."""
    lock, position, errors = threading.Lock(), [0], []

    def caller() -> None:
        while True:
            with lock:
                if position[0] >= len(requests):
                    return
                query, docs = requests[position[0]]
                position[0] += 1
            try:
                reranker.score(query, docs)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
                errors.append(repr(exc))

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"requests": len(requests), "seconds": seconds, "requests_per_second": len(requests) / seconds,
            "documents_per_second": len(requests) * DOCS_PER_REQUEST / seconds, "errors": errors[:3],
            "error_count": len(errors)}


def measure(name: str, folder: Path, threads: int, latency_reqs: list, load_reqs: list) -> dict[str, Any]:
    """One model: in process vs each server setting."""
    from rankwise.rerankers.cross_encoder import CrossEncoderReranker

    local = CrossEncoderReranker(folder, device="cpu", threads=threads)
    out: dict[str, Any] = {}
    for setting, extra in SERVER_SETTINGS.items():
        with started_server([f"{name}={folder}?device=cpu&threads={threads}"], *extra) as url:
            remote = rankwise.load(url, backend="rankwise", model=name)
            for query, docs in latency_reqs[:5]:  # warm both: first calls allocate, tokenizers load
                local.score(query, docs)
                remote.score(query, docs)
            _, cost = remote.rank_with_cost(*latency_reqs[0])
            lat = latency(local, remote, latency_reqs)
            tput = {
                "remote": throughput(remote, load_reqs, CALLERS), "in_process": throughput(local, load_reqs, CALLERS)
            }
            tput["ratio_remote_to_in_process"] = (
                tput["remote"]["requests_per_second"] / tput["in_process"]["requests_per_second"]
            )
            remote.close()
        out[setting] = {"latency": lat, "throughput": tput,
                        "cost_of_one_request": {"calls": cost.calls, "documents": cost.documents,
                                                "units": dict(cost.units)}}
        print(f"{name} / {setting}: added median {lat['added']['median_ms']:.1f} ms, p95 "
              f"{lat['added']['p95_ms']:.1f} ms; throughput ratio {tput['ratio_remote_to_in_process']:.2f}",
              file=sys.stderr, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model only, few requests: proves it runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on each side (default 1)")
    args = parser.parse_args()
    from rankwise.testing import make_minilm_shaped_cross_encoder, make_tiny_cross_encoder

    docs, queries = load_scifact(DATA)
    sizes = {"tiny": (30, CALLERS * 4)} if args.quick else SIZES
    started = time.perf_counter()
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (n_latency, n_load) in sizes.items():
            build = make_tiny_cross_encoder if name == "tiny" else make_minilm_shaped_cross_encoder
            folder = build(Path(tmp) / name, **({"initializer_range": 0.3} if name == "tiny" else {}))
            latency_reqs = make_requests(n_latency, docs, queries, 0, DOCS_PER_REQUEST, DOCS_PER_REQUEST)
            load_reqs = make_requests(n_load, docs, queries, 1, DOCS_PER_REQUEST, DOCS_PER_REQUEST)
            models[name] = measure(name, folder, args.threads, latency_reqs, load_reqs)
    out = {
        "benchmark": "remote", "quick": args.quick, "machine": machine_info("cpu"), "code": code_version(),
        "settings": {"documents_per_request": DOCS_PER_REQUEST, "requests_latency_throughput": sizes,
                     "callers": CALLERS, "latency_rounds": ROUNDS,
                     "torch_threads": args.threads,
                     "server_settings": SERVER_SETTINGS, "target_added_median_ms": TARGET_MS},
        "models": models, "seconds": time.perf_counter() - started,
    }
    path = RESULTS / ("remote_quick.json" if args.quick else "remote.json")
    write_report(out, path, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
