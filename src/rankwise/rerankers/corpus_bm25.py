"""BM25 of each candidate with the statistics of a whole corpus (document frequencies, size, average length).

BM25 recomputed over a list of 100 candidates has an IDF that says little (every candidate matched the query, so
the query's words look common); the first-stage score of a full-collection BM25 does not have that problem. When
candidates arrive without their first-stage score, :class:`CorpusBM25Reranker` recomputes it from
:class:`CorpusStats`: the same tokenizer and stemmer as :class:`~rankwise.rerankers.lexical.BM25Reranker` and
bm25s's Lucene formula, so a candidate from the corpus gets the score bm25s gives it in an index over the whole
corpus (``tests/test_default_adaptive.py`` checks the equality)::

    score(q, d) = sum over query tokens t (repeats count) of  idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

A query token the corpus never holds adds nothing (as in bm25s), whatever the candidates hold.

Example:
    >>> stats = CorpusStats.from_documents(["An LSTM keeps long-term memory.", "CNNs see images.", "Memory is cheap."])
    >>> stats.n_documents, stats.document_frequencies["memori"]
    (3, 2)
    >>> CorpusBM25Reranker(stats).rank("lstm memory", ["memory chips", "an LSTM memory cell"])[0].index
    1
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rankwise.documents import DEFAULT_FIELDS, DocumentLike, document_text, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.rerankers.lexical import TOKENIZE_CHUNK, BM25Reranker
from rankwise.types import Document

CorpusLike = Any
"""What ``corpus=`` accepts: a :class:`CorpusStats`, a saved ``rankwise index`` folder (str or path), a
:class:`~rankwise.retrieval.Index` or :class:`~rankwise.retrieval.BM25Index`, or a list/tuple of documents."""


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs to know of a corpus, with the tokenizer settings it was counted with.

    Attributes:
        document_frequencies: token (after stop words and stemming) -> number of documents holding it.
        n_documents: documents (or index passages) counted, empty ones included (as bm25s counts them).
        average_length: mean tokens per document.
        k1, b, stemmer, stopwords, fields: the BM25 settings; candidates are tokenized with the same ones.
    """

    document_frequencies: Mapping[str, int] = field(repr=False, hash=False)
    n_documents: int
    average_length: float
    k1: float = 0.9
    b: float = 0.4
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "en"
    fields: tuple[str, ...] = DEFAULT_FIELDS

    def tokenizer(self) -> BM25Reranker:
        """A :class:`BM25Reranker` with these settings: its ``tokenize`` is the tokenizer the counts were made with."""
        return BM25Reranker(k1=self.k1, b=self.b, stemmer=self.stemmer, stopwords=self.stopwords, fields=self.fields)

    def idf(self, token: str) -> float:
        """bm25s's Lucene IDF of ``token``; 0 for a token the corpus never holds."""
        df = self.document_frequencies.get(token, 0)
        if df <= 0:
            return 0.0
        return math.log(1.0 + (self.n_documents - df + 0.5) / (df + 0.5))

    @classmethod
    def from_documents(
        cls,
        docs: Iterable[DocumentLike],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        stemmer: str | None = "english",
        stopwords: str | Sequence[str] | None = "en",
        fields: Sequence[str] = DEFAULT_FIELDS,
        chunk: int = 1024,
    ) -> CorpusStats:
        """Count a corpus (strings, dicts or Documents, any iterable: read ``chunk`` at a time, never all at once).

        Raises:
            InvalidInputError: no document at all, or a malformed one (the message names its position).
        """
        tokenizer = BM25Reranker(k1=k1, b=b, stemmer=stemmer, stopwords=stopwords, fields=fields)
        if isinstance(docs, (str, bytes, Mapping, Document)):
            to_documents(docs)  # raises the usual "wrap it in a list" error
        frequencies: Counter[str] = Counter()
        n, total = 0, 0
        iterator = iter(docs)
        while batch := list(itertools.islice(iterator, chunk)):
            documents = to_documents(batch)
            for tokens in tokenizer.tokenize([document_text(d, tokenizer.fields) for d in documents]):
                frequencies.update(set(tokens))
                total += len(tokens)
            n += len(documents)
        if n == 0:
            raise InvalidInputError("corpus statistics need at least one document; the corpus given is empty.")
        return cls(dict(frequencies), n, total / n, k1, b, stemmer, _stopwords(tokenizer.stopwords), tokenizer.fields)

    @classmethod
    def from_index(cls, index: Any) -> CorpusStats:
        """The statistics of a BM25 index: a ``rankwise index`` folder, an :class:`~rankwise.retrieval.Index` or a
        :class:`~rankwise.retrieval.BM25Index` (counts are per indexed passage, as its BM25 scores are).

        Raises:
            InvalidInputError: the index has no BM25 part.
            IndexNotFoundError / IndexCompatibilityError: the folder is not a readable index.
        """
        from rankwise.retrieval.bm25 import BM25Index

        bm25 = index if isinstance(index, BM25Index) else _bm25_of(index)
        # The index keeps every passage's token ids (it needs them to add documents without re-tokenizing):
        # document frequencies are counted from them, so nothing is tokenized again.
        tokens: list[np.ndarray] = bm25._tokens  # noqa: SLF001 - no public accessor yet (see the report)
        vocab: dict[str, int] = bm25._vocab  # noqa: SLF001
        if not tokens:
            raise InvalidInputError("the BM25 index is empty; corpus statistics need at least one passage.")
        counts = np.zeros(len(vocab), dtype=np.int64)
        for ids in tokens:
            counts[np.unique(ids)] += 1
        names = {i: t for t, i in vocab.items()}
        frequencies = {names[i]: int(c) for i, c in enumerate(counts) if c > 0}
        average = float(np.mean([len(t) for t in tokens]))
        config = bm25.config()
        return cls(
            frequencies, len(tokens), average, config["k1"], config["b"], config["stemmer"],
            _stopwords(config["stopwords"]), tuple(config["fields"]),
        )

    @classmethod
    def of(cls, corpus: CorpusLike, **tokenizer: Any) -> CorpusStats:
        """Any accepted ``corpus=`` value as statistics (``tokenizer``: BM25 settings for a list of documents)."""
        if isinstance(corpus, CorpusStats):
            return corpus
        if isinstance(corpus, (list, tuple)):
            return cls.from_documents(corpus, **tokenizer)
        if isinstance(corpus, (str, os.PathLike)) or hasattr(corpus, "bm25") or hasattr(corpus, "_vocab"):
            return cls.from_index(corpus)
        raise InvalidInputError(
            f"corpus must be CorpusStats, a `rankwise index` folder, an Index, or a list of documents; got "
            f"{type(corpus).__name__}. Build statistics from any iterable with CorpusStats.from_documents(docs)."
        )


def _stopwords(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    """Stop words in a hashable form (a frozen dataclass field)."""
    return value if value is None or isinstance(value, str) else tuple(value)


def _bm25_of(index: Any) -> Any:
    """The BM25 part of an Index object or of a saved index folder (only that part is loaded from disk)."""
    from rankwise.retrieval.bm25 import BM25Index
    from rankwise.retrieval.manifest import read_manifest

    if isinstance(index, (str, os.PathLike)):
        root = Path(index)
        config = read_manifest(root).get("bm25")
        if not config:
            raise InvalidInputError(f"index {root} has no BM25 part; build it with BM25 (`rankwise index`).")
        return BM25Index.load(root / "bm25", config)
    bm25 = getattr(index, "bm25", None)
    if bm25 is None:
        raise InvalidInputError(f"{index!r} has no BM25 part; corpus statistics need a BM25 index.")
    return bm25


class CorpusBM25Reranker(Reranker):
    """BM25 of each candidate with corpus-wide IDF and average length (see the module text for the formula).

    Args:
        corpus: a :class:`CorpusStats`, or anything :meth:`CorpusStats.of` accepts.
        name: the name put on results.
    """

    independent_scores: ClassVar[bool] = True  # the statistics are fixed: a score ignores the other candidates

    def __init__(self, corpus: CorpusLike, *, name: str = "corpus-bm25") -> None:
        self.stats = CorpusStats.of(corpus)
        self._tokenizer = self.stats.tokenizer()
        self.fields = self.stats.fields
        self.name = name

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        stats = self.stats
        weights = [(t, stats.idf(t)) for t in self._tokenizer.tokenize([query])[0]]
        weights = [(t, w) for t, w in weights if w > 0]  # tokens the corpus never holds add nothing
        if not weights:
            if progress is not None:
                progress(len(documents), len(documents))
            return [0.0] * len(documents)
        k1, b, average = stats.k1, stats.b, stats.average_length
        scores: list[float] = []
        texts = [document_text(d, self.fields) for d in documents]
        for start in range(0, len(texts), TOKENIZE_CHUNK):  # progress between chunks: tokenizing is pure Python
            for tokens in self._tokenizer.tokenize(texts[start : start + TOKENIZE_CHUNK]):
                counts = Counter(tokens)
                norm = k1 * (1.0 - b + b * len(tokens) / average)
                scores.append(sum(w * counts[t] / (counts[t] + norm) for t, w in weights if counts[t]))
            if progress is not None:
                progress(len(scores), len(texts))
        return scores
