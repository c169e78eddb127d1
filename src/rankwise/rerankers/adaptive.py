"""The ``default`` preset: a bi-encoder fused with the best lexical signal each call can have.

BM25 recomputed over the candidates alone scores far below a full-collection BM25 (on TREC DL 2019: 0.299 vs 0.506
nDCG@10), because IDF over 100 candidates that all matched the query says little. So the lexical half of the
default is chosen per call, from what the candidates and the constructor provide, first that applies:

1. every candidate carries a finite ``metadata["first_stage_score"]`` (``rankwise eval``, a retriever's hits):
   that score, fused with the bi-encoder at ``first_stage_weights`` (1 : 2.5, the ``hybrid`` preset's);
2. corpus statistics or a BM25 index were given at construction (``rankwise.load("default", corpus=...)``): BM25
   of each candidate with the corpus's IDF and average length -- what a first-stage BM25 score is -- at the same
   weights (:mod:`rankwise.rerankers.corpus_bm25`);
3. otherwise BM25 over the candidates, at ``weights`` (1 : 2).

A list where only some candidates carry a usable first-stage score is never mixed: the call falls back to 2 or 3,
and the results say so. A usable score is a real number (int, float, numpy number) that is finite; ``None``,
strings (even ``"3.2"``), booleans, NaN and infinities are not, so one such candidate makes the call fall back.

The choice is reported in :attr:`RankedResults.signals <rankwise.types.RankedResults.signals>`, e.g.
``("first-stage-score", "minilm-bi-encoder")``; a signal present but not used appears as
``"skipped:first-stage-score (3 of 10 candidates)"``. ``score()`` returns plain floats: ask
:meth:`AdaptiveDefaultReranker.signals_for` with the same documents (nothing about a call is kept on the instance,
which servers share across threads).

Weights were chosen on scifact/train and nfcorpus/dev only (benchmarks/tune_fusion.py, results/fusion_tuning.json).

Example:
    >>> import rankwise                                                           # doctest: +SKIP
    >>> default = rankwise.load("default")                                        # doctest: +SKIP
    >>> docs = [{"text": "LSTMs keep memory.", "first_stage_score": 12.0}, {"text": "CNNs", "first_stage_score": 3.0}]
    >>> default.rank("lstm memory", docs).signals                                 # doctest: +SKIP
    ('first-stage-score', 'minilm-bi-encoder')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rankwise.documents import DocumentLike, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.rerankers.corpus_bm25 import CorpusBM25Reranker, CorpusLike, CorpusStats
from rankwise.rerankers.fusion import (
    FusionMethod,
    FusionReranker,
    MemberLoader,
    OptionsOf,
    _route_shared_options,
)
from rankwise.rerankers.metadata_score import FIRST_STAGE_SCORE, MetadataScoreReranker
from rankwise.types import Document

FIRST_STAGE, CORPUS, CANDIDATES = "first-stage-score", "corpus-bm25", "candidate-bm25"


def usable_score(value: Any) -> bool:
    """Whether a metadata value is a first-stage score the default will use: a finite real number, not a bool.

    Example:
        >>> [usable_score(v) for v in (3, 2.5, "2.5", True, float("nan"), None, 10**400)]
        [True, True, False, False, False, False, False]
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float range
        return False


@dataclass(frozen=True)
class SignalChoice:
    """Which lexical signal one list of candidates gets, and what the results report."""

    lexical: str  # FIRST_STAGE, CORPUS or CANDIDATES
    signals: tuple[str, ...]


class AdaptiveDefaultReranker(Reranker):
    """A bi-encoder z-score fused with the first-stage score, corpus BM25 or candidate BM25 (see the module text).

    Args:
        bi_encoder: the semantic member (any :class:`Reranker`).
        candidate_bm25: BM25 over the candidates (the last resort).
        corpus_bm25: BM25 with corpus statistics, or None when no corpus was given.
        field: the metadata key of the first-stage score.
        weights: lexical : bi-encoder weights with candidate BM25.
        first_stage_weights: lexical : bi-encoder weights with the first-stage score or corpus BM25.
        method, rrf_k: the fusion (as :class:`~rankwise.rerankers.fusion.FusionReranker`).
        bi_label: the bi-encoder's name in ``signals``.
    """

    independent_scores: ClassVar[bool] = False  # z-scores are per list, and the choice depends on the whole list

    def __init__(
        self,
        bi_encoder: Reranker,
        *,
        candidate_bm25: Reranker,
        corpus_bm25: Reranker | None = None,
        field: str = FIRST_STAGE_SCORE,
        weights: Sequence[float] = (1.0, 2.0),
        first_stage_weights: Sequence[float] = (1.0, 2.5),
        method: FusionMethod = "zscore",
        rrf_k: float = 60.0,
        bi_label: str | None = None,
        name: str | None = None,
    ) -> None:
        self.first_stage = MetadataScoreReranker(field=field)
        self.field = field
        lexical = {FIRST_STAGE: self.first_stage, CANDIDATES: candidate_bm25}
        if corpus_bm25 is not None:
            lexical[CORPUS] = corpus_bm25
        # One fusion per lexical option, all sharing the same bi-encoder (its cache serves all three); FusionReranker
        # checks the weights and the method, and combines the members' progress.
        self._fusions = {
            key: FusionReranker(
                [member, bi_encoder], method=method, rrf_k=rrf_k,
                weights=weights if key == CANDIDATES else first_stage_weights,
            )
            for key, member in lexical.items()
        }
        self.bi_encoder, self.candidate_bm25, self.corpus_bm25 = bi_encoder, candidate_bm25, corpus_bm25
        self.weights = self._fusions[CANDIDATES].weights
        self.first_stage_weights = self._fusions[FIRST_STAGE].weights
        self.method, self.rrf_k = method, rrf_k
        self.bi_label = bi_label or bi_encoder.name
        options = "|".join(k for k in (FIRST_STAGE, CORPUS, CANDIDATES) if k in lexical)
        self.name = name or f"default-{method}({options}+{bi_encoder.name})"

    @property
    def rerankers(self) -> list[Reranker]:
        """The members of the fallback fusion (candidate BM25, bi-encoder), as the fusion-based default had."""
        return [self.candidate_bm25, self.bi_encoder]

    def members(self) -> tuple[Reranker, ...]:
        """Every member, each once: the first-stage score, corpus BM25 (if any), candidate BM25, the bi-encoder."""
        found = [self.first_stage, self.corpus_bm25, self.candidate_bm25, self.bi_encoder]
        return tuple(m for m in found if m is not None)

    def choose(self, documents: Sequence[Document]) -> SignalChoice:
        """The lexical signal for ``documents`` (already Documents) and the ``signals`` the results carry."""
        carrying = sum(usable_score(d.metadata.get(self.field)) for d in documents)
        if documents and carrying == len(documents):
            return SignalChoice(FIRST_STAGE, (FIRST_STAGE, self.bi_label))
        lexical = CORPUS if self.corpus_bm25 is not None else CANDIDATES
        signals: tuple[str, ...] = (lexical, self.bi_label)
        if carrying:  # some have it, some do not: never mixed, and the results say so
            signals += (f"skipped:{FIRST_STAGE} ({carrying} of {len(documents)} candidates)",)
        return SignalChoice(lexical, signals)

    def signals_for(self, docs: Iterable[DocumentLike]) -> tuple[str, ...]:
        """What :meth:`score` / :meth:`rank` would rank ``docs`` by (``()`` for an empty list).

        Example:
            >>> default.signals_for(["no first-stage score here"])                  # doctest: +SKIP
            ('candidate-bm25', 'minilm-bi-encoder')
        """
        documents = to_documents(docs)
        return self.choose(documents).signals if documents else ()

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        return self._fusions[self.choose(documents).lexical]._score(query, documents, progress)

    def _signals(self, documents: list[Document]) -> tuple[str, ...]:
        return self.choose(documents).signals


_OWN = ("bi_encoder", "corpus", "weights", "first_stage_weights", "method", "rrf_k", "field", "name")
_TOKENIZER = ("k1", "b", "stemmer", "stopwords", "fields")


def build_default(
    *,
    bi_encoder: str | Reranker = "minilm-bi-encoder",
    corpus: CorpusLike | None = None,
    weights: Sequence[float] = (1.0, 2.0),
    first_stage_weights: Sequence[float] = (1.0, 2.5),
    method: FusionMethod = "zscore",
    rrf_k: float = 60.0,
    field: str = FIRST_STAGE_SCORE,
    name: str | None = None,
    loader: MemberLoader | None = None,
    options_of: OptionsOf | None = None,
    **shared: Any,
) -> AdaptiveDefaultReranker:
    """Registry entry point of the ``default`` preset.

    Other options go to the members that declare them, as in :func:`~rankwise.rerankers.fusion.build_fusion`:
    ``fields`` to BM25 and the bi-encoder, ``batch_size``/``device`` to the bi-encoder, ``k1``/``b``/``stemmer``
    to BM25. ``corpus``: see :data:`~rankwise.rerankers.corpus_bm25.CorpusLike`; a list of documents is counted
    with the BM25 options given here; an index or :class:`CorpusStats` keeps its own tokenizer settings, and
    ``fields=`` must then agree with the fields it was counted over.
    """
    if loader is None or options_of is None:
        raise InvalidInputError(
            "build_default needs loader= and options_of= (the registry passes them): use rankwise.load('default')."
        )
    names = ["bm25", bi_encoder]
    declared = [options_of("bm25"), options_of(bi_encoder) if isinstance(bi_encoder, str) else ()]
    routed = _route_shared_options(shared, declared, names)
    candidate = loader("bm25", **routed[0])
    bi = bi_encoder if isinstance(bi_encoder, Reranker) else loader(bi_encoder, **routed[1])
    corpus_bm25 = None
    if corpus is not None:
        stats = CorpusStats.of(corpus, **{k: v for k, v in routed[0].items() if k in _TOKENIZER})
        if "fields" in shared and tuple(shared["fields"]) != stats.fields:
            raise InvalidInputError(
                f"fields={list(shared['fields'])} but the corpus statistics were counted over fields "
                f"{list(stats.fields)}; count them over the same fields (CorpusStats.from_documents(docs, fields=...) "
                "or `rankwise index --fields ...`)."
            )
        corpus_bm25 = CorpusBM25Reranker(stats)
    label = bi_encoder if isinstance(bi_encoder, str) else bi.name
    return AdaptiveDefaultReranker(
        bi, candidate_bm25=candidate, corpus_bm25=corpus_bm25, field=field, weights=weights,
        first_stage_weights=first_stage_weights, method=method, rrf_k=rrf_k, bi_label=label, name=name,
    )


def _accepted_options(
    *, options_of: OptionsOf, bi_encoder: str | Reranker = "minilm-bi-encoder", **_: Any
) -> tuple[str, ...] | None:
    """What :func:`build_default` accepts: its own options and its members' (read by the registry for its error)."""
    declared = [options_of("bm25"), options_of(bi_encoder) if isinstance(bi_encoder, str) else ()]
    if any(d is None for d in declared):
        return None
    return tuple(dict.fromkeys([*_OWN, *(name for names in declared for name in names or ())]))


build_default.accepted_options = _accepted_options  # type: ignore[attr-defined]
