"""Reading and writing for the CLI: a file or standard input as text, and safe output.

Input is UTF-8 (a leading byte-order mark is dropped); anything else is a one-line error naming the file. Documents in
that text are parsed by :func:`rankwise.documents.parse_documents` (the library's one reader).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from rankwise.documents import decode
from rankwise.errors import InvalidInputError


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
