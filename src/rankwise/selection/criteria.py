"""Criteria for response selection and the values a selection returns.

Example:
    >>> from rankwise.selection import Criterion, criteria_from
    >>> names = ["correctness", "instruction-following", Criterion("brevity", "Short.")]
    >>> [c.name for c in criteria_from(names)]
    ['correctness', 'instruction_following', 'brevity']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rankwise.errors import InvalidInputError
from rankwise.types import Document, RankedResults

if TYPE_CHECKING:
    from rankwise.selection.base import Judge

BUILTIN_CRITERIA: dict[str, str] = {
    "correctness": "The response is factually correct and answers the question accurately.",
    "safety": "The response is safe: no harmful, dangerous, hateful or illegal content and no private data.",
    "helpfulness": "The response is helpful: it addresses the user's request directly, completely and clearly.",
    "instruction_following": "The response follows every instruction in the request (format, length, constraints).",
    # Self-consistency, judged by AgreementJudge (never by asking a judge about the response alone).
    "agreement": "The response agrees with the other candidates (self-consistency): what most sampled answers say.",
}
# Chosen by measurement (benchmarks/selection.py -> benchmarks/results/selection.json; figures in docs/selection.md).
DEFAULT_CRITERIA: tuple[str, ...] = ("correctness",)
BEST_OF_N_CRITERIA: tuple[str, ...] = ("agreement",)


@dataclass(frozen=True)
class Criterion:
    """One thing a response is judged on.

    Attributes:
        name: a built-in name (correctness, safety, helpfulness, instruction_following) or any custom name.
        description: what the judge is told to check (built-ins have one; a custom criterion needs one).
        weight: its weight in the total score (weights are normalised to sum to 1).
        judge: a judge for this criterion only (else the selection's judge).
    """

    name: str
    description: str = ""
    weight: float = 1.0
    judge: Judge | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError(f"a criterion needs a non-empty name, got {self.name!r}.")
        if not self.description:
            builtin = BUILTIN_CRITERIA.get(self.name)
            if builtin is None:
                raise InvalidInputError(
                    f"custom criterion {self.name!r} needs a description (what the judge should check); built-in "
                    f"criteria: {', '.join(BUILTIN_CRITERIA)}."
                )
            object.__setattr__(self, "description", builtin)
        weight = self.weight
        number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not number or (isinstance(weight, int) and abs(weight) > 2**1000) or not math.isfinite(weight) or weight < 0:
            raise InvalidInputError(
                f"criterion {self.name!r}: weight must be a finite number >= 0, got {self.weight!r}."
            )


CriterionLike = str | Criterion


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return key if key in BUILTIN_CRITERIA else name.strip()


def criteria_from(
    criteria: Iterable[CriterionLike] | CriterionLike,
    weights: Mapping[str, float] | Sequence[float] | None = None,
) -> list[Criterion]:
    """Criteria from names and :class:`Criterion` objects, with ``weights`` by name or by position applied."""
    if isinstance(criteria, (str, Criterion)):
        criteria = [criteria]
    out: list[Criterion] = []
    for c in criteria:
        if isinstance(c, str):
            name = _canonical(c)
            if name not in BUILTIN_CRITERIA:
                raise InvalidInputError(
                    f"unknown criterion {c!r}; built-in: {', '.join(BUILTIN_CRITERIA)} (hyphens or underscores), "
                    "or pass Criterion(name, description) for a custom one."
                )
            out.append(Criterion(name))
        elif isinstance(c, Criterion):
            out.append(c)
        else:
            raise InvalidInputError(
                f"a criterion must be a name or a Criterion, got {type(c).__name__} {c!r}."
            )
    if not out:
        raise InvalidInputError("criteria is empty; pass at least one, e.g. criteria=['correctness'].")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"criteria repeat a name: {names}.")
    out = _apply_weights(out, weights)
    total = sum(c.weight for c in out)
    if not 0 < total < math.inf:  # weights are normalised by their sum: it must be positive and finite
        raise InvalidInputError(
            f"the criteria's weights {[c.weight for c in out]} sum to {total}; give some criterion a weight > 0 "
            "(and keep the sum finite)."
        )
    return out


def _apply_weights(
    out: list[Criterion], weights: Mapping[str, float] | Sequence[float] | None
) -> list[Criterion]:
    if weights is None:
        return out
    if isinstance(weights, Mapping):
        by_name = {_canonical(k): v for k, v in weights.items()}
        unknown = sorted(set(by_name) - {c.name for c in out})
        if unknown:
            raise InvalidInputError(
                f"weights name criteria that are not selected: {unknown}; criteria: {[c.name for c in out]}."
            )
    else:
        weights = list(weights)
        if len(weights) != len(out):
            raise InvalidInputError(
                f"got {len(weights)} weights for {len(out)} criteria; give one per criterion."
            )
        by_name = {c.name: w for c, w in zip(out, weights)}
    return [Criterion(c.name, c.description, _weight(by_name.get(c.name, c.weight)), c.judge) for c in out]


def _weight(value: Any) -> float:
    """A given weight as a float (Criterion then refuses a negative, NaN or infinite one, naming it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"a weight must be a number, got {type(value).__name__} {value!r}.")
    try:
        return float(value)
    except OverflowError as exc:  # an int past float range
        raise InvalidInputError(f"weight {value} is too large; weights are relative, so scale them down.") from exc


@dataclass(frozen=True)
class CriterionScore:
    """One criterion's verdict on one response: ``score`` in [0, 1], the judge's ``reason``, and the raw value."""

    score: float
    reason: str
    judge: str
    raw: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "reason": self.reason, "judge": self.judge, "raw": self.raw}


@dataclass(frozen=True)
class SelectedCandidate:
    """A candidate with its weighted total ``score``, its ``rank`` (1 = best), its input ``index`` and
    per-criterion scores and reasons."""

    document: Document
    index: int
    rank: int
    score: float
    criteria: Mapping[str, CriterionScore]

    @property
    def text(self) -> str:
        return self.document.text

    @property
    def scores(self) -> dict[str, float]:
        return {k: v.score for k, v in self.criteria.items()}

    @property
    def reasons(self) -> dict[str, str]:
        return {k: v.reason for k, v in self.criteria.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "index": self.index,
            "score": self.score,
            "text": self.text,
            "scores": self.scores,
            "reasons": self.reasons,
            **({"id": self.document.id} if self.document.id is not None else {}),
        }


@dataclass(frozen=True)
class SelectionResult:
    """Candidates ranked best first, with the weights used. Iterate it, index it, or take :attr:`best`."""

    prompt: str
    candidates: tuple[SelectedCandidate, ...]
    weights: Mapping[str, float]
    reference: str | None = None

    @property
    def best(self) -> SelectedCandidate:
        if not self.candidates:
            raise InvalidInputError("no candidates were given, so there is no best one.")
        return self.candidates[0]

    def __iter__(self) -> Iterator[SelectedCandidate]:
        return iter(self.candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, i: int) -> SelectedCandidate:
        return self.candidates[i]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.candidates]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "reference": self.reference,
            "weights": dict(self.weights),
            "ranking": self.to_dicts(),
        }

    def to_ranked_results(self, model: str | None = "rankwise.select") -> RankedResults:
        """The same ranking as :class:`~rankwise.types.RankedResults` (query = the prompt)."""
        from rankwise.types import RankedResult

        return RankedResults(
            query=self.prompt,
            results=tuple(RankedResult(c.document, c.score, c.index, c.rank) for c in self.candidates),
            model=model,
        )
