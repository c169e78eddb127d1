"""How the CLI reports a failure: one line on standard error, in the command line's own words.

Policy (also in ``rankwise --help``):

* A user mistake or an environment problem -- any :class:`~rankwise.errors.RankwiseError` (bad input, unknown
  model or option, missing extra, LLM or index errors), a file that cannot be read (``OSError``), text that is not
  UTF-8 or not JSON -- prints ``rankwise COMMAND: error: MESSAGE`` and exits with status 2.
* Anything else is a bug in rankwise: one line ``rankwise COMMAND: internal error: TYPE: MESSAGE (run with --debug
  for the traceback)`` and exit status 1, so scripts and tests can tell a bug from a mistake.
* ``--debug`` prints the full traceback first, for both kinds.

The library's messages name Python arguments (``top_k``, ``backend=...``, ``rankwise.load(...)``); the CLI user
typed flags, so :func:`cli_wording` rewrites those names into the flags that set them.
"""

from __future__ import annotations

import json
import re

from rankwise.errors import RankwiseError

USER_ERROR = 2
INTERNAL_ERROR = 1

_Rules = tuple[tuple[re.Pattern[str], str], ...]
_LOAD_WITH_BACKEND = r"rankwise\.load\((['\"])([^'\"]*)\1, backend=(['\"])([^'\"]*)\3\)"

# (pattern, replacement): Python names in library messages -> the flags that set them. Each pattern is anchored
# on a form only a Python name takes (``backend=``, ``rankwise.load(``, an identifier with an underscore), so plain
# words stay untouched. How a model and its backend are named differs per command.
_MODEL_WORDING: dict[str, _Rules] = {
    "rerank": (
        (re.compile(_LOAD_WITH_BACKEND), r"--model \2 --backend \4"),
        (re.compile(r"rankwise\.load\((['\"])([^'\"]*)\1\)"), r"--model \2"),
        (re.compile(r"\bbackend=\.\.\."), "--backend ..."),
        (re.compile(r"\bbackend=None\b"), "no --backend"),
        (re.compile(r"\bbackend=(['\"]?)([\w-]+)\1"), r"--backend \2"),
    ),
    "eval": (
        (re.compile(_LOAD_WITH_BACKEND), r"--reranker \2:\4"),
        (re.compile(r"\bbackend=\.\.\."), "--reranker NAME:BACKEND"),
    ),
    "search": (  # --rerank takes a preset or a folder; no backend flag
        (re.compile(_LOAD_WITH_BACKEND), r"--rerank ./a-downloaded-model-folder"),
        (re.compile(r"\bpass backend=\.\.\."), "pass a downloaded model folder to --rerank (backends:"),
        (re.compile(r"\(one of ([^)]*)\)"), r"\1)"),
    ),
}
_MODEL_WORDING["serve"] = _MODEL_WORDING["rerank"]
_MODEL_WORDING["ask"] = _MODEL_WORDING["search"]
_COMMON_WORDING: _Rules = (
    (re.compile(r" \(or rankwise\.retrieval\.Index\.build\(.*?\)\.save\(folder\)\)"), ""),  # the Python way
    (re.compile(r"\btop_k\b"), "--top-k"),
    (re.compile(r"\btop_n\b"), "--top-n"),
    (re.compile(r"\bcontext_tokens\b"), "--context-tokens"),
    (re.compile(r"\bmax_queries\b"), "--max-queries"),
)


def cli_wording(message: str, command: str | None = "rerank") -> str:
    """``message`` with the library's Python argument names replaced by the flags of ``command`` that set them."""
    rules = _MODEL_WORDING.get(command or "", ()) + _COMMON_WORDING
    for pattern, replacement in rules:
        message = pattern.sub(replacement, message)
    return message


def one_line(text: str, limit: int = 2000) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException, command: str | None = None) -> tuple[str, int]:
    """``(message, exit status)`` for an exception that reached the top level of ``rankwise COMMAND``."""
    if isinstance(exc, RankwiseError):
        return cli_wording(str(exc), command), USER_ERROR
    if isinstance(exc, UnicodeDecodeError):
        return f"input is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it to UTF-8.", USER_ERROR
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}", USER_ERROR
    if isinstance(exc, OSError):
        return _os_error(exc), USER_ERROR
    return f"{type(exc).__name__}: {exc}", INTERNAL_ERROR


def _os_error(exc: OSError) -> str:
    """``cannot read 'x.jsonl': No such file or directory`` for a path error; the message itself otherwise."""
    if exc.filename is not None and exc.strerror:
        target = repr(str(exc.filename))
        if exc.filename2 is not None:
            target += f" -> {str(exc.filename2)!r}"
        return f"{target}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def format_error(command: str | None, exc: BaseException) -> tuple[str, int]:
    """The one line to print for ``exc`` and the exit status."""
    message, status = describe(exc, command)
    who = f"rankwise {command}" if command else "rankwise"
    if status == INTERNAL_ERROR:
        return one_line(f"{who}: internal error: {message}") + " (run with --debug for the traceback)", status
    return one_line(f"{who}: error: {message}"), status
