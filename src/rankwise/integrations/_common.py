"""What the LangChain and LlamaIndex adapters share: field validation and building rankwise Documents.

The two frameworks wrap different pydantic base classes, so the adapters cannot share a model class; they share
these plain functions instead (registered as pydantic field validators in each adapter), which keeps the two
adapters' rules and error messages identical.

Example:
    >>> check_top_n(None), check_top_n(3)
    (None, 3)
    >>> to_document("LSTMs keep memory.", "d1", {"title": "LSTM", "src": "a"}, "title").title
    'LSTM'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rankwise.errors import InvalidInputError


def check_reranker(value: Any) -> Any:
    """``value`` itself when it is a rankwise :class:`~rankwise.Reranker`, else :class:`InvalidInputError`."""
    from rankwise.rerankers.base import Reranker  # at call time: importing an adapter stays light

    if not isinstance(value, Reranker):
        raise InvalidInputError(f"reranker must be a rankwise Reranker, got {type(value).__name__}.")
    return value


def check_top_n(value: int | None) -> int | None:
    """``value`` itself when it is None or >= 1, else :class:`InvalidInputError`."""
    if value is not None and value < 1:
        raise InvalidInputError(f"top_n must be >= 1 or None, got {value}.")
    return value


def to_document(text: str, id: str | None, metadata: Mapping[str, Any], title_key: str | None) -> Any:
    """A rankwise :class:`~rankwise.types.Document`, titled ``metadata[title_key]`` when that is a str."""
    from rankwise.types import Document

    title = metadata.get(title_key) if title_key else None
    return Document(text=text, id=id, title=title if isinstance(title, str) else None, metadata=metadata)
