"""A real ``rankwise serve`` process on loopback, and two probes of it for benchmarks/robustness.py: resident memory
under requests that carry 2 MB texts, and small-request latency while one huge request runs."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Words with real BM25 tokens, so that big texts cost what real text costs (tokenizing, stemming, embedding).
_WORDS = ["lstm", "gate", "memory", "cell", "gradient", "network", "vector", "search", "ranking", "passage", "query", "model", "token", "attention", "protein", "gene", "cancer", "therapy", "trial", "patient", "dose", "cohort", "vitamin", "diet", "cell", "receptor", "immune", "virus"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


@contextlib.contextmanager
def started_server(models: list[str], *extra: str) -> Iterator[str]:
    """Start ``rankwise serve`` with ``models`` on a free loopback port; yield its base URL; stop it after."""
    import httpx

    port = _free_port()
    command = [sys.executable, "-m", "rankwise.cli", "serve", "--port", str(port), "--log-level", "warning", *extra]
    for model in models:
        command += ["--model", model]
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115 - read after exit
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready after 300 s")
            time.sleep(0.5)
        started_server.pid = proc.pid  # type: ignore[attr-defined] - read by the probes
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _text(rng: random.Random, n_bytes: int) -> str:
    words = rng.choices(_WORDS, k=max(1, n_bytes // 7))
    return " ".join(words)[:n_bytes]


def memory_growth(base: str, n_requests: int, seed: int) -> dict[str, Any]:
    """RSS when warm, then after ``n_requests`` requests each carrying a fresh 2 MB document or a 2 MB query."""
    import httpx

    rng = random.Random(seed)
    pid = started_server.pid  # type: ignore[attr-defined]
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=base, timeout=300) as client:
        for model in ("bm25", "default"):  # warm: each model has scored, caches and allocators are in use
            for _ in range(5):
                docs = [_text(rng, 2000) for _ in range(20)]
                client.post("/v1/rerank", json={"model": model, "query": _text(rng, 40), "documents": docs})
        warm = _rss_mb(pid)
        began = time.monotonic()
        for i in range(n_requests):
            big = _text(rng, 2 * 1024 * 1024)
            small = [_text(rng, 500) for _ in range(3)]
            query, docs = (big, small) if i % 2 else (_text(rng, 40), [big, *small])
            body = {"model": ("bm25", "default")[(i // 2) % 2], "query": query, "documents": docs}
            status = client.post("/v1/rerank", json=body).status_code
            statuses[status] = statuses.get(status, 0) + 1
        after = _rss_mb(pid)
    return {
        "requests": n_requests,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "warm_rss_mb": round(warm["VmRSS"], 1),
        "peak_rss_mb": round(after["VmHWM"], 1),
        "end_rss_mb": round(after["VmRSS"], 1),
        "growth_mb": round(after["VmHWM"] - warm["VmRSS"], 1),
        "seconds": round(time.monotonic() - began, 1),
    }


def _small_latencies(client: Any, rng: random.Random, n: int, failures: list[int]) -> list[float]:
    """Latencies of ``n`` small requests sent one after another; non-200 statuses are appended to ``failures``."""
    out = []
    for _ in range(n):
        body = {"model": "default", "query": _text(rng, 40), "documents": [_text(rng, 600) for _ in range(5)]}
        began = time.perf_counter()
        response = client.post("/v1/rerank", json=body)
        out.append(time.perf_counter() - began)
        if response.status_code != 200:
            failures.append(response.status_code)
    return out


def isolation(base: str, n_small: int, seed: int) -> dict[str, Any]:
    """p99 of small requests alone, then while one huge request (1,000 documents of ~9 KB) runs on the same model."""
    import httpx

    rng = random.Random(seed)
    huge = {"model": "default", "query": _text(rng, 60), "documents": [_text(rng, 9000) for _ in range(1000)]}
    outcome: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=600) as client:
        failures: list[int] = []
        _small_latencies(client, rng, 5, failures)  # warm
        alone = _small_latencies(client, rng, n_small, failures)

        def send_huge() -> None:
            began = time.perf_counter()
            response = httpx.post(base + "/v1/rerank", json=huge, timeout=600)
            outcome.update(status=response.status_code, seconds=round(time.perf_counter() - began, 2))

        thread = threading.Thread(target=send_huge)
        thread.start()
        time.sleep(1.0)  # the huge request is being scored
        during = _small_latencies(client, rng, n_small, failures)
        huge_running = thread.is_alive()
        thread.join()
    p99_alone, p99_during = (float(np.percentile(x, 99)) for x in (alone, during))
    return {
        "small_requests": n_small,
        "small_p50_alone_s": round(float(np.median(alone)), 4),
        "small_p99_alone_s": round(p99_alone, 4),
        "small_p50_during_huge_s": round(float(np.median(during)), 4),
        "small_p99_during_huge_s": round(p99_during, 4),
        "p99_ratio": round(p99_during / p99_alone, 2),
        "small_request_failures": failures,
        "huge_request": {"documents": 1000, "bytes": sum(len(d) for d in huge["documents"]), **outcome,
                         "still_running_after_small_ones": huge_running},
    }
