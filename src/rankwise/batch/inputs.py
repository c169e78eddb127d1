"""What a batch job reads: the three input formats, and the checks that turn input records into scorable groups.

Formats (see docs/batch.md):

* ``beir``: a BEIR-layout folder, ``queries.jsonl`` + ``corpus.jsonl`` + a TREC run (``qid Q0 docid rank score tag``)
  listing each query's candidates; the run's lines of one query must be contiguous (as every TREC tool writes them);
* ``jsonl``: one group per line, ``{"query_id": "q1", "query": "...", "candidates": [...]}``, a candidate being a
  string or an object with ``doc_id`` (or ``id``/``_id``), ``text`` and optionally ``title`` and other fields;
* ``parquet``: rows ``(query_id, query, doc_id, text[, title, other columns])``, a query's rows contiguous.

Nothing here stops a job: a record that cannot be scored becomes a :class:`Reject` with its place and the reason.

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "groups.jsonl"
    >>> _ = path.write_text(json.dumps({"query_id": "q1", "query": "lstm", "candidates": ["a", "b"]}) + "\\n")
    >>> open_input(path).kind
    'jsonl'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rankwise._validation import check_fields, preview
from rankwise.documents import DEFAULT_FIELDS, document_text, from_record
from rankwise.errors import InvalidInputError
from rankwise.types import Document

InputKind = Literal["beir", "jsonl", "parquet"]
INPUT_FORMATS: tuple[str, ...] = ("auto", "beir", "jsonl", "parquet")
RUN_SUFFIXES: tuple[str, ...] = (".run", ".trec", ".tsv", ".txt")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
PARQUET_COLUMNS: tuple[str, ...] = ("query_id", "query", "doc_id", "text")


@dataclass(frozen=True)
class InputSource:
    """A batch input, described without reading it: picklable and small, so Ray ships it to workers.

    Attributes:
        kind: ``"beir"``, ``"jsonl"`` or ``"parquet"``.
        path: the folder (beir) or the file, absolute.
        fields: the document fields that form the text a model reads (:func:`rankwise.documents.document_text`);
            None: the re-ranker's own rule (title and text).
        run: the TREC run file of a BEIR folder (absolute), else None.
    """

    kind: InputKind
    path: str
    fields: tuple[str, ...] | None = None
    run: str | None = None

    def files(self) -> list[Path]:
        """The files this input reads (their sizes and times identify it in a run's manifest)."""
        if self.kind == "beir":
            folder = Path(self.path)
            return [folder / "queries.jsonl", folder / "corpus.jsonl", Path(self.run or "")]
        return [Path(self.path)]


@dataclass(frozen=True)
class Reject:
    """One input unit (a JSONL line or a candidate in it, a run line, a Parquet row) that was not scored, and why.

    ``where`` is ``"<file>:<line>"`` (lines from 1) or ``"<file>:<row>"`` (Parquet rows from 0).
    """

    where: str
    query_id: Any
    reason: str
    doc_id: Any = None
    candidate: int | None = None  # JSONL: the candidate's position in its line's list

    def to_dict(self) -> dict[str, Any]:
        out = {"where": self.where, "query_id": self.query_id, "reason": self.reason}
        if self.doc_id is not None:
            out["doc_id"] = self.doc_id
        if self.candidate is not None:
            out["candidate"] = self.candidate
        return out


@dataclass(frozen=True)
class Unit:
    """One group's place in the input, as the shard planner sees it (no texts): ``start``/``stop`` are byte offsets
    (JSONL, run file) or row numbers (Parquet), ``line`` the line (or row) number at ``start``, ``key`` the query
    id (None when it cannot be read), ``pairs`` the candidates it lists."""

    start: int
    stop: int
    line: int
    key: str | None
    pairs: int


@dataclass
class Group:
    """One query and its scorable candidates, in input order.

    ``rows`` holds each candidate's place for the row formats (beir, parquet), where a rejected group is one reject
    per row; it is None for JSONL, where a group is one line.
    """

    query_id: str
    query: str
    where: str
    doc_ids: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    rows: list[str] | None = None

    def reject(self, reason: str) -> list[Reject]:
        """The rejects that stand for this whole group (its line, or each of its rows)."""
        if self.rows is None:
            return [Reject(self.where, self.query_id, reason)]
        return [Reject(w, self.query_id, reason, d) for w, d in zip(self.rows, self.doc_ids)]


def open_input(
    path: str | Path,
    input_format: str | None = None,
    *,
    fields: Sequence[str] | None = None,
) -> InputSource:
    """Describe the input at ``path``; ``input_format`` None or ``"auto"`` sniffs it.

    A folder is BEIR (its single run file: ``*.run``, ``*.trec``...); a run file inside a BEIR folder is BEIR with
    that run; ``.parquet``/``.pq`` (or a file starting with ``PAR1``) is Parquet; anything else is JSONL groups.

    Raises:
        InvalidInputError: the path is missing, the format unknown, a BEIR folder lacks a file, or a Parquet file
            lacks a column or has one of the wrong type (the message names it and the fix).
    """
    fmt = "auto" if input_format is None else input_format
    if fmt not in INPUT_FORMATS:
        raise InvalidInputError(f"input_format must be one of {', '.join(INPUT_FORMATS)}; got {fmt!r}.")
    target = Path(path).expanduser().resolve()
    if not target.exists():
        raise InvalidInputError(f"input {str(path)!r} does not exist; pass a BEIR folder, a .jsonl or a .parquet file.")
    chosen = tuple(check_fields(fields)) if fields is not None else None
    kind = _sniff(target) if fmt == "auto" else fmt
    if kind == "beir":
        folder, run = _beir_parts(target)
        return InputSource("beir", str(folder), chosen, str(run))
    if target.is_dir():
        raise InvalidInputError(f"input {str(path)!r} is a folder; --input-format {kind} needs a file.")
    if kind == "parquet":
        check_parquet_schema(target)
    return InputSource(kind, str(target), chosen)  # type: ignore[arg-type]


def _sniff(target: Path) -> str:
    if target.is_dir():
        return "beir"
    if target.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    with target.open("rb") as fh:
        if fh.read(4) == b"PAR1":
            return "parquet"
    if target.suffix.lower() in RUN_SUFFIXES and (target.parent / "corpus.jsonl").is_file():
        return "beir"
    return "jsonl"


def _beir_parts(target: Path) -> tuple[Path, Path]:
    """The folder and run file of a BEIR input given as the folder or as its run file."""
    folder, run = (target, None) if target.is_dir() else (target.parent, target)
    missing = [n for n in ("queries.jsonl", "corpus.jsonl") if not (folder / n).is_file()]
    if missing:
        raise InvalidInputError(
            f"BEIR folder {str(folder)!r} has no {' and no '.join(missing)}; a BEIR input needs queries.jsonl, "
            "corpus.jsonl and a TREC run file of candidates."
        )
    if run is None:
        runs = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".run", ".trec"))
        if len(runs) != 1:
            found = ", ".join(p.name for p in runs) or "none"
            raise InvalidInputError(
                f"BEIR folder {str(folder)!r} needs exactly one run file (*.run or *.trec) of candidates, found: "
                f"{found}; pass the run file itself as the input to pick one."
            )
        run = runs[0]
    return folder, run


def check_parquet_schema(path: Path) -> None:
    """Refuse a Parquet file without the pair columns, or with ids or texts that are not strings."""
    from rankwise.errors import require

    pa = require("pyarrow", "batch", "batch re-ranking of Parquet input")
    pq = require("pyarrow.parquet", "batch", "batch re-ranking of Parquet input")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"{str(path)!r} is not a readable Parquet file ({exc}).") from exc
    missing = [c for c in PARQUET_COLUMNS if c not in schema.names]
    if missing:
        raise InvalidInputError(
            f"Parquet input {path.name!r} has no column {', '.join(missing)}; it needs columns "
            f"{', '.join(PARQUET_COLUMNS)} (plus optional title and other fields), one row per (query, candidate)."
        )
    for name in (*PARQUET_COLUMNS, *(["title"] if "title" in schema.names else [])):
        kind = schema.field(name).type
        value = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not (pa.types.is_string(value) or pa.types.is_large_string(value)):
            raise InvalidInputError(
                f"Parquet input {path.name!r}: column {name!r} is {kind}, not a string; cast it to string "
                f"(e.g. table.set_column(i, {name!r}, table[{name!r}].cast('string')))."
            )


# -- checks shared by the readers -----------------------------------------------------------------------------------
def id_problem(value: Any, what: str) -> str | None:
    """Why ``value`` cannot be a query or document id (a non-empty string that UTF-8 can carry), or None."""
    if value is None:
        return f"{what} is missing; ids must be non-empty strings."
    if not isinstance(value, str):
        fix = f' (write "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        return f"{what} must be a string, got {type(value).__name__} {preview(value)}{fix}."
    if not value.strip():
        return f"{what} is empty; ids must be non-empty strings."
    if not _utf8(value):
        return f"{what} {preview(value)} holds a lone surrogate, which no output file can store; fix the id."
    return None


def query_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a query text, or None."""
    if value is None:
        return "missing query text."
    if not isinstance(value, str):
        return f"query must be a string, got {type(value).__name__} {preview(value)}."
    if not value.strip():
        return "query text is empty."
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class GroupBuilder:
    """Adds candidates to a :class:`Group`, turning each unusable one into a :class:`Reject`.

    The rules, the same for every format: a doc id must be a non-empty string; a doc id already in the group is a
    duplicate (the first is scored, the later one rejected); a candidate whose text (``fields``, else title and
    text) is empty is rejected. With ``fields`` the model reads exactly ``document_text(doc, fields)``: the document
    handed to the re-ranker carries that text (metadata kept, so metadata-based re-rankers still see it).
    """

    def __init__(self, group: Group, fields: tuple[str, ...] | None) -> None:
        self.group = group
        self.fields = fields
        self._first: dict[str, str] = {}

    def add(self, doc_id: Any, document: Document, where: str, candidate: int | None = None) -> Reject | None:
        """Add one candidate (``candidate``: its position in a JSONL line); the reject when it cannot be scored."""
        problem = id_problem(doc_id, "doc_id")
        if problem is None and doc_id in self._first:
            problem = f"duplicate doc_id {doc_id!r} in this query (first at {self._first[doc_id]}); it is scored once."
        if problem is None:
            text = document_text(document, self.fields or DEFAULT_FIELDS)
            if not text.strip():
                problem = f"no text: the fields {', '.join(self.fields or DEFAULT_FIELDS)} are missing or empty."
        if problem is not None:
            return Reject(where, self.group.query_id, problem, doc_id, candidate)
        if self.fields is not None:
            document = Document(text=document_text(document, self.fields), id=doc_id, metadata=document.metadata)
        elif document.id != doc_id:
            document = Document(text=document.text, id=doc_id, title=document.title, metadata=document.metadata)
        self._first[doc_id] = where if candidate is None else f"candidate {candidate}"
        self.group.doc_ids.append(doc_id)
        self.group.documents.append(document)
        if self.group.rows is not None:
            self.group.rows.append(where)
        return None


def record_document(record: Any, position: int) -> Document:
    """A candidate record (a string, or a mapping read from a file) as a Document (:func:`from_record`: ``_id`` or
    ``id`` is the id, unknown keys go to metadata, an empty title is None)."""
    if isinstance(record, Mapping):
        record = {k: v for k, v in record.items() if k != "doc_id"}
    doc = from_record(record, position)
    if doc.title == "":
        doc = Document(text=doc.text, id=doc.id, title=None, metadata=doc.metadata)
    return doc


def candidate_id(record: Any, position: int) -> Any:
    """A candidate's doc id: ``doc_id``, ``id`` or ``_id`` (the first given), else its position in the group."""
    if isinstance(record, Mapping):
        for key in ("doc_id", "id", "_id"):
            if record.get(key) is not None:
                return record[key]
    return str(position)
