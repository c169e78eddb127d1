"""Load test of the HTTP re-rank service: rankwise (dynamic batching on / off, torch and ONNX int8) against Infinity.

Every system serves the same MiniLM-L6-shaped cross-encoder folder on loopback. For each concurrency level (1, 8 and 32
clients by default) an asyncio + httpx load generator sends a fixed, seeded list of requests, each a SciFact query
with 20-100 SciFact abstracts; every system gets exactly the same requests. Levels are interleaved across systems
(level 1 on every system, then level 8...) so that drifting load from other processes on the machine hits them alike.

Measured per system and level: requests/s, pairs/s, p50/p95/p99 latency, errors, and the server process's CPU time
(user + system, all threads, from /proc) with pairs per CPU-second: on a machine shared with other work, wall-clock
throughput moves with the others' load, CPU time per pair much less. For rankwise also the mean number of documents
and requests per model call (from its /metrics). Work is equalised: rankwise runs with ``overflow=truncate``
(one 512-token window per document, as Infinity does) instead of its default max-passage chunking.

Bounded: a fixed number of requests per level (2, 8 and 32 by default: at 8 and 32 clients every client sends one,
all at once), a per-level time limit after which no new request starts, and a per-request timeout; loopback only.
The order of the systems alternates from level to level.

Run (a few minutes on 2 CPU cores; Infinity in its own venv, see docs/server.md)::

    python benchmarks/server_load.py                      # writes benchmarks/results/server_load.json
    python benchmarks/server_load.py --systems rankwise-batching,rankwise-no-batching --levels 1,8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _report import code_version, machine_info

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "server_load.json"
INFINITY_BIN = Path(os.environ.get("INFINITY_BIN", "/work/venvs/infinity/bin/infinity_emb"))
MODEL_NAME = "ce"


@dataclass
class System:
    """One server under test: how to start it, where to send requests, how to shape the body."""

    name: str
    command: list[str]
    env: dict[str, str]
    route: str
    ready_path: str
    shape: str  # "cohere" or "infinity"
    port: int
    proc: subprocess.Popen | None = None
    log: Path | None = None
    metrics: bool = False
    notes: str = ""
    started_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def body(self, query: str, docs: list[str]) -> dict:
        if self.shape == "infinity":
            return {
                "model": MODEL_NAME,
                "query": query,
                "documents": docs,
                "return_documents": False,
                "raw_scores": True,
            }
        return {"model": MODEL_NAME, "query": query, "documents": docs}


@dataclass
class Cell:
    """Results of one system at one concurrency level."""

    latencies: list[float] = field(default_factory=list)
    pairs: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    not_started: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_scifact(data: Path) -> tuple[list[str], list[str]]:
    folder = data / "scifact"
    if not (folder / "corpus.jsonl").is_file():
        sys.exit(f"SciFact not found under {folder}; set RANKWISE_DATA to the folder holding scifact/.")
    with open(folder / "corpus.jsonl") as f:
        docs = [json.loads(line)["text"] for line in f]
    with open(folder / "queries.jsonl") as f:
        queries = [json.loads(line)["text"] for line in f]
    return [d for d in docs if d.strip()], queries


def make_requests(
    n: int, docs: list[str], queries: list[str], seed: int, lo: int, hi: int
) -> list[tuple[str, list]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(lo, hi + 1))
        picked = rng.choice(len(docs), size=k, replace=False)
        out.append((queries[int(rng.integers(len(queries)))], [docs[i] for i in picked]))
    return out


def build_systems(names: list[str], model_dir: Path, args: argparse.Namespace) -> list[System]:
    py = sys.executable
    serve = [py, "-m", "rankwise.cli", "serve", "--log-level", "warning", "--max-documents", "1000",
             "--request-timeout-s", "0"]  # queueing at 32 clients takes minutes on 2 cores: measure it, don't cut it
    offline = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "TOKENIZERS_PARALLELISM": "true",
    }
    torch_spec = f"{MODEL_NAME}={model_dir}:cross-encoder?overflow=truncate&device=cpu"
    onnx_spec = f"{MODEL_NAME}={model_dir}:onnx?overflow=truncate&quantize=int8"
    table = {
        "rankwise-batching": (
            serve + ["--model", torch_spec],
            "torch fp32, dynamic batching (default settings)",
        ),
        "rankwise-no-batching": (
            serve + ["--model", torch_spec, "--no-batching"],
            "torch fp32, one model call per request, in arrival order",
        ),
        "rankwise-onnx-int8-batching": (serve + ["--model", onnx_spec], "onnxruntime int8, dynamic batching"),
    }
    systems = []
    for name in names:
        port = free_port()
        if name == "infinity":
            if not INFINITY_BIN.is_file():
                print(f"skipping infinity: {INFINITY_BIN} not found (see docs/server.md)", file=sys.stderr)
                continue
            systems.append(infinity_system(model_dir, offline, port))
            continue
        if name not in table:
            sys.exit(f"unknown system {name!r}; choose from infinity, {', '.join(table)}")
        cmd, notes = table[name]
        systems.append(
            System(
                name,
                cmd + ["--port", str(port)],
                offline,
                "/v2/rerank",
                "/ready",
                "cohere",
                port,
                metrics=True,
                notes=notes,
            )
        )
    return systems


def infinity_system(model_dir: Path, env: dict[str, str], port: int) -> System:
    """The peer: Infinity's own server on the same model folder (torch engine, fp32, CPU)."""
    cmd = [str(INFINITY_BIN), "v2", "--model-id", str(model_dir), "--engine", "torch", "--device", "cpu",
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", MODEL_NAME, "--log-level", "warning"]
    return System("infinity", cmd, env, "/rerank", "/health", "infinity", port,
                  notes="infinity-emb 0.0.78, torch engine, fp32, default batch size 32")


def start(system: System, log_dir: Path) -> None:
    system.log = log_dir / f"{system.name}.log"
    env = {**os.environ, **system.env}
    began = time.monotonic()
    with open(system.log, "w") as log:  # the child keeps its own copy of the descriptor
        system.proc = subprocess.Popen(
            system.command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=log_dir,  # Infinity writes a cache folder into its working directory
        )
    system.started_s = began


def wait_ready(system: System, httpx, timeout: float = 600) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if system.proc.poll() is not None:
            raise RuntimeError(f"{system.name} exited: {system.log.read_text()[-3000:]}")
        try:
            if httpx.get(system.url + system.ready_path, timeout=2).status_code == 200:
                system.started_s = time.monotonic() - system.started_s
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{system.name} not ready after {timeout} s; log: {system.log}")


def stop(system: System) -> None:
    if system.proc is not None and system.proc.poll() is None:
        os.killpg(system.proc.pid, signal.SIGTERM)
        try:
            system.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(system.proc.pid, signal.SIGKILL)


async def run_level(system: System, requests: list, clients: int, time_limit: float, timeout: float) -> Cell:
    import httpx

    cell = Cell()
    queue = list(enumerate(requests))
    began = time.monotonic()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def worker() -> None:
            while queue:
                if time.monotonic() - began > time_limit:
                    cell.not_started = len(queue)
                    return
                _, (query, docs) = queue.pop(0)
                sent = time.monotonic()
                try:
                    r = await client.post(system.url + system.route, json=system.body(query, docs))
                    ok = r.status_code == 200 and len(_results(r.json())) == len(docs)
                    if not ok:
                        cell.errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                        continue
                except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
                    cell.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                cell.latencies.append(time.monotonic() - sent)
                cell.pairs += len(docs)

        await asyncio.gather(*(worker() for _ in range(clients)))
    cell.wall_s = time.monotonic() - began
    return cell


def _results(body: object) -> list:
    return body["results"] if isinstance(body, dict) else body


def scrape(system: System, httpx) -> dict[str, float]:  # noqa: ANN001
    """Sums of the batch histograms (rankwise only)."""
    if not system.metrics:
        return {}
    text = httpx.get(system.url + "/metrics", timeout=10).text
    out = {}
    for key in ("rankwise_batch_pairs_sum", "rankwise_batch_pairs_count", "rankwise_batch_requests_sum"):
        m = re.search(rf"^{key}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
        out[key] = float(m.group(1)) if m else 0.0
    return out


def summarise(cell: Cell, before: dict, after: dict) -> dict:
    lat = np.asarray(cell.latencies)
    out = {
        "requests_ok": len(cell.latencies),
        "errors": len(cell.errors),
        "not_started": cell.not_started,
        "pairs": cell.pairs,
        "wall_s": round(cell.wall_s, 2),
        "requests_per_s": round(len(lat) / cell.wall_s, 3) if cell.wall_s else 0.0,
        "pairs_per_s": round(cell.pairs / cell.wall_s, 2) if cell.wall_s else 0.0,
    }
    if len(lat):
        for p in (50, 95, 99):
            out[f"p{p}_s"] = round(float(np.percentile(lat, p)), 3)
        out["max_s"] = round(float(lat.max()), 3)
    if cell.errors:
        out["first_errors"] = cell.errors[:3]
    calls = after.get("rankwise_batch_pairs_count", 0) - before.get("rankwise_batch_pairs_count", 0)
    if calls:
        out["model_calls"] = int(calls)
        out["docs_per_model_call"] = round(
            (after["rankwise_batch_pairs_sum"] - before["rankwise_batch_pairs_sum"]) / calls, 1
        )
        out["requests_per_model_call"] = round(
            (after["rankwise_batch_requests_sum"] - before["rankwise_batch_requests_sum"]) / calls, 2
        )
    return out


def agreement(systems: list[System], request: tuple[str, list], httpx) -> dict[str, float]:  # noqa: ANN001
    """Max |score difference| of each system against the first on one request (they serve the same model)."""
    query, docs = request
    scores = {}
    for s in systems:
        body = httpx.post(s.url + s.route, json=s.body(query, docs), timeout=600).json()
        by_index = {r["index"]: r["relevance_score"] for r in _results(body)}
        scores[s.name] = np.asarray([by_index[i] for i in range(len(docs))])
    ref = scores[systems[0].name]
    return {name: round(float(np.max(np.abs(v - ref))), 5) for name, v in scores.items()}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) of a process and its descendants, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        todo.extend(children.get(current, []))
    return total


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def compare(levels: dict[str, dict[str, dict]]) -> dict[str, dict]:
    out = {}
    for level, row in levels.items():
        base = row.get("rankwise-batching", {})
        entry = {}
        if "rankwise-no-batching" in row:
            entry["batching_vs_no_batching_pairs_per_s"] = ratio(
                base.get("pairs_per_s"), row["rankwise-no-batching"].get("pairs_per_s")
            )
        for name in ("rankwise-batching", "rankwise-onnx-int8-batching"):
            if name in row and "infinity" in row:
                entry[f"{name}_vs_infinity_pairs_per_s"] = ratio(
                    row[name].get("pairs_per_s"), row["infinity"].get("pairs_per_s")
                )
                entry[f"{name}_vs_infinity_p99"] = ratio(row[name].get("p99_s"), row["infinity"].get("p99_s"))
        cpu = {name: cell.get("pairs_per_server_cpu_s") for name, cell in row.items()}
        if cpu.get("rankwise-no-batching"):
            entry["batching_vs_no_batching_pairs_per_cpu_s"] = ratio(
                cpu.get("rankwise-batching"), cpu["rankwise-no-batching"]
            )
        for name in ("rankwise-batching", "rankwise-onnx-int8-batching"):
            if cpu.get(name) and cpu.get("infinity"):
                entry[f"{name}_vs_infinity_pairs_per_cpu_s"] = ratio(cpu[name], cpu["infinity"])
        out[level] = entry
    return out


def parse_counts(text: str) -> dict[int, int]:
    return {int(k): int(v) for k, v in (part.split("=") for part in text.split(","))}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--systems", default="rankwise-batching,rankwise-no-batching,infinity,rankwise-onnx-int8-batching"
    )
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    parser.add_argument("--requests", default="1=2,8=8,32=32", help="requests per level, as clients=count")
    parser.add_argument("--docs", default="20,100", help="documents per request: min,max")
    parser.add_argument("--skip", default="", help="cells to leave out, as SYSTEM@CLIENTS,...")
    parser.add_argument(
        "--time-limit-s", type=float, default=1800.0, help="per level: no new request after this"
    )
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/rankwise-bench/minilm-shaped-ce"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args()


def measure_cell(s: System, requests: list, clients: int, args: argparse.Namespace, httpx: Any) -> dict[str, Any]:
    """One system at one concurrency: latency and throughput (summarise), plus the server's own CPU seconds."""
    before = scrape(s, httpx)
    load = load_average()
    cpu = cpu_seconds(s.proc.pid)
    cell = asyncio.run(run_level(s, requests, clients, args.time_limit_s, args.timeout_s))
    cpu = cpu_seconds(s.proc.pid) - cpu
    return {
        **summarise(cell, before, scrape(s, httpx)),
        "server_cpu_s": round(cpu, 1),
        "pairs_per_server_cpu_s": round(cell.pairs / cpu, 3) if cpu else None,
        "load_average_1m_before": load[0],
    }


def main() -> int:
    args = parse_args()
    import httpx

    from rankwise.testing import make_minilm_shaped_cross_encoder

    model_dir = make_minilm_shaped_cross_encoder(args.model_dir)
    docs, queries = load_scifact(DATA)
    levels = [int(x) for x in args.levels.split(",")]
    counts = parse_counts(args.requests)
    lo, hi = (int(x) for x in args.docs.split(","))
    skip = set(filter(None, args.skip.split(",")))
    systems = build_systems(args.systems.split(","), model_dir, args)
    log_dir = Path("/tmp/rankwise-bench/logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "benchmark": "server_load",
        "model": "MiniLM-L6-shaped cross-encoder (all-MiniLM-L6-v2 encoder + untrained head), max_length 512",
        "data": "SciFact queries x random SciFact abstracts",
        "docs_per_request": [lo, hi],
        "machine": {**machine_info("cpu"), "load_average_start": load_average()},
        "code": code_version(),
        "command": " ".join(sys.argv),
        "complete": False,
        "systems": {},
        "levels": {},
    }
    try:
        for s in systems:  # all servers up at once (idle ones cost nothing), then levels interleaved
            start(s, log_dir)
        for s in systems:
            wait_ready(s, httpx)
            report["systems"][s.name] = {"notes": s.notes, "startup_s": round(s.started_s, 1)}
        warm = make_requests(1, docs, queries, args.seed + 999, lo, hi)[0]
        report["score_agreement_max_abs_diff"] = agreement(systems, warm, httpx)  # also warms every server
        for i, clients in enumerate(levels):
            n = counts.get(clients, clients)
            requests = make_requests(n, docs, queries, args.seed + clients, lo, hi)
            row = {}
            for s in systems if i % 2 == 0 else systems[::-1]:  # alternate the order against drifting load
                if f"{s.name}@{clients}" in skip:
                    continue
                row[s.name] = measure_cell(s, requests, clients, args, httpx)
                print(f"[{clients:>2} clients] {s.name:<28} {json.dumps(row[s.name])}", file=sys.stderr)
                report["levels"][str(clients)] = row
                write(report, args.out)  # after every cell: a cut-short run keeps what it measured
    finally:
        for s in systems:
            stop(s)
    report["machine"]["load_average_end"] = load_average()
    report["complete"] = True
    print(write(report, args.out))
    return 0


def write(report: dict, out: Path) -> str:
    report["ratios"] = compare(report["levels"])
    text = json.dumps(report, indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
