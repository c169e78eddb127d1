"""The values every re-ranker takes and returns.

All three types are frozen dataclasses: they compare by value, pickle without custom hooks (so they cross process
boundaries in Ray or multiprocessing unchanged), and never forward attribute access to anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankwise._validation import check_top_k, preview
from rankwise.errors import InvalidInputError


@dataclass(frozen=True)
class Document:
    """One candidate to rank: a passage, a search result, a product, an LLM answer.

    ``metadata`` is kept as the very object the caller passed (never copied or edited), so whatever it holds comes back
    in the results untouched.

    Example:
        >>> Document("LSTMs use gates.", id="d1", title="LSTM", metadata={"year": 1997}).title
        'LSTM'
    """

    text: str
    id: str | int | None = None
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidInputError(
                f"Document.text must be a str, got {type(self.text).__name__} {preview(self.text)}; "
                "convert it to a string (or put structured fields in metadata and pick them with `fields=`)."
            )
        if self.title is not None and not isinstance(self.title, str):
            raise InvalidInputError(
                f"Document.title must be a str or None, got {type(self.title).__name__} {preview(self.title)}."
            )
        if not isinstance(self.metadata, Mapping):
            raise InvalidInputError(
                f"Document.metadata must be a mapping, got {type(self.metadata).__name__}; pass a dict."
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict with the fields that are set (``metadata`` is the caller's own object)."""
        out: dict[str, Any] = {"text": self.text}
        if self.id is not None:
            out["id"] = self.id
        if self.title is not None:
            out["title"] = self.title
        if self.metadata:
            out["metadata"] = self.metadata
        return out


def rank_order(scores: Sequence[float]) -> list[int]:
    """Positions of ``scores`` from best to worst; equal scores keep input order (lower index first). The one ordering
    rule of rankwise: :meth:`RankedResults.from_scores` and the server's answers both use it.

    Example:
        >>> rank_order([0.1, 0.9, 0.9, 0.5])
        [1, 2, 3, 0]
    """
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


@dataclass(frozen=True)
class RankedResult:
    """One document with its score, its position in the caller's input (``index``) and its rank (1 = best)."""

    document: Document
    score: float
    index: int
    rank: int

    @property
    def text(self) -> str:
        return self.document.text

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "index": self.index, "score": self.score, **self.document.to_dict()}


@dataclass(frozen=True)
class RankedResults:
    """The ranking of one query's documents, best first.

    Iterating yields :class:`RankedResult` in rank order; ``results[i]`` is the i-th best. Ties in score keep the order
    of the input (lower original index first), so a ranking is deterministic.

    Example:
        >>> from rankwise.types import Document, RankedResults
        >>> r = RankedResults.from_scores("q", [Document("a"), Document("b")], [0.1, 0.9])
        >>> [x.text for x in r], r.top_k(1)[0].index
        (['b', 'a'], 1)
    """

    query: str
    results: tuple[RankedResult, ...]
    model: str | None = None
    signals: tuple[str, ...] = ()
    """What the model ranked by, where it chooses per call (the ``default`` preset: e.g. ``("first-stage-score",
    "minilm-bi-encoder")``); empty for models that always use the same evidence."""

    @classmethod
    def from_scores(
        cls,
        query: str,
        documents: list[Document],
        scores: list[float],
        *,
        model: str | None = None,
        top_k: int | None = None,
        signals: tuple[str, ...] = (),
    ) -> RankedResults:
        """Sort ``documents`` by ``scores`` (descending, ties by input order) and keep the best ``top_k``."""
        if len(documents) != len(scores):
            raise InvalidInputError(f"got {len(documents)} documents but {len(scores)} scores; they must match.")
        order = rank_order(scores)
        if top_k is not None:
            order = order[:top_k]
        ranked = tuple(
            RankedResult(document=documents[i], score=float(scores[i]), index=i, rank=r)
            for r, i in enumerate(order, start=1)
        )
        return cls(query=query, results=ranked, model=model, signals=tuple(signals))

    def __iter__(self) -> Iterator[RankedResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> RankedResult:
        return self.results[i]

    def top_k(self, k: int) -> RankedResults:
        """The ``k`` best results (all of them when fewer exist)."""
        check_top_k(k)
        return RankedResults(query=self.query, results=self.results[:k], model=self.model, signals=self.signals)

    @property
    def documents(self) -> list[Document]:
        return [r.document for r in self.results]

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.results]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One plain dict per result, best first: rank, index, score and the document's fields."""
        return [r.to_dict() for r in self.results]
