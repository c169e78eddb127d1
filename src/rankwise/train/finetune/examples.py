"""Training examples for a cross-encoder from judged data: positives from qrels, hard negatives mined by BM25 and the
bi-encoder, a query-grouped dev set.

Why these negatives: a re-ranker only ever sees what the first stage returned, so it must learn to separate the
relevant documents from the *plausible* ones. Random corpus documents are too easy (the model learns "shares no
word" and nothing more). The top BM25 candidates that are not judged relevant are lexically close; the bi-encoder's
favourites among those candidates are semantically close. Both are taken from the candidates a re-ranker would see
(BM25 top-``depth`` over the corpus, or the folder's run for re-ranking pools), so training matches use.

Everything here is deterministic for a given seed: a resumed training run rebuilds exactly the same examples.

Example:
    >>> from rankwise.evaluation import load_dataset, first_stage_run                           # doctest: +SKIP
    >>> scifact = load_dataset("../shared/data/scifact", "train")                               # doctest: +SKIP
    >>> examples = build_examples(scifact, first_stage_run(scifact, 30), NegativeMining(), seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rankwise.documents import document_text
from rankwise.errors import InvalidInputError
from rankwise.evaluation.loader import Dataset, Run

BiEncoderScores = Callable[[str, Sequence[str]], Sequence[float]]
"""``scores(query, texts)``: the bi-encoder's similarity of each text (the caller builds it, with its cache)."""


@dataclass(frozen=True)
class NegativeMining:
    """How training pairs are drawn for each query.

    Attributes:
        depth: candidates per query from the first stage (BM25 over the corpus, or the pool's run) that
            negatives are drawn from; the top 30 hold the hardest ones and keep the bi-encoder's work small.
        positives: judged-relevant documents per query (the highest grades first).
        bm25_negatives: top BM25 candidates that are not judged relevant.
        bi_encoder_negatives: the bi-encoder's top candidates (among the same ``depth``) not judged relevant and not
            already taken; 0 skips the bi-encoder (no torch needed to build the data).
        random_negatives: corpus documents drawn at random (seeded per query) that are not judged relevant: easy
            negatives that teach a new head the basics of relevance before the hard ones refine it.
        skip_top: BM25 ranks skipped before taking negatives (unjudged top documents are sometimes relevant in
            sparsely judged collections; 0 = take from the very top).
    """

    depth: int = 30
    positives: int = 1
    # per query: 1 positive, 1 BM25 + 1 bi-encoder hard negative, 2 random (easy) ones. Hard negatives alone taught
    # the scifact/train model "looks like a top BM25 hit -> not relevant" (dev nDCG@10 0.24, test 0.05): it never saw
    # the low-overlap documents a re-ranker also meets; easy negatives lifted dev to 0.35 in the same trial
    # (held-out train queries, docs/training.md)
    bm25_negatives: int = 1
    bi_encoder_negatives: int = 1
    random_negatives: int = 2
    skip_top: int = 0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            low = 1 if name in ("depth", "positives") else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{name} must be an int >= {low}, got {value!r}.")
        if self.bm25_negatives + self.bi_encoder_negatives + self.random_negatives < 1:
            raise InvalidInputError("bm25_negatives + bi_encoder_negatives + random_negatives must be >= 1 (a model "
                                    "learns nothing from positives alone).")


@dataclass(frozen=True)
class Pair:
    """One labelled (query, document) pair; ``source`` says where it came from (positive, bm25, bi-encoder)."""

    query_id: str
    doc_id: str
    query: str
    text: str
    label: float
    source: str


@dataclass
class Examples:
    """The training pairs in training order, and what was skipped and why."""

    pairs: list[Pair] = field(default_factory=list)
    queries_used: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"no_relevant": 0, "no_negatives": 0, "budget": 0})

    def counts(self) -> dict[str, Any]:
        by_source: dict[str, int] = {}
        for pair in self.pairs:
            by_source[pair.source] = by_source.get(pair.source, 0) + 1
        return {"pairs": len(self.pairs), "queries": self.queries_used, "by_source": by_source,
                "skipped_queries": dict(self.skipped)}


def relevant_ids(qrels: Mapping[str, int], threshold: int = 1) -> list[str]:
    """Judged documents at or above ``threshold``, highest grade first (ties in file order)."""
    graded = [(doc, grade) for doc, grade in qrels.items() if grade >= threshold]
    return [doc for doc, _ in sorted(graded, key=lambda item: -item[1])]


def build_examples(
    dataset: Dataset,
    candidates: Run,
    mining: NegativeMining,
    *,
    seed: int,
    max_pairs: int | None = None,
    bi_encoder: BiEncoderScores | None = None,
) -> Examples:
    """Pairs for every query of ``dataset`` (in a seeded shuffled order, so a ``max_pairs`` budget takes a random
    subset of queries, never the first ones of the file), each query whole or not at all.

    Args:
        dataset: a judged split (:func:`rankwise.evaluation.load_dataset`).
        candidates: the first stage's ranked candidates per query (:func:`rankwise.evaluation.first_stage_run`).
        mining: how many positives and negatives of each kind.
        seed: the shuffle's seed.
        max_pairs: stop adding queries once this many pairs are taken (None: all queries).
        bi_encoder: scores for the bi-encoder negatives (required when ``mining.bi_encoder_negatives > 0``).
    """
    if mining.bi_encoder_negatives and bi_encoder is None:
        raise InvalidInputError("bi_encoder_negatives > 0 needs a bi_encoder scorer (or set bi_encoder_negatives=0).")
    order = sorted(dataset.queries)
    random.Random(seed).shuffle(order)
    out = Examples()
    for query_id in order:
        pairs = _query_pairs(dataset, query_id, candidates.get(query_id, []), mining, bi_encoder, out.skipped)
        if not pairs:
            continue
        if max_pairs is not None and len(out.pairs) + len(pairs) > max_pairs:
            out.skipped["budget"] += 1
            continue
        out.pairs.extend(pairs)
        out.queries_used += 1
    random.Random(seed + 1).shuffle(out.pairs)  # mixed queries in every batch
    return out


def _query_pairs(
    dataset: Dataset,
    query_id: str,
    ranked: Sequence[tuple[str, float]],
    mining: NegativeMining,
    bi_encoder: BiEncoderScores | None,
    skipped: dict[str, int],
) -> list[Pair]:
    judged = dataset.qrels.get(query_id, {})
    positives = [d for d in relevant_ids(judged) if d in dataset.corpus][: mining.positives]
    if not positives:
        skipped["no_relevant"] += 1
        return []
    pool = [d for d, _ in ranked[: mining.depth] if judged.get(d, 0) < 1 and d in dataset.corpus]
    bm25 = pool[mining.skip_top : mining.skip_top + mining.bm25_negatives]
    semantic: list[str] = []
    if mining.bi_encoder_negatives and bi_encoder is not None:
        rest = [d for d in pool if d not in bm25]
        if rest:
            scores = bi_encoder(dataset.queries[query_id], [_text(dataset, d) for d in rest])
            best = sorted(range(len(rest)), key=lambda i: (-scores[i], i))
            semantic = [rest[i] for i in best[: mining.bi_encoder_negatives]]
    easy = _random_negatives(dataset, query_id, judged, set(bm25) | set(semantic), mining.random_negatives)
    if not bm25 and not semantic and not easy:
        skipped["no_negatives"] += 1
        return []
    query = dataset.queries[query_id]
    rows = [(d, 1.0, "positive") for d in positives] + [(d, 0.0, "bm25") for d in bm25]
    rows += [(d, 0.0, "bi-encoder") for d in semantic] + [(d, 0.0, "random") for d in easy]
    return [Pair(query_id, d, query, _text(dataset, d), label, source) for d, label, source in rows]


def _random_negatives(dataset: Dataset, query_id: str, judged: Mapping[str, int], taken: set[str], n: int) -> list[str]:
    """``n`` corpus documents, not judged relevant and not taken, drawn with a generator seeded by the query id (so
    a query's draw does not depend on which other queries are in the run)."""
    if n == 0:
        return []
    ids = list(dataset.corpus)
    rng = random.Random(f"{query_id}/random-negatives")
    out: list[str] = []
    for _ in range(20 * n):  # bounded: a tiny corpus may hold fewer than n usable documents
        doc = ids[rng.randrange(len(ids))]
        if judged.get(doc, 0) < 1 and doc not in taken and doc not in out:
            out.append(doc)
            if len(out) == n:
                break
    return out


def _text(dataset: Dataset, doc_id: str) -> str:
    """The text a rankwise cross-encoder reads for this document (title + text, the one text rule)."""
    return document_text(dataset.corpus[doc_id])


def split_queries(query_ids: Sequence[str], fraction: float, seed: int, cap: int | None = None) -> tuple[set[str], set[str]]:
    """``(train, dev)`` query ids: a seeded ``fraction`` of the queries (at most ``cap``) held out for dev."""
    if not 0 < fraction < 1:
        raise InvalidInputError(f"dev_fraction must be between 0 and 1 (exclusive), got {fraction!r}.")
    order = sorted(query_ids)
    random.Random(seed).shuffle(order)
    n_dev = max(1, round(len(order) * fraction))
    if cap is not None:
        n_dev = min(n_dev, cap)
    return set(order[n_dev:]), set(order[:n_dev])


def dev_samples(dataset: Dataset, candidates: Run, query_ids: Sequence[str], depth: int) -> list[dict[str, Any]]:
    """Samples for sentence-transformers' ``CrossEncoderRerankingEvaluator``: each dev query's first-stage top
    ``depth`` in order (``documents``) and its judged-relevant texts (``positive``). Left out: queries with no
    relevant document among their candidates (they would score 0 whatever the model does) and queries with a single
    candidate (no order to judge; the evaluator's nDCG raises on them: nfcorpus/dev has such queries)."""
    samples = []
    for query_id in sorted(query_ids):
        ranked = [d for d, _ in candidates.get(query_id, [])[:depth] if d in dataset.corpus]
        relevant = set(relevant_ids(dataset.qrels.get(query_id, {})))
        positives = [_text(dataset, d) for d in ranked if d in relevant]
        if positives and len(ranked) >= 2:
            samples.append({"query": dataset.queries[query_id], "positive": positives,
                            "documents": [_text(dataset, d) for d in ranked]})
    return samples

