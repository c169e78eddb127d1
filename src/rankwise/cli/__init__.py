"""The ``rankwise`` command line: one module per subcommand, imported only when that subcommand runs.

Each module in this package defines ``add_arguments(parser)`` and ``run(args) -> int``; its one-line summary is in
:data:`SUMMARIES`, so ``rankwise --help`` imports no subcommand.
Errors are turned into one line and an exit status at one place, :func:`main` (policy: ``cli/_errors.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

USER_ERROR = 2  # exit status of a user mistake (rankwise.cli._errors has the policy)

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
    "batch": "rankwise.cli.batch",
    "train": "rankwise.cli.train",
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
    "batch": "re-rank a whole dataset (BEIR, JSONL, Parquet) into Parquet shards; resumable, local or on Ray",
    "train": "train on your judgments: LambdaMART (ltr) over re-rankers and features, or fine-tune a cross-encoder",
}


EPILOG = (
    "A mistake in the input or the options prints one line and exits with status 2; a bug in rankwise prints one "
    "line and exits with status 1. --debug (before or after COMMAND) also prints the Python traceback."
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``rankwise rerank: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        from rankwise.cli._errors import one_line

        self.exit(USER_ERROR, one_line(f"{self.prog}: error: {message} (see '{self.prog} --help')") + "\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``rankwise`` parser; only ``command``'s module (and its imports) is loaded for its arguments."""
    from rankwise import __version__

    parser = _Parser(prog="rankwise", description="Re-rank candidates for search, RAG and LLMs.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"rankwise {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=SUMMARIES.get(name, ""), description=SUMMARIES.get(name, ""), epilog=EPILOG)
        # SUPPRESS: a --debug given before COMMAND is not reset by the subcommand's default
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rankwise ARGS``; returns the exit status: 0 ok, 2 a user mistake, 1 a bug in rankwise, 130 interrupted,
    141 standard output closed early (``| head``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's error line (or --help/--version) is printed: return the status
        return exc.code if isinstance(exc.code, int) else USER_ERROR
    if args.command is None:
        parser.print_help()
        return 2
    if not _stderr_is_tty():
        _quiet_hub_bars()
    try:
        module = importlib.import_module(COMMANDS[args.command])
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rankwise rerank ... | head`: the reader left; no line, the shell's SIGPIPE status
        _silence_stdout()
        return 141
    except Exception as exc:  # noqa: BLE001 - the CLI's boundary: every error becomes one line (policy above)
        from rankwise.cli._errors import format_error
        from rankwise.cli._io import printable, write

        if args.debug:
            traceback.print_exc()
        line, status = format_error(args.command, exc)
        write(printable(line), sys.stderr)
        return status


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _quiet_hub_bars() -> None:
    """Off a terminal, no tqdm bars from transformers / huggingface_hub ("Loading weights" redrawn into a log file):
    rankwise reports its own progress in plain lines. The environment variable covers the libraries imported later
    in this process; the calls cover those already imported (``main`` called in process)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    elif "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests): nothing to flush
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
