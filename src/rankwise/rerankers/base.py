"""The one interface every re-ranker implements.

A backend writes a single method, :meth:`Reranker._score`, that receives a validated query and a non-empty list of
:class:`~rankwise.types.Document` and returns one float per document. Everything else -- input checks, coercion,
empty lists, NaN checks, sorting, ``top_k`` -- lives here, once.

Backends hold their options as constructor arguments and never change them on a call, so one instance can serve
concurrent requests.

Text a tokenizer cannot encode (lone UTF-16 surrogates such as ``"\\ud800"``) is ranked, not refused: the query and
document texts handed to ``_score`` pass through :func:`~rankwise.documents.model_text` (each lone surrogate becomes
U+FFFD), while the results carry the caller's own query and documents, unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rankwise._validation import check_query, check_scores, check_top_k
from rankwise.documents import DocumentLike, model_text, to_documents
from rankwise.types import Document, RankedResults

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch a backend finishes (units are backend-defined; ``done``
never decreases and the last call has ``done == total``). An exception it raises aborts the call (see
:meth:`Reranker.score`)."""


@dataclass(frozen=True)
class TokenWindow:
    """What a re-ranker with a tokenizer reads per (query, document) input: the server cuts texts and counts tokens
    with it, on the text, never by changing the shared model.

    Attributes:
        tokenizer: a ``tokenizers.Tokenizer`` with its own truncation and padding off.
        max_length: tokens per model input, special tokens included.
        n_special: special tokens around one (query, document) pair (``[CLS] q [SEP] d [SEP]``: 3).
        max_query_tokens: the query is cut to this many tokens.
        token_ids: document texts -> their token ids (no special tokens), through the model's own cache.
    """

    tokenizer: Any
    max_length: int
    n_special: int
    max_query_tokens: int
    token_ids: Callable[[list[str]], list[np.ndarray]]

    def query_tokens(self, query: str) -> int:
        """Tokens of ``query`` the model reads (at most ``max_query_tokens``)."""
        return min(len(self.tokenizer.encode(query, add_special_tokens=False).ids), self.max_query_tokens)

    def document_tokens(self, query: str) -> int:
        """Document tokens that fit next to ``query`` in one model input."""
        return max(1, self.max_length - self.n_special - self.query_tokens(query))


class Reranker(ABC):
    """Scores candidates against a query and ranks them.

    Subclasses implement :meth:`_score`. ``name`` says which model ranked (it is put on every
    :class:`~rankwise.types.RankedResults`).

    What a server, an evaluation or a composite needs to know of a re-ranker it reads from these declared abilities,
    never by probing attributes:

    * :attr:`independent_scores` -- a document's score does not depend on the other candidates (cross-encoders,
      bi-encoders, a metadata score; not BM25 over the candidates, not z-score fusion), so a request may be split into
      chunks and chunks of several requests scored together;
    * :meth:`score_groups` -- several ``(query, documents)`` groups in one call (shared batches where the backend has
      them);
    * :attr:`token_window` -- the tokenizer and window, where the model has one (else None);
    * :meth:`members` -- the re-rankers a composite (fusion, cascade) is made of.
    """

    name: str = "reranker"
    independent_scores: ClassVar[bool] = False

    @abstractmethod
    def _score(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> Sequence[float]:
        """Return one score per document (higher = more relevant). ``documents`` is never empty; ``query`` has
        been through :func:`~rankwise.documents.model_text` already. Call ``progress`` after each batch."""

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
        return RankedResults.from_scores(
            query, documents, scores, model=self.name, top_k=top_k, signals=self._signals(documents)
        )

    def _signals(self, documents: list[Document]) -> tuple[str, ...]:
        """What ranked ``documents``, for a re-ranker that chooses its evidence per call (the ``default`` preset);
        ``()`` for the others. Put on :attr:`~rankwise.types.RankedResults.signals` by :meth:`rank`."""
        return ()

    def score_groups(
        self,
        groups: Sequence[tuple[str, Sequence[DocumentLike]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[np.ndarray]:
        """Scores of several ``(query, documents)`` groups, one float64 array per group, each equal to
        ``score(query, documents)``. This default scores group after group; backends with batches override it to
        share batches between groups. ``progress(done, total)`` counts documents over all groups.
        """
        groups = [(query, list(docs)) for query, docs in groups]
        total = sum(len(docs) for _, docs in groups)
        reported = [0]

        def report(done: int) -> None:  # one count over all groups, never repeated or backwards
            if progress is not None and done > reported[0]:
                reported[0] = done
                progress(done, total)

        out: list[np.ndarray] = []
        offset = 0
        for query, docs in groups:
            def within(d: int, t: int, offset: int = offset, n: int = len(docs)) -> None:
                report(offset + d * n // max(t, 1))

            out.append(np.asarray(self.score(query, docs, progress=within), dtype=np.float64))
            offset += len(docs)
            report(offset)
        return out

    @property
    def token_window(self) -> TokenWindow | None:
        """The tokenizer and window of a model that reads tokens (cross-encoders); None for the others."""
        return None

    def members(self) -> tuple[Reranker, ...]:
        """The re-rankers this one is made of (fusion, cascade), in order; ``()`` for a single model."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
