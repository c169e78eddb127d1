"""Documents: what callers pass turned into :class:`Document`, the one rule for a document's text, and reading files.

* Convert: :func:`to_document` (a string, a dict whose unknown keys go to ``metadata``, or a Document) and
  :func:`from_record` (a record read from a file: BEIR's ``_id`` is its id).
* Text: :func:`document_text`, what every model and the server see: the chosen fields, written by :func:`field_text`,
  joined by newlines, through :func:`model_text`.
* Files: :func:`parse_documents` (JSONL, a JSON list or ``{"documents": [...]}``, plain lines: ``rankwise rerank``)
  and :func:`read_corpus` (a JSON(L) file, a ``.txt``/``.md`` file or a folder: ``rankwise index``, evaluation). Both
  read UTF-8 (a byte-order mark dropped) and split lines at ``\\n`` only: ``str.splitlines`` would also split at
  U+2028 or a form feed inside a document.

Example:
    >>> doc = from_record({"_id": "d1", "title": "LSTM", "text": "Gates.", "year": 1997}, 0)
    >>> doc.id, dict(doc.metadata), document_text(doc)
    ('d1', {'year': 1997}, 'LSTM\\nGates.')
    >>> parse_documents('{"_id": "a", "text": "x"}\\n"plain"\\n')
    [{'_id': 'a', 'text': 'x'}, 'plain']
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rankwise._validation import preview
from rankwise.errors import InvalidInputError
from rankwise.types import Document

DocumentLike = str | Mapping[str, Any] | Document
"""What ``score``/``rank`` accept for one candidate: a string, a dict with ``text`` (and optionally ``id``,
``title``, ``metadata`` or any other keys, which are kept in ``metadata``), or a :class:`Document`."""

DEFAULT_FIELDS: tuple[str, ...] = ("title", "text")
DOC_FORMATS: tuple[str, ...] = ("auto", "jsonl", "json", "lines")
TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
_DOCUMENT_KEYS = frozenset({"text", "id", "title", "metadata"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$")


class CorpusError(InvalidInputError):
    """Documents that cannot be read: a missing path, text that is not UTF-8, bad JSON, a repeated id."""


class EmptyCorpusError(InvalidInputError):
    """No document was found where documents were expected."""


# -- convert --------------------------------------------------------------------------------------------------------
def to_document(doc: DocumentLike, position: int) -> Document:
    """Turn one caller-supplied candidate into a :class:`Document`, keeping every key the caller gave."""
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, str):
        return Document(text=doc)
    if isinstance(doc, Mapping):
        extras = {k: v for k, v in doc.items() if k not in _DOCUMENT_KEYS}
        metadata = doc.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise InvalidInputError(f"document {position}: 'metadata' must be a dict, got {type(metadata).__name__}.")
        if extras:  # structured items: unknown keys (price, url, body...) are kept, never dropped
            metadata = {**metadata, **extras}
        text = doc.get("text", "")
        if not isinstance(text, str):
            what = f"{type(text).__name__} {preview(text)}"
            raise InvalidInputError(f"document {position}: 'text' must be a str, got {what}.")
        return Document(text=text, id=doc.get("id"), title=doc.get("title"), metadata=metadata)
    raise InvalidInputError(
        f"document {position} must be a str, a dict with 'text', or a rankwise.Document; "
        f"got {type(doc).__name__} {preview(doc)}."
    )


def to_documents(docs: Iterable[DocumentLike]) -> list[Document]:
    """Every candidate as a :class:`Document` (the caller's Documents themselves, never copies)."""
    if isinstance(docs, (str, bytes, bytearray, Mapping, Document)):
        raise InvalidInputError(
            f"documents must be a list of candidates, got a single {type(docs).__name__} {preview(docs)}; "
            "wrap it in a list."
        )
    if not isinstance(docs, Iterable):
        raise InvalidInputError(
            f"documents must be a list of candidates (strings, dicts with 'text', or rankwise.Document), got "
            f"{type(docs).__name__} {preview(docs)}; pass a list, e.g. ['first text', 'second text']."
        )
    return [to_document(d, i) for i, d in enumerate(docs)]


def from_record(record: Any, position: int, *, text_field: str = "text", title_field: str = "title") -> Document:
    """A record read from a file as a :class:`Document`: :func:`to_document`, where BEIR's ``_id`` is the id when
    the record has no ``id``, and ``text_field``/``title_field`` name the keys that hold the text and the title (a
    ``text``/``title`` key that is not the chosen one is kept in ``metadata``).

    Example:
        >>> from_record({"_id": 7, "body": "Hi.", "text": "kept"}, 0, text_field="body")
        Document(text='Hi.', id=7, title=None, metadata={'text': 'kept'})
    """
    if not isinstance(record, Mapping) or ("_id" not in record and (text_field, title_field) == ("text", "title")):
        return to_document(record, position)
    names = {text_field: "text", title_field: "title"}
    beir_id = record.get("id") is None and record.get("_id") is not None
    out: dict[str, Any] = {"id": record["_id"]} if beir_id else {}
    kept: dict[str, Any] = {}  # a "text"/"title" key that is not the chosen field: metadata
    for key, value in record.items():
        if key in names:
            out[names[key]] = value
        elif key in ("text", "title"):
            kept[key] = value
        elif not (beir_id and key in ("_id", "id")):
            out[key] = value
    if kept:
        nested = out.get("metadata") or {}
        out["metadata"] = {**nested, **kept} if isinstance(nested, Mapping) else nested
    return to_document(out, position)


# -- the text rule --------------------------------------------------------------------------------------------------
def model_text(text: str) -> str:
    """``text`` as a model may see it: lone UTF-16 surrogates (``"\\ud800"``, which no tokenizer can encode) become
    U+FFFD; a well-formed surrogate pair written as two code points becomes the character it encodes.

    The rule for text rankwise cannot encode: rank it anyway. Only the copy handed to a model changes; the caller's
    query and documents come back exactly as given. Text without surrogates is returned as is (the same object).

    Example:
        >>> model_text("ok \\ud800 \\ud83d\\udc4d") == "ok \\ufffd \\U0001f44d"
        True
    """
    if _SURROGATE.search(text) is None:
        return text
    # UTF-16 joins a pair's two halves; its decoder marks each lone half with one U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def field_text(value: Any) -> str:
    """The text of one document field, the one rule shared by the library and the server.

    ``str`` as is; ``dict``/``list``/``tuple`` (any Mapping too) as ``json.dumps(value, ensure_ascii=False)`` (keys
    in the caller's order, values JSON cannot encode written with ``str``); anything else (bool, int, float...)
    as ``str(value)``.

    Example:
        >>> field_text("boots"), field_text(12.5), field_text(True), field_text({"color": "brün", "sizes": [41, 42]})
        ('boots', '12.5', 'True', '{"color": "brün", "sizes": [41, 42]}')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        data = dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value
        try:
            return json.dumps(data, ensure_ascii=False, sort_keys=False, default=str)
        except (TypeError, ValueError, RecursionError):  # non-string keys, cycles: still one deterministic text
            return str(value)
    return str(value)


def document_text(doc: Document, fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """The text a model sees for ``doc``: the named fields that are present, joined by newlines.

    A field is looked up as ``text``/``title`` first, then in ``metadata`` (so ``fields=("name", "body")`` works
    for structured items). Missing (None) or empty-string fields are skipped; other values are written by
    :func:`field_text`, and the result passes through :func:`model_text` (lone surrogates -> U+FFFD).

    Example:
        >>> document_text(Document("Gates.", title="LSTM")), document_text(Document("", title="LSTM"))
        ('LSTM\\nGates.', 'LSTM')
    """
    parts: list[str] = []
    for name in fields:
        if name in ("text", "title"):
            value = getattr(doc, name)
        else:
            value = doc.metadata.get(name)
        if value is None or (isinstance(value, str) and not value):
            continue
        parts.append(field_text(value))
    return model_text("\n".join(parts))


# -- files ----------------------------------------------------------------------------------------------------------
def decode(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped), or :class:`CorpusError` naming ``source`` and the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it to UTF-8."
        ) from exc


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split at ``\\n`` only, a trailing ``\\r`` dropped (CRLF files)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def json_lines(text: str, source: str, hint: str = "each line must be one JSON value") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of JSONL ``text``; a line that is not JSON raises
    :class:`CorpusError` naming ``source`` and the line, followed by ``hint``."""
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{source}:{number}: not a JSON line ({exc.msg} at column {exc.colno}); {hint}.") from exc


def _json_documents(text: str, source: str, hint: str) -> list[Any]:  # a JSON list, or {"documents": [...]}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); {hint}.") from exc
    if isinstance(data, Mapping) and isinstance(data.get("documents"), list):
        data = data["documents"]
    if not isinstance(data, list):
        raise CorpusError(
            f"{source}: expected a JSON list of documents or an object with a 'documents' list, "
            f"got {type(data).__name__}."
        )
    return data


def _detect_format(text: str, lines: Sequence[str]) -> str:
    stripped = text.strip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{") and '"documents"' in stripped:  # parsed only when it may be {"documents": [...]}
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None  # JSONL, or not JSON at all
        if isinstance(data, dict) and isinstance(data.get("documents"), list):
            return "json"
    return "jsonl" if lines and all(ln.lstrip()[:1] in ("{", '"') for ln in lines) else "lines"


def parse_documents(
    text: str, fmt: str = "auto", source: str = "<docs>", *, option: str = "--docs-format"
) -> list[Any]:
    """The records in ``text``, as written (strings, dicts); :func:`from_record` makes each a Document.

    ``fmt``: ``jsonl``, ``json`` (a list or ``{"documents": [...]}``), ``lines`` (one per line, blank lines skipped)
    or ``auto``: JSON for a leading ``[`` or a ``{"documents": [...]}`` object, JSONL when every line starts with
    ``{`` or ``"``, else lines. Errors name ``source`` (and the line) and ``option`` (the caller's name for ``fmt``).
    """
    if fmt not in DOC_FORMATS:
        raise InvalidInputError(f"{option} must be one of {', '.join(DOC_FORMATS)}; got {fmt!r}.")
    lines = [ln for ln in split_lines(text) if ln.strip()]
    if fmt == "auto":
        fmt = _detect_format(text, lines)
    hint = f"use {option} lines for plain text"
    if fmt == "lines":
        return lines
    if fmt == "json":
        return _json_documents(text.strip(), source, hint)
    return [value for _, value in json_lines(text, source, hint)]


def read_corpus(
    path: str | os.PathLike[str],
    *,
    text_field: str = "text",
    title_field: str = "title",
    require_ids: bool = False,
) -> list[Document]:
    """Every document in ``path``, with unique string ids (a document without one gets its position).

    * ``.jsonl`` (one JSON object or string per line) or ``.json`` (a list of them, or ``{"documents": [...]}``): read
      by :func:`from_record` (``_id`` or ``id``; every other key kept in ``metadata``); an empty title is None.
      ``require_ids``: every record must carry an id (judged collections refer to documents by id).
    * A folder: every ``.txt``/``.md`` file under it (recursively, sorted, hidden files skipped); id and
      ``metadata["path"]``: the relative path; title: a Markdown file's first ``# heading``. A single ``.txt``/``.md``
      file reads as one document.

    Raises:
        CorpusError: a missing path, an unknown suffix, not UTF-8, bad JSON or records, a repeated id.
        EmptyCorpusError: no document was found.

    Example:
        >>> import json, tempfile, pathlib
        >>> corpus = pathlib.Path(tempfile.mkdtemp()) / "corpus.jsonl"
        >>> _ = corpus.write_text(json.dumps({"_id": "d1", "title": "T", "text": "Hi.", "year": 2020}))
        >>> [(d.id, d.title, dict(d.metadata)) for d in read_corpus(corpus)]
        [('d1', 'T', {'year': 2020})]
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if not source.exists():
        raise CorpusError(f"corpus path {str(source)!r} does not exist; pass a .jsonl/.json file or a folder.")
    if source.is_dir():
        docs = _read_folder(source)
    elif suffix in (".jsonl", ".json"):
        docs = _read_records(source, suffix[1:], text_field, title_field, require_ids)
    elif suffix in TEXT_SUFFIXES:
        docs = [_read_text_file(source, source.parent)]
    else:
        raise CorpusError(f"cannot read {str(source)!r}: unknown suffix {source.suffix!r}; use .jsonl, .json, .txt, "
                          ".md or a folder.")
    if not docs:
        raise EmptyCorpusError(f"no documents found in {str(source)!r}; a folder needs .txt or .md files, a JSON(L) "
                               "file at least one document.")
    return prepare_documents(docs)


def _read_records(path: Path, fmt: str, text_field: str, title_field: str, require_ids: bool) -> list[Document]:
    """The documents of a JSON or JSONL file, each error naming the file and the line (JSONL) or item (JSON)."""
    try:
        text = decode(path.read_bytes(), str(path))
    except OSError as exc:  # a permission, a broken disk: named, not a traceback
        raise CorpusError(f"cannot read {str(path)!r} ({exc.strerror or exc}).") from exc
    if fmt == "jsonl":
        records = [(f"{path}:{n}", r) for n, r in json_lines(text, str(path), "each line must be one JSON object")]
    else:
        hint = "a .json corpus holds one JSON value"
        records = [(f"{path}[{i}]", r) for i, r in enumerate(_json_documents(text, str(path), hint))]
    docs: list[Document] = []
    first_seen: dict[str, str] = {}
    for position, (where, record) in enumerate(records):
        if not isinstance(record, (str, Mapping)):
            raise CorpusError(f"{where}: expected a JSON object or string, got {type(record).__name__}.")
        try:
            doc = from_record(record, position, text_field=text_field, title_field=title_field)
        except InvalidInputError as exc:
            raise CorpusError(f"{where}: {exc}") from exc
        key = None if doc.id is None else str(doc.id)
        if require_ids and not (key or "").strip():
            raise CorpusError(f'{where}: missing "_id"; every document of a judged collection needs its id.')
        if key in first_seen:
            raise CorpusError(f"{where}: duplicate document id: {key!r} appears twice (first at {first_seen[key]}).")
        if key is not None:
            first_seen[key] = where
        if doc.title == "":  # BEIR writes "" for "no title"
            doc = Document(text=doc.text, id=doc.id, title=None, metadata=doc.metadata)
        docs.append(doc)
    return docs


def prepare_documents(
    docs: Iterable[DocumentLike], *, existing_ids: Iterable[str] = (), start: int = 0
) -> list[Document]:
    """Coerce ``docs`` to :class:`Document` with unique string ids (a missing id becomes its position, counted from
    ``start``, or the next free number when another document already has that id).

    ``existing_ids`` are ids already taken (documents added to an index must not reuse them); ``start`` is the
    position of the first document. Raises :class:`CorpusError` when an id repeats or is already taken.
    """
    taken = set(existing_ids)
    coerced = [to_document(raw, i) for i, raw in enumerate(docs)]
    explicit = {str(d.id) for d in coerced if d.id is not None}
    seen: dict[str, int] = {}
    out: list[Document] = []
    counter = start
    for i, doc in enumerate(coerced):
        if doc.id is None:  # its position, or the next free number when that id is used here or in the index
            counter = max(counter, start + i)
            while str(counter) in taken or str(counter) in explicit or str(counter) in seen:
                counter += 1
            doc_id = str(counter)
        else:
            doc_id = str(doc.id)
        if doc_id in seen:
            raise CorpusError(
                f"document id {doc_id!r} appears twice (documents {seen[doc_id]} and {i}); ids must be unique."
            )
        if doc_id in taken:
            raise CorpusError(
                f"document id {doc_id!r} (document {i}) is already in the index; give new documents new ids."
            )
        seen[doc_id] = i
        if doc.id != doc_id:
            doc = Document(text=doc.text, id=doc_id, title=doc.title, metadata=doc.metadata)
        out.append(doc)
    return out


def _read_folder(folder: Path) -> list[Document]:
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return [_read_text_file(p, folder) for p in files]


def _read_text_file(path: Path, root: Path) -> Document:
    # Lenient on purpose: one stray byte in one file of a folder of notes should not stop the whole index.
    text = path.read_text(encoding="utf-8", errors="replace")
    rel = path.relative_to(root).as_posix()
    title = None
    if path.suffix.lower() == ".md":
        title = next((m.group(1) for m in map(_HEADING.match, text.splitlines()) if m), None)
    return Document(text=text, id=rel, title=title, metadata={"path": rel})
