"""Input checks and coercion shared by every backend: one place, one wording for each error."""

from __future__ import annotations

import json
import math
import re
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
    try:
        fields = tuple(fields)
    except TypeError:  # an int, None...: not a sequence at all
        fields = (fields,)
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
        metadata = doc.get("metadata")
        if metadata is None:
            metadata = {}
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
    """Every candidate as a :class:`Document` (the caller's Documents themselves, never copies)."""
    if isinstance(docs, (str, bytes, bytearray, Mapping, Document)):
        raise InvalidInputError(
            f"documents must be a list of candidates, got a single {type(docs).__name__} {_preview(docs)}; "
            "wrap it in a list."
        )
    if not isinstance(docs, Iterable):
        raise InvalidInputError(
            f"documents must be a list of candidates (strings, dicts with 'text', or rankwise.Document), got "
            f"{type(docs).__name__} {_preview(docs)}; pass a list, e.g. ['first text', 'second text']."
        )
    return [to_document(d, i) for i, d in enumerate(docs)]


_SURROGATE = re.compile("[\ud800-\udfff]")


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


def check_scores(scores: Sequence[float], documents: Sequence[Document], backend: str) -> list[float]:
    """Scores as plain floats; a NaN, an infinity or a count mismatch is a backend fault, reported with the
    document it hit."""
    if len(scores) != len(documents):
        raise InvalidInputError(f"{backend} returned {len(scores)} scores for {len(documents)} documents.")
    out = [float(s) for s in scores]
    for i, s in enumerate(out):
        if not math.isfinite(s):
            raise InvalidInputError(
                f"{backend} produced {'a NaN' if math.isnan(s) else 'an infinite'} score for document {i} "
                f"({_preview(documents[i].text)}); "
                "check the model's dtype (fp16 overflow?) and the input text."
            )
    return out
