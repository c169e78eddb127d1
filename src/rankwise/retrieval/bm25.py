"""BM25 over a whole collection of passages (bm25s), saved to and loaded from disk, extendable without re-tokenizing.

Tokenization is exactly :class:`~rankwise.rerankers.lexical.BM25Reranker`'s (lower-cased, stop words removed,
Snowball-stemmed), so first-stage and re-ranking BM25 agree. The token ids of every passage are kept: adding passages
tokenizes only the new ones and recomputes bm25s's score matrix from the stored tokens, because BM25's statistics (IDF,
average length) belong to the whole collection; the scores are then exactly those of a full rebuild.

Example:
    >>> from rankwise.retrieval.passages import Passage
    >>> index = BM25Index()
    >>> index.add([Passage("a#0", "a", 0, "LSTMs keep long-term memory."), Passage("b#0", "b", 0, "CNNs see images.")])
    >>> positions, scores = index.search("lstm memory", 1)
    >>> positions.tolist()
    [0]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.documents import DEFAULT_FIELDS, document_text
from rankwise.errors import require
from rankwise.retrieval.passages import Passage


class BM25Index:
    """Okapi BM25 (Lucene variant) over passages; positions are the order passages were added.

    Args:
        k1, b: BM25 parameters (Anserini's 0.9 / 0.4 by default, as in BEIR's baselines).
        stemmer: PyStemmer language or None.
        stopwords: a bm25s stop-word list name (``"en"``), a list of words, or None.
        fields: the passage fields that are indexed (``title`` and ``text``; metadata keys allowed).
    """

    def __init__(
        self,
        *,
        k1: float = 0.9,
        b: float = 0.4,
        stemmer: str | None = "english",
        stopwords: str | Sequence[str] | None = "en",
        fields: Sequence[str] = DEFAULT_FIELDS,
    ) -> None:
        from rankwise.rerankers.lexical import BM25Reranker

        self._tokenizer = BM25Reranker(k1=k1, b=b, stemmer=stemmer, stopwords=stopwords, fields=fields)
        self._bm25s = require("bm25s", "retrieval", "The BM25 index")
        self.k1, self.b, self.stemmer = k1, b, stemmer
        self.stopwords = self._tokenizer.stopwords
        self.fields = self._tokenizer.fields
        self._vocab: dict[str, int] = {}
        self._tokens: list[np.ndarray] = []
        self._model: Any = None

    def __len__(self) -> int:
        return len(self._tokens)

    def config(self) -> dict[str, Any]:
        """The parameters, as stored in an index manifest."""
        return {
            "k1": self.k1, "b": self.b, "stemmer": self.stemmer, "stopwords": self.stopwords,
            "fields": list(self.fields),
        }

    def add(self, passages: Sequence[Passage]) -> None:
        """Tokenize ``passages`` and append them (positions continue from :func:`len`)."""
        if not passages:
            return
        texts = [document_text(p.to_document(), self.fields) for p in passages]
        vocab = dict(self._vocab)
        new = []
        for tokens in self._tokenizer.tokenize(texts):
            new.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32))
        self._reindex(self._tokens + new, vocab)

    def _reindex(self, tokens: list[np.ndarray], vocab: dict[str, int]) -> None:
        model = None
        if vocab:  # no indexable word anywhere (e.g. only stop words): every score is 0, bm25s is not needed
            model = self._bm25s.BM25(k1=self.k1, b=self.b)
            model.index(([t.tolist() for t in tokens], dict(vocab)), show_progress=False)
        self._model, self._tokens, self._vocab = model, tokens, vocab  # swap only once the new index is whole

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for ``query`` (zeros when the query has no indexable word)."""
        tokens = self._tokenizer.tokenize([query])[0]
        if self._model is None or not tokens or not any(t in self._model.vocab_dict for t in tokens):
            return np.zeros(len(self._tokens), dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and scores of the ``k`` best passages, best first (ties by position)."""
        return top_k_of(self.scores(query), k)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._model is not None:
            self._model.save(str(folder / "bm25s"), show_progress=False)
        lengths = np.array([len(t) for t in self._tokens], dtype=np.int64)
        flat = np.concatenate(self._tokens) if self._tokens else np.zeros(0, dtype=np.int32)
        np.save(folder / "tokens.npy", flat)
        np.save(folder / "lengths.npy", lengths)
        (folder / "vocab.json").write_text(json.dumps(self._vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> BM25Index:
        index = cls(
            k1=config["k1"], b=config["b"], stemmer=config["stemmer"], stopwords=config["stopwords"],
            fields=config["fields"],
        )
        flat = np.load(folder / "tokens.npy")
        lengths = np.load(folder / "lengths.npy")
        index._vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        index._tokens = list(np.split(flat, np.cumsum(lengths)[:-1])) if len(lengths) else []
        if (folder / "bm25s").is_dir():
            index._model = index._bm25s.BM25.load(str(folder / "bm25s"), show_progress=False)
        elif index._tokens:
            index._reindex(index._tokens, index._vocab)
        return index


def top_k_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest scores, descending, ties broken by lower index."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if k < n:  # everything scoring at least the k-th best, so that ties at the cut are broken by index too
        kth = np.partition(scores, n - k)[n - k]
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(n)
    order = part[np.lexsort((part, -scores[part]))][:k]
    return order.astype(np.int64), scores[order]
