"""The ``rankwise`` command line: one module per subcommand, imported only when that subcommand runs.

Each module in this package defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rankwise.errors import RankwiseError

# subcommand -> module; add a line here to add a subcommand.
COMMANDS: dict[str, str] = {
    "rerank": "rankwise.cli.rerank",
    "index": "rankwise.cli.index",
    "search": "rankwise.cli.search",
    "ask": "rankwise.cli.ask",
    "models": "rankwise.cli.models",
    "eval": "rankwise.cli.eval",
    "serve": "rankwise.cli.serve",
    "select": "rankwise.cli.select",
}

# One-line summaries, kept here so `rankwise --help` does not import every subcommand's dependencies.
SUMMARIES: dict[str, str] = {
    "rerank": "re-rank documents for a query (JSONL, JSON list, or one per line)",
    "index": "build a BM25 + dense (FAISS) index of documents (JSONL, JSON, or a folder of .txt/.md)",
    "search": "search an index: ranked passages (BM25, dense or hybrid, optional re-ranking)",
    "ask": "answer a question from an index with an LLM: cited answer, sources, timings",
    "models": "list model presets, what each needs, and whether it works offline",
    "eval": "evaluate re-rankers on a judged dataset (nDCG@10, MRR@10, Recall@100, MAP, significance)",
    "serve": "serve re-ranking over HTTP (Cohere v1/v2, Jina and TEI APIs) with dynamic batching",
    "select": "rank LLM answers by criteria (correctness, safety...), best-of-n, preference pairs for DPO",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    from rankwise import __version__

    parser = argparse.ArgumentParser(prog="rankwise", description="Re-rank candidates for search, RAG and LLMs.")
    parser.add_argument("--version", action="version", version=f"rankwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        p = sub.add_parser(name, help=SUMMARIES.get(name, ""), description=SUMMARIES.get(name, ""))
        if name == command:  # only the chosen subcommand's module (and its imports) is loaded
            importlib.import_module(COMMANDS[name]).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command])
    try:
        return int(module.run(args) or 0)
    except RankwiseError as exc:  # expected user errors: one clear line, no traceback
        print(f"rankwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
