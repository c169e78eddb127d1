"""``rankwise rerank``: rank documents for one query from a file or standard input."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rankwise.cli._io import DOC_FORMATS, parse_documents, read_text
from rankwise.errors import InvalidInputError

HELP = "re-rank documents for a query (JSONL, JSON list, or one per line)"
PROGRESS_MIN_DOCS = 200  # below this a progress bar is noise


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--query", "-q", required=True, help="the query text")
    p.add_argument("--docs", "-d", required=True, help="file of documents, or '-' for standard input")
    p.add_argument("--docs-format", default="auto", choices=DOC_FORMATS, help="how --docs is laid out (default: auto)")
    p.add_argument("--model", "-m", default="default", help="preset name or model folder (see `rankwise models`)")
    p.add_argument("--backend", "-b", default=None, help="backend for a model that is not a preset")
    p.add_argument("--top-k", "-k", type=int, default=None, help="keep the best K (default: all)")
    p.add_argument("--format", "-f", default="table", choices=("table", "json", "jsonl"), help="output format")
    p.add_argument("--fields", default=None, help="comma-separated document fields that form the text")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, value parsed as JSON when it can be (repeatable), e.g. -o quantize=\"int8\"")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def parse_options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--option {item!r} must look like KEY=VALUE, e.g. batch_size=16.")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


class _Progress:
    """A one-line progress bar on standard error (tqdm when installed)."""

    def __init__(self, enabled: bool) -> None:
        self.bar = None
        self.enabled = enabled

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="pair", file=sys.stderr, leave=False)
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.total = total
            self.bar.update(done - self.bar.n)
        else:
            print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def format_table(results) -> str:  # noqa: ANN001 - RankedResults
    rows = ["rank  score      index  id          text", "----  ---------  -----  ----------  " + "-" * 50]
    for r in results:
        shown = f"{r.document.title}: {r.text}" if r.document.title else r.text
        text = " ".join(shown.split())  # one line per result, whatever the document's newlines
        ident = "" if r.document.id is None else str(r.document.id)
        rows.append(f"{r.rank:<4}  {r.score:>9.4f}  {r.index:>5}  {ident[:10]:<10}  {text[:70]}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    import rankwise

    docs = parse_documents(read_text(args.docs), args.docs_format, args.docs)
    options = parse_options(args.option)
    if args.fields:
        options["fields"] = [f.strip() for f in args.fields.split(",") if f.strip()]
    reranker = rankwise.load(args.model, backend=args.backend, **options)
    progress = _Progress(enabled=not args.no_progress and sys.stderr.isatty() and len(docs) >= PROGRESS_MIN_DOCS)
    try:
        results = reranker.rank(args.query, docs, top_k=args.top_k, progress=progress)
    finally:
        progress.close()
    if args.format == "json":
        print(json.dumps({"query": results.query, "model": results.model, "results": results.to_dicts()},
                         ensure_ascii=False, indent=2, default=str))
    elif args.format == "jsonl":
        for row in results.to_dicts():
            print(json.dumps({"model": results.model, **row}, ensure_ascii=False, default=str))
    else:
        print(f"ranked by: {results.model}  ({len(docs)} documents)")
        print(format_table(results))
    return 0
