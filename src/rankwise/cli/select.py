"""``rankwise select``: rank LLM answers by criteria; optionally generate them (best-of-n) and write
preference pairs.

Input: JSONL (or one JSON object / a JSON list), one record per prompt::

    {"prompt": "What is the capital of France?", "candidates": ["Lyon", "Paris"], "reference": "Paris"}

``candidates`` may be left out when ``--n N`` is given: N answers are then generated with ``--llm``.
Output: one JSON line per record (``prompt``, ``reference``, ``weights``, ``ranking`` with per-criterion
scores and reasons) to ``--output`` or stdout; ``--pairs FILE`` also writes chosen/rejected pairs (JSONL) for
DPO.

Example:
    rankwise select answers.jsonl --judge default --pairs pairs.jsonl
    rankwise select answers.jsonl --criteria correctness,helpfulness --weights 2,1 --judge token-f1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rankwise.cli._args import positive_int
from rankwise.cli._io import json_line, read_text
from rankwise.documents import json_lines
from rankwise.errors import InvalidInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="JSONL file of {prompt, candidates, reference?} records ('-' = stdin)")
    parser.add_argument("-o", "--output", help="write the rankings here (JSONL; default stdout)")
    parser.add_argument(
        "--criteria",
        default=None,
        help="comma-separated criteria: correctness, helpfulness, safety, instruction_following, agreement "
        "(default, measured in docs/selection.md: correctness for given candidates, agreement for answers "
        "generated with --n)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="comma-separated weights, by position (2,1) or by name (correctness=2,safety=1)",
    )
    parser.add_argument(
        "--judge",
        default="llm",
        help="'llm' (the --llm model), 'token-f1', a re-ranker preset (e.g. bm25), a .gguf path or "
        "an http(s) URL (default: llm)",
    )
    parser.add_argument(
        "--llm",
        default=None,
        help="LLM for generation and the LLM judge: a .gguf path, an http(s) base URL or a model "
        "name on OPENAI_BASE_URL (default: the bundled SmolLM2-135M GGUF)",
    )
    parser.add_argument(
        "--n", type=positive_int, default=None, help="generate N answers for records without candidates"
    )
    parser.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature for --n (default 0.8)"
    )
    parser.add_argument("--max-tokens", type=positive_int, default=256, help="answer length for --n (default 256)")
    parser.add_argument(
        "--pairs", default=None, help="also write chosen/rejected preference pairs here (JSONL)"
    )
    parser.add_argument(
        "--pair-strategy", default="best_vs_worst", choices=("best_vs_worst", "best_vs_rest", "all")
    )
    parser.add_argument("--min-margin", type=float, default=0.0, help="skip pairs whose score gap is <= this")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress on standard error (default: a bar on a terminal, else a line every 10 s)",
    )


def _records(path: str) -> list[Any]:
    """The records of ``path`` (``-`` = stdin): a JSON list, one JSON object, or JSONL."""
    source = "standard input" if path == "-" else repr(path)
    text = read_text(path, flag="INPUT")
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise InvalidInputError(f"{source}: not a valid JSON list ({exc}).") from exc
        return data
    try:
        whole = json.loads(stripped)
        if isinstance(whole, dict):
            return [whole]
    except ValueError:
        pass
    return [record for _, record in json_lines(text, source, "give one JSON object per line, or a JSON list")]


def _weights(spec: str | None) -> dict[str, float] | list[float] | None:
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        return [float(p) for p in parts]
    except ValueError as exc:
        raise InvalidInputError(
            f"--weights {spec!r}: use numbers, e.g. '2,1' or 'correctness=2,safety=1'."
        ) from exc


def run(args: argparse.Namespace) -> int:
    # a command-line process owns its environment: keep llama.cpp's OpenMP threads from spinning (docs/llm.md)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rankwise.progress import ProgressReporter
    from rankwise.selection import LLMJudge, as_judge, preference_pairs

    records = _records(args.input)  # read first: a missing or broken file fails before any model loads
    criteria = None if args.criteria is None else [c for c in args.criteria.split(",") if c.strip()]
    weights = _weights(args.weights)
    client = None
    if args.judge == "llm" or args.n:
        from rankwise.llm.factory import make_client

        client = make_client(args.llm)
    judge = LLMJudge(client) if args.judge == "llm" else as_judge(args.judge)
    results = []
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    progress = ProgressReporter(
        f"selecting for {len(records)} prompts", unit="prompt", enabled=not args.no_progress,
        prefix="rankwise select",
    )
    try:
        for i, record in enumerate(records):
            result = _select_one(i, record, args, client, judge, criteria, weights)
            results.append(result)
            out.write(json_line(result.to_dict()) + "\n")
            out.flush()
            progress(i + 1, len(records))
    finally:
        progress.close()
        if out is not sys.stdout:
            out.close()
    if args.pairs:
        pairs = preference_pairs(results, args.pairs, strategy=args.pair_strategy, min_margin=args.min_margin)
        print(f"wrote {len(pairs)} preference pairs to {args.pairs}", file=sys.stderr)
    return 0


def _select_one(
    i: int,
    record: Any,
    args: argparse.Namespace,
    client: Any,
    judge: Any,
    criteria: list[str] | None,
    weights: dict[str, float] | list[float] | None,
) -> Any:
    """The selection result of record ``i``: its candidates ranked, or ``--n`` answers generated and ranked."""
    from rankwise.selection import BEST_OF_N_CRITERIA, DEFAULT_CRITERIA, best_of_n, select

    if not isinstance(record, dict) or "prompt" not in record:
        raise InvalidInputError(f"record {i} needs a 'prompt' (and 'candidates' or --n); got {str(record)[:80]!r}.")
    candidates = record.get("candidates")
    if candidates is not None:
        chosen = DEFAULT_CRITERIA if criteria is None else criteria
        return select(record["prompt"], candidates, chosen, weights, judge=judge, reference=record.get("reference"))
    if not args.n:
        raise InvalidInputError(f"record {i} has no 'candidates'; add them or pass --n N to generate N.")
    return best_of_n(
        record["prompt"],
        client,
        args.n,
        criteria=BEST_OF_N_CRITERIA if criteria is None else criteria,
        weights=weights,
        judge=judge,
        reference=record.get("reference"),
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        system=record.get("system"),
    )
