"""Read documents to index from a JSONL file, a JSON file, or a folder of ``.txt`` / ``.md`` files.

* JSONL (``.jsonl``): one JSON object per line. ``_id`` or ``id`` is the document id, ``title`` and ``text`` the
  fields (BEIR's ``corpus.jsonl`` reads as is); every other key is kept in ``metadata``. A line may also be a plain
  JSON string (the text).
* JSON (``.json``): a list of such objects or strings, or an object with a ``"documents"`` list.
* A folder: every ``.txt`` and ``.md`` file under it (recursively, sorted, hidden files skipped). The id is the path
  relative to the folder, the title a Markdown file's first ``# heading`` (else None), and ``metadata["path"]`` the
  relative path. A single ``.txt`` / ``.md`` file reads as one document.

Ids are strings; a document without one gets its position (``"0"``, ``"1"``...). Duplicate ids are an error,
because passages, citations and evaluation runs refer to documents by id.

Example:
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "docs.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "Hi.", "year": 2020}))
    >>> [(d.id, d.title, dict(d.metadata)) for d in read_corpus(folder / "docs.jsonl")]
    [('d1', 'T', {'year': 2020})]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rankwise._validation import DocumentLike, to_document
from rankwise.retrieval.errors import CorpusError, EmptyCorpusError
from rankwise.types import Document

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
_ID_KEYS = ("_id", "id")
_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$")


def read_corpus(path: str | os.PathLike[str], *, text_field: str = "text", title_field: str = "title") -> list[Document]:
    """Every document in ``path`` (a ``.jsonl`` / ``.json`` file, a ``.txt`` / ``.md`` file, or a folder).

    Args:
        path: where the documents are.
        text_field, title_field: the JSON keys that hold the text and the title.

    Raises:
        CorpusError: the path does not exist, has an unknown suffix, holds invalid JSON, or repeats an id.
        EmptyCorpusError: no document was found.
    """
    source = Path(path)
    if not source.exists():
        raise CorpusError(
            f"corpus path {str(source)!r} does not exist; pass a .jsonl/.json file or a folder of .txt/.md files."
        )
    if source.is_dir():
        docs = _read_folder(source)
    elif source.suffix.lower() == ".jsonl":
        docs = _read_jsonl(source, text_field, title_field)
    elif source.suffix.lower() == ".json":
        docs = _read_json(source, text_field, title_field)
    elif source.suffix.lower() in TEXT_SUFFIXES:
        docs = [_read_text_file(source, source.parent)]
    else:
        raise CorpusError(
            f"cannot read {str(source)!r}: unknown suffix {source.suffix!r}; use .jsonl, .json, .txt, .md or a folder."
        )
    if not docs:
        raise EmptyCorpusError(
            f"no documents found in {str(source)!r}; a folder needs .txt or .md files, a JSON(L) file needs at least "
            "one document."
        )
    return prepare_documents(docs)


def prepare_documents(docs: Iterable[DocumentLike], *, existing_ids: Iterable[str] = (), start: int = 0) -> list[Document]:
    """Coerce ``docs`` to :class:`Document` with unique string ids (a missing id becomes its position, counted from
    ``start``, or the next free number when another document already has that id).

    Args:
        docs: strings, dicts or Documents.
        existing_ids: ids already taken (documents added to an existing index must not reuse them).
        start: the position of the first document (for generated ids when adding to an index).

    Raises:
        CorpusError: an id appears twice, or is already in ``existing_ids``.
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


def _from_record(record: Any, where: str, text_field: str, title_field: str) -> Document:
    if isinstance(record, str):
        return Document(text=record)
    if not isinstance(record, Mapping):
        raise CorpusError(f"{where}: expected a JSON object or string, got {type(record).__name__}.")
    doc_id = next((record[k] for k in _ID_KEYS if record.get(k) is not None), None)
    text = record.get(text_field, "")
    title = record.get(title_field)
    if not isinstance(text, str) or (title is not None and not isinstance(title, str)):
        raise CorpusError(f"{where}: {text_field!r} and {title_field!r} must be strings, got {str(record)[:80]!r}.")
    skip = {*_ID_KEYS, text_field, title_field, "metadata"}
    metadata = dict(record.get("metadata") or {})
    metadata.update({k: v for k, v in record.items() if k not in skip})
    return Document(text=text, id=None if doc_id is None else str(doc_id), title=title or None, metadata=metadata)


def _read_jsonl(path: Path, text_field: str, title_field: str) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{n}: invalid JSON ({exc.msg}); each line must be one JSON object.") from exc
            docs.append(_from_record(record, f"{path}:{n}", text_field, title_field))
    return docs


def _read_json(path: Path, text_field: str, title_field: str) -> list[Document]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if isinstance(data, Mapping) and isinstance(data.get("documents"), list):
        data = data["documents"]
    if not isinstance(data, list):
        raise CorpusError(
            f"{path}: expected a JSON list of documents or an object with a 'documents' list, "
            f"got {type(data).__name__}."
        )
    return [_from_record(r, f"{path}[{i}]", text_field, title_field) for i, r in enumerate(data)]


def _read_folder(folder: Path) -> list[Document]:
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return [_read_text_file(p, folder) for p in files]


def _read_text_file(path: Path, root: Path) -> Document:
    text = path.read_text(encoding="utf-8", errors="replace")
    rel = path.relative_to(root).as_posix()
    title = None
    if path.suffix.lower() == ".md":
        title = next((m.group(1) for m in map(_HEADING.match, text.splitlines()) if m), None)
    return Document(text=text, id=rel, title=title, metadata={"path": rel})
