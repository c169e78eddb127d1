"""Input checks shared by every backend: one place, one wording for each error.

The checks sit below every other module (they import only :mod:`rankwise.errors`), so :mod:`rankwise.types` and
:mod:`rankwise.documents` can use them without an import cycle. Turning documents into :class:`~rankwise.Document`
is :mod:`rankwise.documents`' job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from rankwise.errors import InvalidInputError


class _HasText(Protocol):
    text: str


def preview(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages that show the offending value.

    Example:
        >>> preview("x" * 100, limit=10)
        "'xxxxxx..."
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise InvalidInputError(
            f"query must be a str, got {type(query).__name__} {preview(query)}; pass the query text."
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


def check_scores(scores: Sequence[float], documents: Sequence[_HasText], backend: str) -> list[float]:
    """Scores as plain floats; a NaN, an infinity or a count mismatch is a backend fault, reported with the
    document it hit."""
    if len(scores) != len(documents):
        raise InvalidInputError(f"{backend} returned {len(scores)} scores for {len(documents)} documents.")
    out = [float(s) for s in scores]
    for i, s in enumerate(out):
        if not math.isfinite(s):
            raise InvalidInputError(
                f"{backend} produced {'a NaN' if math.isnan(s) else 'an infinite'} score for document {i} "
                f"({preview(documents[i].text)}); "
                "check the model's dtype (fp16 overflow?) and the input text."
            )
    return out
