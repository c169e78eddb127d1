"""Passages: the unit that is indexed, retrieved, re-ranked and put in an LLM's context.

A document is split into windows of ``max_words`` words that overlap by ``overlap`` words, so a sentence cut at one
window's edge is whole in the next. Each :class:`Passage` keeps its document's id, title and metadata (the very
mapping, untouched), its position in the document, and the character span it covers, so its text is exactly
``document.text[start:end]`` and neighbouring passages can be merged back without duplicating the overlap.

Example:
    >>> from rankwise.types import Document
    >>> splitter = PassageSplitter(max_words=4, overlap=1)
    >>> [p.text for p in splitter.split(Document("one two three four five six seven", id="d"))]
    ['one two three four', 'four five six seven']
    >>> splitter.split(Document("one two", id="d", metadata={"k": 1}))[0].id
    'd#0'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankwise.errors import InvalidInputError
from rankwise.types import Document

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Passage:
    """One window of one document.

    Attributes:
        id: ``"<doc_id>#<position>"``, unique within an index.
        doc_id: the id of the document it comes from.
        position: 0 for the document's first passage, 1 for the next...
        text: the passage text (a slice of the document's text).
        title: the document's title.
        start, end: the character span of ``text`` in the document's text.
        metadata: the document's metadata, as given.
    """

    id: str
    doc_id: str
    position: int
    text: str
    title: str | None = None
    start: int = 0
    end: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_document(self) -> Document:
        """The passage as a re-ranker input: its id, text and title, and the document's metadata."""
        return Document(text=self.text, id=self.id, title=self.title, metadata=self.metadata)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "doc_id": self.doc_id, "position": self.position, "text": self.text,
            "title": self.title, "start": self.start, "end": self.end, "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Passage:
        return cls(
            id=str(data["id"]), doc_id=str(data["doc_id"]), position=int(data["position"]), text=str(data["text"]),
            title=data.get("title"), start=int(data.get("start", 0)), end=int(data.get("end", 0)),
            metadata=data.get("metadata") or {},
        )


@dataclass(frozen=True)
class PassageSplitter:
    """Word windows with overlap.

    Args:
        max_words: words per passage; None keeps each document whole. The default (160) fits all-MiniLM-L6-v2's
            256-token window with the title in front (about 1.3 word pieces per English word).
        overlap: words shared by consecutive passages (must be < ``max_words``).
    """

    max_words: int | None = 160
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.max_words is not None and (isinstance(self.max_words, bool) or self.max_words < 1):
            raise InvalidInputError(f"max_words must be an int >= 1 or None, got {self.max_words!r}.")
        if self.overlap < 0 or (self.max_words is not None and self.overlap >= self.max_words):
            raise InvalidInputError(
                f"overlap must be >= 0 and < max_words ({self.max_words}), got {self.overlap!r}."
            )

    def split(self, doc: Document) -> list[Passage]:
        """The passages of one document (none when both its text and title are empty)."""
        if doc.id is None:
            raise InvalidInputError("a document needs an id to be split into passages; see prepare_documents().")
        doc_id = str(doc.id)
        spans = self.spans(doc.text)
        if not spans:
            return [Passage(f"{doc_id}#0", doc_id, 0, "", doc.title, 0, 0, doc.metadata)] if doc.title else []
        return [
            Passage(f"{doc_id}#{i}", doc_id, i, doc.text[s:e], doc.title, s, e, doc.metadata)
            for i, (s, e) in enumerate(spans)
        ]

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans ``(start, end)`` of the windows over ``text`` (empty for blank text)."""
        words = [m.span() for m in _WORD.finditer(text)]
        if not words:
            return []
        size = len(words) if self.max_words is None else self.max_words
        stride = size - self.overlap if self.max_words is not None else size
        out = []
        begin = 0
        while True:
            last = min(begin + size, len(words)) - 1
            out.append((words[begin][0], words[last][1]))
            if last == len(words) - 1:
                return out
            begin += stride

    def split_all(self, docs: Iterable[Document]) -> list[Passage]:
        """The passages of every document, in document order."""
        return [p for d in docs for p in self.split(d)]

    def to_dict(self) -> dict[str, Any]:
        return {"max_words": self.max_words, "overlap": self.overlap}


def merge_passages(passages: Sequence[Passage]) -> Passage:
    """Join passages of one document into one, in document order, without repeating the overlap.

    Overlapping spans are stitched by their character offsets; consecutive windows that do not overlap are joined by a
    space, and a gap (a window in between is missing) is shown as ``" ... "``. The merged passage's id lists the merged positions (``"d#0+1"``) and its span covers them all.

    Example:
        >>> s = PassageSplitter(max_words=4, overlap=1)
        >>> p = s.split(Document("one two three four five six seven", id="d"))
        >>> merge_passages([p[1], p[0]]).text
        'one two three four five six seven'
    """
    if not passages:
        raise InvalidInputError("merge_passages needs at least one passage.")
    ordered = sorted(passages, key=lambda p: (p.start, p.position))
    first = ordered[0]
    if any(p.doc_id != first.doc_id for p in ordered):
        raise InvalidInputError(f"merge_passages got passages of several documents: {[p.doc_id for p in ordered]}.")
    text, end, last = first.text, first.end, first.position
    for p in ordered[1:]:
        if p.end <= end:  # contained in what we have
            continue
        if p.start <= end:
            text += p.text[end - p.start:]
        else:  # the next window without overlap is separated by whitespace only; a skipped window is a gap
            text += (" " if p.position == last + 1 else " ... ") + p.text
        end, last = p.end, p.position
    positions = "+".join(str(p.position) for p in ordered)
    return Passage(
        f"{first.doc_id}#{positions}", first.doc_id, first.position, text, first.title, first.start, end,
        first.metadata,
    )
