"""Retrieve -> re-rank -> generate: the RAG flow in one object.

``Pipeline(retriever, reranker, generator).run(query)`` retrieves ``top_k`` candidate passages, re-ranks them, builds a
context of the best ``top_n`` entries within a token budget (passages of one document merged or deduplicated), asks
the generator for an answer that cites the numbered context, and returns everything with per-stage timings.

Example:
    >>> from rankwise.rag.pipeline import Pipeline
    >>> from rankwise.retrieval import Index
    >>> index = Index.build([{"id": "a", "text": "BM25 ranks documents by term frequency."},
    ...                      {"id": "b", "text": "FAISS searches dense vectors."}], dense=False)
    >>> result = Pipeline(index, reranker="bm25").run("how does bm25 rank?")   # no generator: retrieval only
    >>> result.passages[0].passage.doc_id, sorted(result.passages[0].scores)
    ('a', ['bm25', 'rerank'])
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rankwise._validation import check_query, check_top_k
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker
from rankwise.retrieval.hybrid import Hit, Retriever
from rankwise.retrieval.passages import Passage, merge_passages

if TYPE_CHECKING:
    from rankwise.rag.generation import Citation, Generator

MergeMode = Literal["merge", "dedupe", "none"]
_MERGE_MODES = ("merge", "dedupe", "none")


@dataclass(frozen=True)
class ContextPassage:
    """One numbered entry of the LLM's context.

    Attributes:
        number: its ``[n]`` in the prompt (1-based).
        passage: the passage (a merge of several passages of one document when ``parts`` has more than one id).
        score: its final score (re-rank score, else retrieval score) -- the best of its parts.
        scores: every stage's score of its best part (``bm25``, ``dense``, ``hybrid``, ``rerank``).
        parts: the ids of the passages it holds, best first.
        tokens: its size as the budget counted it.
    """

    number: int
    passage: Passage
    score: float
    scores: Mapping[str, float]
    parts: tuple[str, ...]
    tokens: int

    @property
    def id(self) -> str:
        return self.passage.id

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def title(self) -> str | None:
        return self.passage.title

    @property
    def text(self) -> str:
        return self.passage.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "score": self.score, "scores": dict(self.scores), "parts": list(self.parts),
            "tokens": self.tokens, **self.passage.to_dict(),
        }


@dataclass(frozen=True)
class PipelineResult:
    """What :meth:`Pipeline.run` returns.

    Attributes:
        query: the question.
        answer: the generated answer (None without a generator).
        passages: the context entries in prompt order (their numbers are what the answer cites).
        citations: the answer's valid citations, mapped to passages and documents.
        invalid_citations: cited numbers that match no context entry.
        candidates: how many passages the retriever returned.
        timings: seconds per stage: ``retrieve``, ``rerank``, ``generate``, ``total``.
        model: the generator's model name ("" without a generator).
    """

    query: str
    answer: str | None
    passages: tuple[ContextPassage, ...]
    citations: tuple[Citation, ...] = ()
    invalid_citations: tuple[int, ...] = ()
    candidates: int = 0
    timings: Mapping[str, float] = field(default_factory=dict)
    model: str = ""

    @property
    def sources(self) -> list[ContextPassage]:
        """The context entries the answer cites, each once, in order of first citation."""
        numbers = dict.fromkeys(c.number for c in self.citations)
        return [self.passages[n - 1] for n in numbers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query, "answer": self.answer, "model": self.model, "candidates": self.candidates,
            "passages": [p.to_dict() for p in self.passages],
            "citations": [c.to_dict() for c in self.citations],
            "invalid_citations": list(self.invalid_citations),
            "timings": dict(self.timings),
        }


@dataclass
class _Entry:
    best: Hit
    score: float
    scores: dict[str, float]
    members: list[Passage]
    tokens: int


class Pipeline:
    """Retriever -> optional re-ranker -> optional generator.

    Args:
        retriever: anything with ``retrieve(query, top_k) -> list[Hit]`` (an :class:`~rankwise.retrieval.Index`
            is wrapped in its default retriever).
        reranker: a :class:`~rankwise.Reranker`, a preset name for :func:`rankwise.load` (``"default"``), or None.
            A preset given by name scores with the retriever's index's stored vectors where it can
            (:func:`~rankwise.retrieval.presets.preset_for_index`).
        generator: a :class:`~rankwise.rag.generation.Generator`, or None (then ``run`` only retrieves and selects).
        top_k: candidates retrieved (and re-ranked).
        top_n: context entries given to the generator at most.
        context_tokens: the context's token budget (passages that would overflow it are left out; a first entry
            larger than the budget is cut to it).
        merge: what to do with several passages of one document: ``"merge"`` them into one entry (default),
            ``"dedupe"`` (keep the best), or ``"none"``.
        count_tokens: how to count tokens (default: the generator's tokenizer, else ~4/3 tokens per word).
    """

    def __init__(
        self,
        retriever: Retriever | Any,
        reranker: Reranker | str | None = None,
        generator: Generator | None = None,
        *,
        top_k: int = 50,
        top_n: int = 5,
        context_tokens: int = 1500,
        merge: MergeMode = "merge",
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if not hasattr(retriever, "retrieve") and hasattr(retriever, "retriever"):
            retriever = retriever.retriever()
        if not isinstance(retriever, Retriever):
            raise InvalidInputError(
                f"retriever must have retrieve(query, top_k) (e.g. rankwise.retrieval.Index or HybridRetriever), got "
                f"{type(retriever).__name__}."
            )
        if isinstance(reranker, str):  # a preset: with the retriever's index's stored vectors when it can use them
            from rankwise.registry import load
            from rankwise.retrieval.presets import preset_for_index

            reranker = preset_for_index(reranker, getattr(retriever, "index", None)) or load(reranker)
        if reranker is not None and not isinstance(reranker, Reranker):
            raise InvalidInputError(f"reranker must be a rankwise Reranker, a preset name or None, got {reranker!r}.")
        _check_options(top_k, top_n, context_tokens, merge)
        self.retriever, self.reranker, self.generator = retriever, reranker, generator
        self.top_k, self.top_n, self.context_tokens, self.merge = top_k, top_n, context_tokens, merge
        if count_tokens is None:
            count_tokens = generator.count_tokens if generator is not None else _estimate_tokens
        self.count_tokens = count_tokens

    def run(
        self,
        query: str,
        *,
        top_k: int | None = None,
        top_n: int | None = None,
        context_tokens: int | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> PipelineResult:
        """Answer ``query``: retrieve, re-rank, select the context, generate (per-call options override the defaults).

        Args:
            on_token: stream the answer: called with each piece of text as the generator produces it.
        """
        query = check_query(query)
        top_k = self.top_k if top_k is None else top_k
        top_n = self.top_n if top_n is None else top_n
        budget = self.context_tokens if context_tokens is None else context_tokens
        _check_options(top_k, top_n, budget, self.merge)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        hits = self.retriever.retrieve(query, top_k)
        timings["retrieve"] = time.perf_counter() - started
        ranked = self._rerank(query, hits, timings)
        context = self.select(ranked, top_n=top_n, context_tokens=budget)
        answer, citations, invalid, model = None, (), (), ""
        if self.generator is not None:
            step = time.perf_counter()
            generation = self.generator.generate(query, [c.passage for c in context], on_token=on_token)
            timings["generate"] = time.perf_counter() - step
            answer, citations, invalid = generation.answer, generation.citations, generation.invalid_citations
            model = generation.model
        timings["total"] = time.perf_counter() - started
        return PipelineResult(query, answer, tuple(context), citations, invalid, len(hits), timings, model)

    async def arun(self, query: str, **options: Any) -> PipelineResult:
        """Async :meth:`run` (in a worker thread, so an event loop keeps serving while models work)."""
        return await asyncio.to_thread(self.run, query, **options)

    def _rerank(self, query: str, hits: list[Hit], timings: dict[str, float]) -> list[tuple[Hit, float, dict]]:
        """(hit, final score, stage scores) best first."""
        if self.reranker is None or not hits:
            return [(h, h.score, dict(h.scores)) for h in hits]
        step = time.perf_counter()
        results = self.reranker.rank(query, [h.passage.to_document() for h in hits])
        timings["rerank"] = time.perf_counter() - step
        return [(hits[r.index], r.score, {**hits[r.index].scores, "rerank": r.score}) for r in results]

    def select(
        self, ranked: list[tuple[Hit, float, dict]], *, top_n: int, context_tokens: int
    ) -> list[ContextPassage]:
        """Build the context from ranked candidates: one entry per document (``merge``/``dedupe``), best first,
        at most ``top_n`` entries, within ``context_tokens``."""
        entries: list[_Entry] = []
        by_doc: dict[str, _Entry] = {}
        used = 0
        for hit, score, scores in ranked:
            doc_id = hit.passage.doc_id
            entry = by_doc.get(doc_id) if self.merge != "none" else None
            if entry is not None:
                if self.merge == "merge":
                    tokens = self.count_tokens(merge_passages([*entry.members, hit.passage]).text)
                    if used - entry.tokens + tokens <= context_tokens:
                        used += tokens - entry.tokens
                        entry.members.append(hit.passage)
                        entry.tokens = tokens
                continue
            if len(entries) >= top_n:
                break
            tokens = self.count_tokens(hit.passage.text)
            if used + tokens > context_tokens:
                if entries:
                    break
                hit, tokens = self._cut(hit, context_tokens), context_tokens
            entry = _Entry(hit, score, scores, [hit.passage], tokens)
            entries.append(entry)
            by_doc[doc_id] = entry
            used += tokens
        return [
            ContextPassage(
                number=i, passage=merge_passages(e.members) if len(e.members) > 1 else e.members[0], score=e.score,
                scores=e.scores, parts=tuple(p.id for p in e.members), tokens=e.tokens,
            )
            for i, e in enumerate(entries, start=1)
        ]

    def _cut(self, hit: Hit, budget: int) -> Hit:
        """The hit with its passage text shortened (at a word boundary) to fit ``budget`` tokens."""
        p = hit.passage
        ends = [m.end() for m in re.finditer(r"\S+", p.text)]
        low, high = 0, len(ends)
        while low < high:  # the most words that fit
            mid = (low + high + 1) // 2
            if self.count_tokens(p.text[: ends[mid - 1]]) <= budget:
                low = mid
            else:
                high = mid - 1
        text = p.text[: ends[low - 1]] if low else ""
        cut = Passage(p.id, p.doc_id, p.position, text, p.title, p.start, p.start + len(text), p.metadata)
        return Hit(cut, hit.score, hit.rank, hit.scores)

    def __repr__(self) -> str:
        return (
            f"Pipeline(retriever={self.retriever!r}, reranker={self.reranker!r}, generator={self.generator!r}, "
            f"top_k={self.top_k}, top_n={self.top_n}, context_tokens={self.context_tokens}, merge={self.merge!r})"
        )


def _check_options(top_k: Any, top_n: Any, context_tokens: Any, merge: Any) -> None:
    if top_k is None or check_top_k(top_k) is None:
        raise InvalidInputError(f"top_k must be an int >= 1, got {top_k!r}.")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise InvalidInputError(f"top_n must be an int >= 1, got {top_n!r}.")
    if isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or context_tokens < 1:
        raise InvalidInputError(f"context_tokens must be an int >= 1, got {context_tokens!r}.")
    if merge not in _MERGE_MODES:
        raise InvalidInputError(f"merge must be one of {', '.join(_MERGE_MODES)}; got {merge!r}.")


def _estimate_tokens(text: str) -> int:
    """About 4 tokens per 3 words (English text through BPE / WordPiece tokenizers)."""
    return math.ceil(len(text.split()) * 4 / 3)
