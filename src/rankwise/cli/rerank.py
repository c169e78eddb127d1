"""``rankwise rerank``: rank documents for one query from a file or standard input."""

from __future__ import annotations

import argparse
from typing import Any

from rankwise.cli._args import load_model, parse_options, positive_int
from rankwise.cli._io import json_line, printable, read_text, write
from rankwise.documents import DOC_FORMATS, from_record, parse_documents
from rankwise.errors import InvalidInputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--query", "-q", required=True, help="the query text")
    p.add_argument("--docs", "-d", required=True, help="file of documents, or '-' for standard input")
    p.add_argument("--docs-format", default="auto", choices=DOC_FORMATS, help="how --docs is laid out (default: auto)")
    p.add_argument("--model", "-m", default=None,
                   help="preset name or model folder (see `rankwise models`; default: default)")
    p.add_argument("--backend", "-b", default=None, help="backend for a model that is not a preset")
    p.add_argument("--cascade", default=None, metavar="NAME:KEEP,...",
                   help="stages instead of --model, each scoring what the previous kept, e.g. "
                   "'bm25:100,default:30' (the last stage may omit KEEP: keep all); see docs/cascade.md")
    p.add_argument("--top-k", "-k", type=positive_int, default=None, help="keep the best K (default: all)")
    p.add_argument("--format", "-f", default="table", choices=("table", "json", "jsonl"), help="output format")
    p.add_argument("--fields", default=None, help="comma-separated document fields that form the text")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, value parsed as JSON when it can be (repeatable), e.g. -o quantize=\"int8\"")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on standard error (default: a bar on a terminal, else a line every 10 s)")


def format_table(results) -> str:  # noqa: ANN001 - RankedResults
    """The results as a fixed-width table, one line per result."""
    rows = ["rank  score      index  id          text", "----  ---------  -----  ----------  " + "-" * 50]
    for r in results:
        shown = f"{r.document.title}: {r.text}" if r.document.title else r.text
        text = " ".join(shown.split())  # one line per result, whatever the document's newlines
        ident = "" if r.document.id is None else str(r.document.id)
        rows.append(printable(f"{r.rank:<4}  {r.score:>9.4f}  {r.index:>5}  {ident[:10]:<10}  {text[:70]}"))
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    from rankwise.progress import ProgressReporter

    records = parse_documents(read_text(args.docs), args.docs_format, args.docs, option="--docs-format")
    docs = [from_record(record, i) for i, record in enumerate(records)]  # BEIR's "_id" is the id, as everywhere
    options = parse_options(args.option)
    if args.fields:
        options["fields"] = [f.strip() for f in args.fields.split(",") if f.strip()]
    reranker = _reranker(args, options)
    with ProgressReporter(
        f"re-ranking {len(docs)} documents", unit="item", enabled=not args.no_progress, prefix="rankwise rerank"
    ) as progress:
        results = reranker.rank(args.query, docs, top_k=args.top_k, progress=progress)
    if args.format == "json":
        signals = {"signals": list(results.signals)} if results.signals else {}  # models that choose per call
        write(json_line({"query": results.query, "model": results.model, **signals, "results": results.to_dicts()},
                        indent=2))
    elif args.format == "jsonl":
        for row in results.to_dicts():
            write(json_line({"model": results.model, **row}))
    else:
        using = f"  using {', '.join(results.signals)}" if results.signals else ""
        write(printable(f"ranked by: {results.model}{using}  ({len(docs)} documents)"))
        write(format_table(results))
    return 0


def _reranker(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The model of ``--model``/``--backend``, or the stages of ``--cascade`` (names resolved by rankwise.load)."""
    if args.cascade is None:
        return load_model(args.model or "default", args.backend, **options)
    if args.model is not None or args.backend is not None:
        raise InvalidInputError("--cascade names its own re-rankers; give either --cascade or --model/--backend.")
    from rankwise._hub import hub_errors
    from rankwise.registry import backend_factory

    with hub_errors(args.cascade, "a cascade stage"):
        return backend_factory("cascade")(args.cascade, **options)
