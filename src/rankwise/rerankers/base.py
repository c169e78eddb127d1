"""The one interface every re-ranker implements.

A backend writes a single method, :meth:`Reranker._score`, that receives a validated query and a non-empty list of
:class:`~rankwise.types.Document` and returns one float per document. Everything else -- input checks, coercion,
empty lists, NaN checks, sorting, ``top_k`` -- lives here, once.

Backends hold their options as constructor arguments and never change them on a call, so one instance can serve
concurrent requests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from rankwise._validation import (
    DocumentLike,
    check_query,
    check_scores,
    check_top_k,
    to_documents,
)
from rankwise.types import Document, RankedResults

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a backend works through its batches (units are backend-defined)."""


class Reranker(ABC):
    """Scores candidates against a query and ranks them.

    Subclasses implement :meth:`_score`. ``name`` says which model ranked (it is put on every
    :class:`~rankwise.types.RankedResults`).
    """

    name: str = "reranker"

    @abstractmethod
    def _score(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> Sequence[float]:
        """Return one score per document (higher = more relevant). ``documents`` is never empty."""

    def score(
        self,
        query: str,
        docs: Iterable[DocumentLike],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[float]:
        """Score each candidate against ``query``, in input order.

        Args:
            query: the query text (non-empty).
            docs: strings, dicts with ``text`` (plus optional ``id``/``title``/``metadata``/other keys) or Documents.
            progress: optional ``progress(done, total)`` callback.
        """
        query = check_query(query)
        documents = to_documents(docs)
        if not documents:
            return []
        return check_scores(self._score(query, documents, progress), documents, self.name)

    def rank(
        self,
        query: str,
        docs: Iterable[DocumentLike],
        top_k: int | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> RankedResults:
        """Rank ``docs`` for ``query``, best first, keeping the best ``top_k`` (all when None).

        Each result keeps its original ``index`` and the caller's id, title and metadata unchanged.
        """
        query = check_query(query)
        top_k = check_top_k(top_k)
        documents = to_documents(docs)
        if not documents:
            return RankedResults(query=query, results=(), model=self.name)
        scores = check_scores(self._score(query, documents, progress), documents, self.name)
        return RankedResults.from_scores(query, documents, scores, model=self.name, top_k=top_k)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
