"""Response selection: rank an LLM's candidate answers by weighted criteria; best-of-n; preference pairs for
DPO.

Example:
    >>> import rankwise.selection as sel
    >>> result = sel.select("What is the capital of France?", ["Lyon.", "Paris.", "I don't know."],
    ...                     criteria=["correctness"], reference="Paris", judge="token-f1")
    >>> result.best.text, result.best.scores
    ('Paris.', {'correctness': 1.0})
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rankwise._validation import check_query
from rankwise.documents import DocumentLike, to_documents
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient, ChatMessage, check_messages
from rankwise.selection.criteria import (
    DEFAULT_CRITERIA,
    Criterion,
    CriterionLike,
    CriterionScore,
    SelectedCandidate,
    SelectionResult,
    criteria_from,
)
from rankwise.selection.judges import AgreementJudge, Judge, RerankerJudge, as_judge
from rankwise.types import Document, rank_order


def select(
    prompt: str,
    candidates: Iterable[DocumentLike],
    criteria: Iterable[CriterionLike] | CriterionLike = DEFAULT_CRITERIA,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    *,
    judge: Any = None,
    judges: Mapping[str, Any] | None = None,
    reference: str | None = None,
) -> SelectionResult:
    """Rank ``candidates`` (answers to ``prompt``) by the weighted mean of per-criterion scores in [0, 1].

    Args:
        prompt: the request the candidates answer.
        candidates: the answers: strings, dicts with ``text`` or Documents (ids and metadata come back untouched).
        criteria: names (``correctness``, ``safety``, ``helpfulness``, ``instruction_following``; hyphens work
            too) or :class:`Criterion` objects (custom ones need a description).
        weights: by criterion name or by position; default each criterion's own weight (1.0).
        judge: the default judge (see :func:`rankwise.selection.judges.as_judge`): a Judge, a Reranker (reward
            model), a ChatClient, ``"llm"``, ``"token-f1"``, a GGUF path, a URL or a preset name. None = the
            bundled SmolLM2 LLM judge.
        judges: a judge per criterion name, overriding ``judge``.
        reference: a reference answer; correctness is then judged against it. Without one, correctness is the
            agreement among candidates (token F1, or the reward model's similarity when the judge is a
            re-ranker).

    Returns:
        :class:`SelectionResult`, best first; ties keep input order.
    """
    prompt = check_query(prompt)
    documents = to_documents(candidates)
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise InvalidInputError(f"reference must be a non-empty string or None, got {reference!r}.")
    chosen = criteria_from(criteria, weights)
    total_weight = sum(c.weight for c in chosen)
    weight_map = {c.name: c.weight / total_weight for c in chosen}
    if not documents:
        return SelectionResult(prompt, (), weight_map, reference)
    texts = [d.text for d in documents]
    pick = _JudgePicker(judge, judges, reference)
    per_criterion = {c.name: _judged(pick(c), c, prompt, texts, reference) for c in chosen}
    return SelectionResult(prompt, _ranked(documents, per_criterion, weight_map), weight_map, reference)


class _JudgePicker:
    """The judge of each criterion: its own, else ``judges[name]``, else the default judge (built once, when first
    needed); correctness without a reference is judged by agreement among the candidates."""

    def __init__(self, judge: Any, judges: Mapping[str, Any] | None, reference: str | None) -> None:
        self.judge = judge
        self.judges = judges or {}
        self.reference = reference
        self._default: Judge | None = None

    def __call__(self, criterion: Criterion) -> Judge:
        given = criterion.judge or self.judges.get(criterion.name)
        if given is not None:
            return as_judge(given)
        if self._default is None:
            self._default = as_judge(self.judge)
        j = self._default
        if criterion.name == "correctness" and self.reference is None and not isinstance(j, AgreementJudge):
            return AgreementJudge(j if isinstance(j, RerankerJudge) else None)
        return j


def _judged(
    j: Judge, criterion: Criterion, prompt: str, texts: list[str], reference: str | None
) -> list[CriterionScore]:
    """``j``'s score of each candidate for ``criterion``."""
    verdicts = j.judge(criterion, prompt, texts, reference)
    if len(verdicts) != len(texts):
        raise InvalidInputError(f"judge {j.name} returned {len(verdicts)} verdicts for {len(texts)} candidates.")
    return [CriterionScore(v.score, v.reason, j.name, v.raw) for v in verdicts]


def _ranked(
    documents: list[Document], per_criterion: dict[str, list[CriterionScore]], weight_map: dict[str, float]
) -> tuple[SelectedCandidate, ...]:
    """The candidates by weighted total, best first (ties in input order)."""
    totals = [
        sum(weight_map[name] * scores[i].score for name, scores in per_criterion.items())
        for i in range(len(documents))
    ]
    return tuple(
        SelectedCandidate(documents[i], i, rank, totals[i], {n: s[i] for n, s in per_criterion.items()})
        for rank, i in enumerate(rank_order(totals), start=1)
    )


def generate_candidates(
    prompt: str | Sequence[ChatMessage],
    client: ChatClient,
    n: int,
    *,
    system: str | None = None,
    temperature: float = 0.8,
    max_tokens: int = 256,
    seed: int = 0,
) -> list[str]:
    """``n`` sampled answers to ``prompt`` (each call gets its own ``seed``, so caching never repeats a sample)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"n must be an int >= 1, got {n!r}.")
    if isinstance(prompt, str):
        messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": check_query(prompt)})
    else:
        messages = check_messages(prompt)

    def one(i: int) -> str:
        return client.chat(
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed + i
        ).text.strip()

    with ThreadPoolExecutor(max_workers=max(1, min(client.concurrency, n))) as pool:
        return list(pool.map(one, range(n)))


def best_of_n(
    prompt: str,
    llm: ChatClient | str | os.PathLike[str] | None = None,
    n: int = 4,
    *,
    criteria: Iterable[CriterionLike] | CriterionLike = DEFAULT_CRITERIA,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    judge: Any = None,
    judges: Mapping[str, Any] | None = None,
    reference: str | None = None,
    system: str | None = None,
    temperature: float = 0.8,
    max_tokens: int = 256,
    seed: int = 0,
) -> SelectionResult:
    """Generate ``n`` answers with ``llm`` and :func:`select` among them.

    ``llm`` is anything :func:`rankwise.llm.make_client` takes (None = the bundled SmolLM2). The default judge
    is an :class:`LLMJudge` on the same client.

    Example:
        >>> from rankwise.selection import best_of_n                                    # doctest: +SKIP
        >>> best_of_n("Name a prime number.", n=4, criteria=["correctness"]).best.text  # doctest: +SKIP
    """
    from rankwise.llm.factory import make_client
    from rankwise.selection.judges import LLMJudge

    client = make_client(llm)
    answers = generate_candidates(
        prompt, client, n, system=system, temperature=temperature, max_tokens=max_tokens, seed=seed
    )
    return select(
        prompt,
        answers,
        criteria,
        weights,
        judge=judge if judge is not None else LLMJudge(client),
        judges=judges,
        reference=reference,
    )


_STRATEGIES = ("best_vs_worst", "best_vs_rest", "all")


def preference_pairs(
    results: SelectionResult | Iterable[SelectionResult],
    path: str | os.PathLike[str] | None = None,
    *,
    strategy: str = "best_vs_worst",
    min_margin: float = 0.0,
    append: bool = False,
) -> list[dict[str, Any]]:
    """Chosen/rejected pairs from selections, for DPO-style training (TRL's ``prompt``/``chosen``/``rejected``).

    Args:
        results: one or many :class:`SelectionResult`.
        path: if given, the pairs are written there as JSONL (one pair a line, UTF-8).
        strategy: ``best_vs_worst`` (one pair per prompt), ``best_vs_rest`` (best against each other candidate)
            or ``all`` (every pair of ranks).
        min_margin: keep only pairs whose total-score difference is larger than this (ties never make a pair).
        append: add to ``path`` instead of overwriting it.

    Each pair also carries ``score_chosen``, ``score_rejected``, ``margin`` and the per-criterion
    ``scores_chosen`` / ``scores_rejected``.
    """
    if strategy not in _STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}.")
    if isinstance(results, SelectionResult):
        results = [results]
    pairs = [
        _pair(result, chosen, rejected)
        for result in results
        for chosen, rejected in _rank_pairs(list(result.candidates), strategy)
        if chosen.score - rejected.score > min_margin
    ]
    if path is not None:
        _write_jsonl(pairs, Path(path), append=append)
    return pairs


def _rank_pairs(
    ranked: list[SelectedCandidate], strategy: str
) -> list[tuple[SelectedCandidate, SelectedCandidate]]:
    """(better, worse) candidates of one selection for ``strategy``; none with fewer than two candidates."""
    if len(ranked) < 2:
        return []
    if strategy == "best_vs_worst":
        return [(ranked[0], ranked[-1])]
    if strategy == "best_vs_rest":
        return [(ranked[0], r) for r in ranked[1:]]
    return [(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]]


def _pair(result: SelectionResult, chosen: SelectedCandidate, rejected: SelectedCandidate) -> dict[str, Any]:
    return {
        "prompt": result.prompt,
        "chosen": chosen.text,
        "rejected": rejected.text,
        "score_chosen": chosen.score,
        "score_rejected": rejected.score,
        "margin": chosen.score - rejected.score,
        "scores_chosen": chosen.scores,
        "scores_rejected": rejected.scores,
    }


def _write_jsonl(rows: list[dict[str, Any]], target: Path, *, append: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a" if append else "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
