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
from collections.abc import Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rankwise._validation import check_query
from rankwise.documents import DocumentLike, to_documents
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient, ChatMessage, check_messages
from rankwise.rerankers.base import Reranker
from rankwise.selection.base import Judge, checked_verdicts
from rankwise.selection.criteria import (
    BEST_OF_N_CRITERIA,
    DEFAULT_CRITERIA,
    Criterion,
    CriterionLike,
    CriterionScore,
    SelectedCandidate,
    SelectionResult,
    criteria_from,
)
from rankwise.selection.judges import AgreementJudge, LLMJudge, RerankerJudge, TokenF1Judge, as_judge
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

    Judges read whole candidates: a re-ranker judge receives the caller's Documents (title, text and the fields it
    was built with: exactly what its ``rank()`` reads), an LLM or token judge their text by the one documents rule
    (:func:`rankwise.documents.document_text`). Criteria that a judge answers the same way (a re-ranker asked the
    same query) are scored once.

    Args:
        prompt: the request the candidates answer.
        candidates: the answers: strings, dicts with ``text`` (and ``title``, ``id``, any other field) or
            Documents; each result carries the caller's Document unchanged.
        criteria: names (``correctness``, ``helpfulness``, ``safety``, ``instruction_following``, ``agreement``;
            hyphens work too) or :class:`Criterion` objects (custom ones need a description). The default,
            correctness alone, was chosen by measurement on judged answers (docs/selection.md).
        weights: by criterion name or by position; default each criterion's own weight (1.0).
        judge: the default judge (see :func:`rankwise.selection.judges.as_judge`): a Judge, a Reranker (reward
            model), a ChatClient, ``"llm"``, ``"token-f1"``, a GGUF path, a URL or a preset name. None = the
            bundled SmolLM2 LLM judge.
        judges: a judge per criterion name, overriding ``judge``.
        reference: a reference answer; correctness is then judged against it.

    ``agreement`` (self-consistency: each candidate's mean similarity to the others, by the judge's re-ranker or
    token F1) suits n answers sampled for one prompt (:func:`best_of_n` uses it by default), not candidates that
    differ by design.

    Returns:
        :class:`SelectionResult`, best first; ties keep input order.

    Example:
        >>> import rankwise
        >>> docs = [{"title": "Margaret Thatcher", "text": "A biography by Hugo Young."}, "The Iron Lady, a film."]
        >>> select("Who wrote a biography of Thatcher?", docs, judge=rankwise.load("bm25")).best.index
        0
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
    pick = _JudgePicker(judge, judges)
    done: dict[tuple[Judge, Hashable], list[CriterionScore]] = {}
    per_criterion = {c.name: _judged(pick(c), c, prompt, documents, reference, done) for c in chosen}
    return SelectionResult(prompt, _ranked(documents, per_criterion, weight_map), weight_map, reference)


class _JudgePicker:
    """The judge of each criterion: its own, else ``judges[name]``, else the default judge (built once, when first
    needed); ``agreement`` is an :class:`AgreementJudge` whose similarity is that judge's re-ranker (token F1 when
    it is not a re-ranker)."""

    def __init__(self, judge: Any, judges: Mapping[str, Any] | None) -> None:
        self.judge = judge
        self.judges = judges or {}
        self._default: Judge | None = None

    def __call__(self, criterion: Criterion) -> Judge:
        given = criterion.judge or self.judges.get(criterion.name)
        if criterion.name != "agreement":
            return as_judge(given) if given is not None else self._default_judge()
        if given is not None:
            return _agreement_judge(as_judge(given))
        # never loads an LLM only to leave it unused: agreement never asks one
        return _agreement_judge(self._default_judge()) if _similarity_source(self.judge) else AgreementJudge()

    def _default_judge(self) -> Judge:
        if self._default is None:
            self._default = as_judge(self.judge)
        return self._default


def _agreement_judge(j: Judge) -> Judge:
    """The judge of the agreement criterion made of ``j``: a re-ranker judge becomes the similarity of an
    :class:`AgreementJudge`; judges that see one candidate at a time (an LLM, token F1 with a reference) give way
    to token-F1 agreement; an AgreementJudge or a custom judge is used as given."""
    if isinstance(j, AgreementJudge):
        return j
    if isinstance(j, RerankerJudge):
        return AgreementJudge(j)
    if isinstance(j, (LLMJudge, TokenF1Judge)):
        return AgreementJudge()
    return j


def _similarity_source(judge: Any) -> bool:
    """Whether ``judge`` may give the agreement criterion a re-ranker (else agreement is token F1)."""
    if isinstance(judge, (Judge, Reranker)):
        return True
    if isinstance(judge, str):
        from rankwise.registry import presets

        return judge in presets()
    return False


def _judged(
    j: Judge,
    criterion: Criterion,
    prompt: str,
    documents: list[Document],
    reference: str | None,
    done: dict[tuple[Judge, Hashable], list[CriterionScore]],
) -> list[CriterionScore]:
    """``j``'s score of each candidate for ``criterion``; criteria ``j`` answers alike (equal verdict keys) once."""
    key = j.verdict_key(criterion, reference)
    if key is not None and (j, key) in done:
        return done[(j, key)]
    verdicts = checked_verdicts(j, j.judge_documents(criterion, prompt, documents, reference), len(documents))
    scores = [CriterionScore(v.score, v.reason, j.name, v.raw) for v in verdicts]
    if key is not None:
        done[(j, key)] = scores
    return scores


def _ranked(
    documents: list[Document], per_criterion: dict[str, list[CriterionScore]], weight_map: dict[str, float]
) -> tuple[SelectedCandidate, ...]:
    """The candidates by weighted total, best first (ties in input order, as ``rank()`` breaks them)."""
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
    criteria: Iterable[CriterionLike] | CriterionLike = BEST_OF_N_CRITERIA,
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
    is an :class:`LLMJudge` on the same client, used by the criteria that ask it. The default criterion is
    ``agreement`` (self-consistency): on answers sampled from SmolLM2 it picked a correct answer more often than
    the sample order and than the SmolLM2 judge's correctness, at no judge call (docs/selection.md); add
    ``"correctness"`` when the judge is one you trust.

    Example:
        >>> from rankwise.selection import best_of_n                                    # doctest: +SKIP
        >>> best_of_n("Name a prime number.", n=4, criteria=["correctness"]).best.text  # doctest: +SKIP
    """
    from rankwise.llm.factory import make_client

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
