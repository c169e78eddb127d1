"""Robustness of rankwise under hostile input: the library, the CLI and the HTTP server, plus memory and latency
isolation of the server.

1. Library: seeded random and crafted queries and documents (benchmarks/_nasty.py) through every offline preset.
   A case passes when it returns a ranking that keeps every input exactly once with the caller's own objects,
   finite scores and ranks 1..n, or raises InvalidInputError; anything else is a crash or a lost/changed item.
2. CLI: random document files (JSONL, JSON, lines, broken, empty, binary) through ``rankwise rerank --format jsonl``
   in process: exit 0 with every document once, or exit 2 with one line on stderr and no traceback.
3. Server: a real ``rankwise serve`` process on loopback (models ``bm25`` and ``default``) gets random JSON bodies on
   every route: no 5xx, /health answers after each, and a 200 lists every document once.
4. Memory: the server's RSS after 200 requests carrying 2 MB documents or 2 MB queries (fresh texts each time, so
   unbounded caches would show), against its RSS when warm. Target: under 100 MB of growth.
5. Isolation: the p99 latency of small requests (5 documents) alone, then while one huge request (1,000 documents of
   ~9 KB) runs on the same model. Target: within 2x.

Run (about 10-15 minutes on 2 cores)::

    python benchmarks/robustness.py                       # writes benchmarks/results/robustness.json
    python benchmarks/robustness.py --cases 50 --big-requests 20 --out /tmp/robustness.json   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nasty import random_body, random_documents, random_file, random_text
from _report import code_version, machine_info, write_report
from _server_probe import isolation, memory_growth, started_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
PRESETS = ("bm25", "default", "hybrid", "first-stage-score", "minilm-bi-encoder")
ROUTES = ("/v1/rerank", "/v2/rerank", "/rerank")


def _ranking_problem(results: Any, docs: list[Any]) -> str | None:
    """Why a library ranking breaks the contract, or None when it keeps it."""
    if len(results) != len(docs):
        return f"{len(results)} results for {len(docs)} documents"
    if sorted(r.index for r in results) != list(range(len(docs))):
        return "indices are not a permutation of the input"
    if [r.rank for r in results] != list(range(1, len(docs) + 1)):
        return "ranks are not 1..n"
    for r in results:
        if not math.isfinite(r.score):
            return f"score {r.score} is not finite"
        given = docs[r.index]
        if isinstance(given, str):
            if r.document.text != given:
                return f"text of document {r.index} changed"
        elif r.document.text != given.get("text", "") or r.document.id != given.get("id"):
            return f"text or id of document {r.index} changed"
    return None


def library_cases(n: int, seed: int) -> dict[str, Any]:
    import rankwise
    from rankwise.errors import InvalidInputError

    rng = random.Random(seed)
    models = {name: rankwise.load(name) for name in PRESETS}
    tried = crashes = lost = refused = 0
    examples: list[str] = []
    for case in range(n):
        query = random_text(rng) if case % 10 else rng.choice([None, 7, ""])
        docs = random_documents(rng) if case % 13 else rng.choice([None, "one string", {"text": "a dict"}])
        for name, model in models.items():
            tried += 1
            try:
                problem = _ranking_problem(model.rank(query, docs), docs)  # type: ignore[arg-type]
            except InvalidInputError:
                refused += 1
                continue
            except Exception as exc:  # noqa: BLE001 - counting crashes is the point
                crashes += 1
                examples.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                continue
            if problem:
                lost += 1
                examples.append(f"{name}: {problem}")
    return {"cases": tried, "refused_with_clear_error": refused, "crashes": crashes, "items_lost_or_changed": lost,
            "examples": examples[:10], "presets": list(PRESETS)}


def _run_cli(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    from rankwise.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # noqa: BLE001 - an escaped exception is a crash
            return None, out.getvalue(), err.getvalue(), traceback.format_exc(limit=3)
    return code, out.getvalue(), err.getvalue(), None


def cli_cases(n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    tried = crashes = lost = refused = 0
    examples: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in range(n):
            docs = [d for d in random_documents(rng) if not isinstance(d, dict) or isinstance(d.get("text"), str)]
            data, expected = random_file(rng, docs)
            path = Path(tmp) / f"docs{case}"
            path.write_bytes(data)
            query = random_text(rng) or "q"
            model = ("bm25", "default")[case % 2]
            argv = ["rerank", "-q", query, "-d", str(path), "-m", model, "--format", "jsonl", "--no-progress"]
            tried += 1
            code, out, err, crash = _run_cli(argv)
            if crash is not None or "Traceback" in err or code not in (0, 2):
                crashes += 1
                examples.append(f"exit {code}: {(crash or err)[-300:]}")
            elif code == 2:
                refused += 1
                if len(err.strip().splitlines()) != 1:
                    crashes += 1
                    examples.append(f"error of {len(err.splitlines())} lines: {err[:200]}")
            elif expected is not None and len(out.splitlines()) != expected:
                lost += 1
                examples.append(f"{len(out.splitlines())} output lines for {expected} documents")
    return {"cases": tried, "refused_with_clear_error": refused, "crashes": crashes, "items_lost_or_changed": lost,
            "examples": examples[:10]}


def _response_problem(route: str, body: Any, status: int, answer: Any) -> str | None:
    if status >= 500:
        return f"{status}: {str(answer)[:200]}"
    if status != 200 or not isinstance(body, dict):
        return None if isinstance(answer, dict) else f"{status} without a JSON object"
    n = len(body.get("texts" if route == "/rerank" else "documents") or [])
    items = answer if route == "/rerank" else answer.get("results", [])
    if route != "/rerank" and body.get("top_n") is not None:
        n = min(n, body["top_n"])
    indices = [item["index"] for item in items]
    if len(indices) != n or len(set(indices)) != n:
        return f"{len(indices)} results ({len(set(indices))} distinct) for {n} documents"
    if any(not math.isfinite(item.get("score", item.get("relevance_score", 0.0))) for item in items):
        return "a score is not finite"
    return None


def _healthy(client: Any) -> bool:
    try:
        return client.get("/health").status_code == 200
    except Exception:  # noqa: BLE001 - httpx.TransportError, the server is gone
        return False


def server_cases(n: int, seed: int, base: str) -> dict[str, Any]:
    import httpx

    rng = random.Random(seed)
    tried = errors_5xx = lost = health_down = 0
    examples: list[str] = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for case in range(n):
            route = ROUTES[case % len(ROUTES)]
            body = random_body(rng, route)
            raw = json.dumps(body)  # lone surrogates travel JSON-escaped, as real clients send them
            tried += 1
            try:
                response = client.post(route, content=raw, headers={"content-type": "application/json"})
            except httpx.TransportError as exc:  # a reset or a dead server: worse than a 5xx
                errors_5xx += 1
                examples.append(f"{route} connection error {type(exc).__name__}: {raw[:200]}")
                health_down += not _healthy(client)
                continue
            try:
                answer = response.json()
            except ValueError:
                answer = response.text
            problem = _response_problem(route, body, response.status_code, answer)
            if problem:
                errors_5xx += response.status_code >= 500
                lost += response.status_code < 500
                examples.append(f"{route} {problem}")
            health_down += not _healthy(client)
        for path in ("/v1/models", "/info", "/ready", "/metrics", "/health"):
            tried += 1
            if not _healthy(client) or client.get(path).status_code >= 500:
                errors_5xx += 1
                examples.append(f"GET {path} 5xx")
    return {"cases": tried, "errors_5xx": errors_5xx, "items_lost_or_changed": lost, "health_failures": health_down,
            "examples": examples[:10]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="random cases per surface (library: per preset)")
    parser.add_argument("--big-requests", type=int, default=200, help="requests carrying 2 MB texts")
    parser.add_argument("--small-requests", type=int, default=40, help="small requests per latency phase")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"machine": machine_info("cpu"), "code": code_version(), "seed": args.seed,
                              "load_average_start": os.getloadavg()}
    began = time.monotonic()
    report["library"] = library_cases(args.cases, args.seed)
    report["cli"] = cli_cases(args.cases, args.seed + 1)
    with started_server(["bm25", "default"]) as base:
        report["server"] = server_cases(args.cases, args.seed + 2, base)
    with started_server(["bm25", "default"]) as base:
        report["server_memory"] = memory_growth(base, args.big_requests, args.seed + 3)
    with started_server(["default"]) as base:
        report["server_isolation"] = isolation(base, args.small_requests, args.seed + 4)
    report["seconds"] = round(time.monotonic() - began, 1)
    report["load_average_end"] = os.getloadavg()
    report["targets"] = {
        "zero_crashes_5xx_lost": all(
            report[s].get(k, 0) == 0
            for s in ("library", "cli", "server")
            for k in ("crashes", "errors_5xx", "items_lost_or_changed", "health_failures")
        ),
        "rss_growth_under_100mb": report["server_memory"]["growth_mb"] < 100,
        "small_p99_within_2x": report["server_isolation"]["p99_ratio"] <= 2.0,
    }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
