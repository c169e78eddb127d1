"""Reading candidate documents for the CLI: JSONL, a JSON list, or plain text one document per line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError

DOC_FORMATS = ("auto", "jsonl", "json", "lines")


def read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(f"--docs {source!r} is not a file; pass a path, or '-' to read standard input.")
    return path.read_text(encoding="utf-8")


def parse_documents(text: str, fmt: str = "auto", source: str = "<docs>") -> list[Any]:
    """Documents from ``text``: ``auto`` picks JSON for a leading ``[``, JSONL when every line is a JSON value
    starting with ``{`` or ``"``, and plain lines otherwise (blank lines skipped)."""
    if fmt not in DOC_FORMATS:
        raise InvalidInputError(f"--docs-format must be one of {', '.join(DOC_FORMATS)}; got {fmt!r}.")
    stripped = text.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if fmt == "auto":
        if stripped.startswith("["):
            fmt = "json"
        elif lines and all(ln.lstrip()[:1] in ("{", '"') for ln in lines):
            fmt = "jsonl"
        else:
            fmt = "lines"
    if fmt == "lines":
        return lines
    if fmt == "json":
        try:
            docs = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{source}: not valid JSON ({exc}); use --docs-format lines for plain text.") from exc
        if not isinstance(docs, list):
            raise InvalidInputError(f"{source}: a JSON document list must be an array, got {type(docs).__name__}.")
        return docs
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{source}:{number}: not a JSON line ({exc}).") from exc
    return out
