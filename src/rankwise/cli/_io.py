"""Reading and writing for the CLI: documents as JSONL, a JSON list, or plain text one per line; safe output.

Input is UTF-8 (a leading byte-order mark is dropped); anything else is a one-line error naming the file. Lines are
split at ``\\n`` only (``\\r\\n`` too): ``str.splitlines`` would also split at U+2028, form feeds and other separators
that may sit inside a document or a JSON string, silently turning one document into two.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from rankwise.errors import InvalidInputError

DOC_FORMATS = ("auto", "jsonl", "json", "lines")


def decode(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (BOM dropped), or :class:`InvalidInputError` naming ``source`` and the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it to UTF-8."
        ) from exc


def read_text(source: str, flag: str = "--docs") -> str:
    """The text of file ``source``, or of standard input for ``-``; ``flag`` names the option in errors."""
    if source == "-":
        stream = sys.stdin
        buffer = getattr(stream, "buffer", None)
        return decode(buffer.read(), "standard input") if buffer is not None else stream.read()
    path = Path(source)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise InvalidInputError(f"{flag} {source!r}: {what}; pass a file, or '-' to read standard input.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{flag} {source!r}: cannot read it ({exc.strerror or exc}).") from exc
    return decode(data, f"{flag} {source!r}")


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split at ``\\n`` only, a trailing ``\\r`` dropped (CRLF files)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def parse_documents(text: str, fmt: str = "auto", source: str = "<docs>") -> list[Any]:
    """Documents from ``text``: ``auto`` picks JSON for a leading ``[``, JSONL when every line is a JSON value
    starting with ``{`` or ``"``, and plain lines otherwise (blank lines skipped)."""
    if fmt not in DOC_FORMATS:
        raise InvalidInputError(f"--docs-format must be one of {', '.join(DOC_FORMATS)}; got {fmt!r}.")
    stripped = text.strip()
    lines = [ln for ln in split_lines(text) if ln.strip()]
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
            raise InvalidInputError(
                f"{source}: not valid JSON ({exc}); use --docs-format lines for plain text."
            ) from exc
        if not isinstance(docs, list):
            raise InvalidInputError(f"{source}: a JSON document list must be an array, got {type(docs).__name__}.")
        return docs
    out = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{source}:{number}: not a JSON line ({exc}); use --docs-format lines for plain text."
            ) from exc
    return out


# Characters JSON may carry raw inside strings but that line readers (Python's str.splitlines, JavaScript) take
# for line breaks: escaped, so one JSONL record is always exactly one line. json.dumps never writes them outside a
# string, so a plain replace is exact.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON, non-ASCII text kept readable; lone surrogates (which no UTF-8 output can carry) and
    Unicode line separators escaped. Either way ``json.loads`` gives back exactly the same strings."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, indent=indent, default=str)
    for raw, escaped in _LINE_BREAKS.items():
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def printable(text: str) -> str:
    """``text`` safe to print on a UTF-8 stream: a lone surrogate shows as ``\\udxxx`` (display only)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def write(line: str, stream: TextIO | None = None) -> None:
    """Print ``line`` to ``stream`` (default stdout); characters the stream's encoding lacks are escaped."""
    out = stream if stream is not None else sys.stdout
    try:
        print(line, file=out)
    except UnicodeEncodeError:  # e.g. a latin-1 terminal: show an escape rather than fail after the work is done
        encoding = getattr(out, "encoding", None) or "ascii"
        print(line.encode(encoding, "backslashreplace").decode(encoding), file=out)
