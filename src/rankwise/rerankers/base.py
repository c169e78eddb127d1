"""The one interface every re-ranker implements.

A backend writes a single method, :meth:`Reranker._score`, that receives a validated query and a non-empty list of
:class:`~rankwise.types.Document` and returns one float per document. Everything else -- input checks, coercion,
empty lists, NaN checks, sorting, ``top_k`` -- lives here, once.

Backends hold their options as constructor arguments and never change them on a call, so one instance can serve
concurrent requests.

Text a tokenizer cannot encode (lone UTF-16 surrogates such as ``"\\ud800"``) is ranked, not refused: the query and
document texts handed to ``_score`` pass through :func:`~rankwise._validation.model_text` (each lone surrogate becomes
U+FFFD), while the results carry the caller's own query and documents, unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from rankwise._validation import (
    DocumentLike,
    check_query,
    check_scores,
    check_top_k,
    model_text,
    to_documents,
)
from rankwise.types import Document, RankedResults

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch a backend finishes (units are backend-defined; ``done``
never decreases and the last call has ``done == total``). An exception it raises aborts the call (see
:meth:`Reranker.score`)."""


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
        """Return one score per document (higher = more relevant). ``documents`` is never empty; ``query`` has
        been through :func:`~rankwise._validation.model_text` already. Call ``progress`` after each batch."""

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
            progress: optional ``progress(done, total)`` callback, called after each batch. An exception it raises
                propagates out of this call and aborts it (no further batches run); the instance stays consistent
                and usable (caches hold only finished work). A server uses this to stop a request whose deadline
                passed between batches.

        Raises:
            InvalidInputError: the query is not a non-empty string, ``docs`` is not a list of candidates, or a
                candidate is malformed (the message names its position).
        """
        query = check_query(query)
        documents = to_documents(docs)
        if not documents:
            return []
        return check_scores(self._score(model_text(query), documents, progress), documents, self.name)

    def rank(
        self,
        query: str,
        docs: Iterable[DocumentLike],
        top_k: int | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> RankedResults:
        """Rank ``docs`` for ``query``, best first, keeping the best ``top_k`` (all when None).

        Each result keeps its original ``index`` and the caller's Document (id, title, text, metadata) unchanged;
        equal scores keep input order. ``progress`` works as in :meth:`score`: called after each batch, and an
        exception it raises aborts the call and propagates, leaving the instance consistent.

        Raises:
            InvalidInputError: as :meth:`score`, or ``top_k`` is not an int >= 1 or None.
        """
        query = check_query(query)
        top_k = check_top_k(top_k)
        documents = to_documents(docs)
        if not documents:
            return RankedResults(query=query, results=(), model=self.name)
        scores = check_scores(self._score(model_text(query), documents, progress), documents, self.name)
        return RankedResults.from_scores(query, documents, scores, model=self.name, top_k=top_k)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
