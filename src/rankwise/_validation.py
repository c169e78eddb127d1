"""Input checks and coercion shared by every backend: one place, one wording for each error."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from rankwise.errors import InvalidInputError
from rankwise.types import Document, _preview

DocumentLike = Union[str, Mapping[str, Any], Document]
"""What ``score``/``rank`` accept for one candidate: a string, a dict with ``text`` (and optionally ``id``,
``title``, ``metadata`` or any other keys, which are kept in ``metadata``), or a :class:`Document`."""

DEFAULT_FIELDS: tuple[str, ...] = ("title", "text")
_DOCUMENT_KEYS = {"text", "id", "title", "metadata"}


def check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(
            f"query must be a str, got {type(query).__name__} {_preview(query)}; pass the query text."
        )
    if not query.strip():
        raise InvalidInputError(f"query is empty ({query!r}); pass a non-empty query string.")
    return query


def check_top_k(top_k: Any) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidInputError(f"top_k must be an int >= 1 or None, got {top_k!r}.")
    if top_k < 1:
        raise InvalidInputError(f"top_k must be >= 1, got {top_k}; use None to keep every document.")
    return top_k


def check_fields(fields: Any) -> tuple[str, ...]:
    if isinstance(fields, str):
        fields = (fields,)
    fields = tuple(fields)
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise InvalidInputError(
            f"fields must be a non-empty sequence of field names such as ('title', 'text'), got {fields!r}."
        )
    return fields


def to_document(doc: DocumentLike, position: int) -> Document:
    """Turn one caller-supplied candidate into a :class:`Document`, keeping every key the caller gave."""
    if isinstance(doc, Document):
        return doc
    if isinstance(doc, str):
        return Document(text=doc)
    if isinstance(doc, Mapping):
        extras = {k: v for k, v in doc.items() if k not in _DOCUMENT_KEYS}
        metadata = doc.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InvalidInputError(
                f"document {position}: 'metadata' must be a dict, got {type(metadata).__name__}."
            )
        if extras:  # structured items: unknown keys (price, url, body...) are kept, never dropped
            metadata = {**metadata, **extras}
        text = doc.get("text", "")
        if not isinstance(text, str):
            raise InvalidInputError(
                f"document {position}: 'text' must be a str, got {type(text).__name__} {_preview(text)}."
            )
        return Document(text=text, id=doc.get("id"), title=doc.get("title"), metadata=metadata)
    raise InvalidInputError(
        f"document {position} must be a str, a dict with 'text', or a rankwise.Document; "
        f"got {type(doc).__name__} {_preview(doc)}."
    )


def to_documents(docs: Iterable[DocumentLike]) -> list[Document]:
    if isinstance(docs, (str, bytes)) or isinstance(docs, Mapping):
        raise InvalidInputError(
            f"documents must be a list of candidates, got a single {type(docs).__name__} {_preview(docs)}; "
            "wrap it in a list."
        )
    return [to_document(d, i) for i, d in enumerate(docs)]


def document_text(doc: Document, fields: Sequence[str] = DEFAULT_FIELDS) -> str:
    """The text a model sees for ``doc``: the named fields that are present, joined by newlines.

    A field is looked up as ``text``/``title``/``id`` first, then in ``metadata`` (so ``fields=("name", "body")`` works
    for structured items). Missing or empty fields are skipped.
    """
    parts: list[str] = []
    for name in fields:
        if name in ("text", "title"):
            value = getattr(doc, name)
        else:
            value = doc.metadata.get(name)
        if value is None or value == "":
            continue
        parts.append(value if isinstance(value, str) else str(value))
    return "\n".join(parts)


def check_scores(scores: Sequence[float], documents: Sequence[Document], backend: str) -> list[float]:
    """Scores as plain floats; a NaN or a count mismatch is a backend fault, reported with the document it hit."""
    if len(scores) != len(documents):
        raise InvalidInputError(f"{backend} returned {len(scores)} scores for {len(documents)} documents.")
    out = [float(s) for s in scores]
    for i, s in enumerate(out):
        if math.isnan(s):
            raise InvalidInputError(
                f"{backend} produced a NaN score for document {i} ({_preview(documents[i].text)}); "
                "check the model's dtype (fp16 overflow?) and the input text."
            )
    return out
