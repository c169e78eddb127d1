"""BM25 over the candidates you pass (bm25s), the cheap lexical signal in a hybrid re-ranker.

Statistics (document frequencies, average length) come from the candidate set itself, so the scores need no index
and work for any list of documents. For BM25 over a whole corpus (first-stage retrieval) see
:mod:`rankwise.retrieval`.

Example:
    >>> from rankwise import BM25Reranker
    >>> BM25Reranker().rank("lstm memory", ["CNNs see images.", "LSTMs keep long-term memory."]).top_k(1)[0].index
    1
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType

from rankwise._validation import check_fields
from rankwise.documents import DEFAULT_FIELDS, document_text
from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document


def load_bm25s() -> ModuleType:
    """Import bm25s, undoing the DEBUG level it forces on its logger at import time (every ``index()`` call would
    otherwise log a line through the application's handlers); the logger then follows the application's config."""
    bm25s = require("bm25s", "retrieval", "BM25 re-ranking")
    logger = logging.getLogger("bm25s")
    if logger.level == logging.DEBUG:
        logger.setLevel(logging.NOTSET)
    return bm25s


TOKENIZE_CHUNK = 64  # documents tokenized between two progress reports


class BM25Reranker(Reranker):
    """Okapi BM25 (Lucene variant) scores of each candidate for the query.

    Args:
        k1, b: BM25 parameters; the defaults (0.9, 0.4) are Anserini's, tuned on MS MARCO and used by BEIR baselines.
        stemmer: a PyStemmer language (``"english"``) or None for no stemming.
        stopwords: a bm25s stopword list name (``"en"``), a list of words, or None.
        fields: document fields that form the text (metadata keys allowed).
    """

    def __init__(
        self,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        stemmer: str | None = "english",
        stopwords: str | Sequence[str] | None = "en",
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str = "bm25",
    ) -> None:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (k1, b))
        if not numbers or not k1 >= 0 or not 0 <= b <= 1:  # `not >=` also refuses NaN
            raise InvalidInputError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1!r}, b={b!r}.")
        self._bm25s = load_bm25s()
        if stemmer is not None:
            stemmer_lib = require("Stemmer", "retrieval", "BM25 stemming (PyStemmer)")
            try:
                self._stemmer = stemmer_lib.Stemmer(stemmer)
            except KeyError as exc:
                raise InvalidInputError(
                    f"unknown stemmer language {stemmer!r}; one of {', '.join(stemmer_lib.algorithms())}."
                ) from exc
        else:
            self._stemmer = None
        self.k1, self.b = k1, b
        self.stopwords = list(stopwords) if stopwords is not None and not isinstance(stopwords, str) else stopwords
        self.fields = check_fields(fields)
        self.name = name

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        """Lower-cased, stop-worded, stemmed tokens, exactly as the scorer sees them."""
        return self._bm25s.tokenize(
            texts, stopwords=self.stopwords or [], stemmer=self._stemmer, return_ids=False, show_progress=False
        )

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        """BM25 of each document; 0 for all when the query shares no indexable token with any document.

        Candidates with no indexable token at all (``"A"``, ``"7"``, ``"👍"``, only stop words, empty) score 0: bm25s
        cannot index a corpus without tokens, and a query token that no candidate holds adds nothing to any score,
        so such tokens are dropped before scoring.

        Documents are tokenized ``TOKENIZE_CHUNK`` at a time with ``progress`` after each chunk: tokenizing is pure
        Python work, so a caller (a server's worker between requests) can stop or pause between chunks.
        """
        query_tokens = self.tokenize([query])[0]
        corpus: list[list[str]] = []
        if query_tokens:
            texts = [document_text(d, self.fields) for d in documents]
            for start in range(0, len(texts), TOKENIZE_CHUNK):
                corpus.extend(self.tokenize(texts[start : start + TOKENIZE_CHUNK]))
                if progress is not None and len(corpus) < len(texts):
                    progress(len(corpus), len(texts))
        vocabulary = {token for tokens in corpus for token in tokens}
        query_tokens = [t for t in query_tokens if t in vocabulary]
        if query_tokens:
            index = self._bm25s.BM25(k1=self.k1, b=self.b)
            index.index(corpus, show_progress=False)
            scores = [float(s) for s in index.get_scores(query_tokens)]
        else:  # no token in common (only stop words, digits, emoji...): no lexical evidence either way
            scores = [0.0] * len(documents)
        if progress is not None:
            progress(len(documents), len(documents))
        return scores
