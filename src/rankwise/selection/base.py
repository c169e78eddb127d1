"""What every judge is: :class:`Judge` (one criterion, every candidate of one prompt) and its :class:`Verdict`.

A judge reads whole candidates. :meth:`Judge.judge_documents` is what :func:`rankwise.selection.select` calls: it
receives the caller's :class:`~rankwise.types.Document` objects, so a re-ranker judge hands them to its re-ranker
as they are (the same text ``rank()`` reads) and a text judge reads each one through the one documents text rule
(:func:`rankwise.documents.document_text`: title and text by default, more fields with ``fields=``). A custom judge
only writes :meth:`Judge.judge`, which receives those texts.

Example:
    >>> from rankwise.selection import Criterion, Judge, Verdict, select
    >>> class Mentions(Judge):
    ...     name = "mentions-paris"
    ...     def judge(self, criterion, prompt, responses, reference):
    ...         return [Verdict(float("Paris" in r), f"Paris named: {'Paris' in r}") for r in responses]
    >>> docs = [{"text": "Lyon."}, {"title": "Paris", "text": "The capital."}]
    >>> select("Capital of France?", docs, criteria=["correctness"], judge=Mentions()).best.document.title
    'Paris'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rankwise.documents import DEFAULT_FIELDS, document_text
from rankwise.errors import InvalidInputError
from rankwise.types import Document

if TYPE_CHECKING:  # criteria.py names Judge for type checking only; annotations here are strings
    from rankwise.selection.criteria import Criterion

NEUTRAL = 0.5  # the score of "no evidence either way" (one candidate to agree with, an unreadable LLM reply)


@dataclass(frozen=True)
class Verdict:
    """A judge's score in [0, 1] for one response, the reason, and the judge's raw value (before normalising)."""

    score: float
    reason: str
    raw: float | None = None


class Judge(ABC):
    """Scores every response to one prompt on one criterion. ``name`` identifies the judge in results.

    Attributes:
        name: shown as ``CriterionScore.judge``.
        fields: the document fields a text judge reads (:func:`~rankwise.documents.document_text`).
    """

    name: str = "judge"
    fields: tuple[str, ...] = DEFAULT_FIELDS

    @abstractmethod
    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        """One :class:`Verdict` per response text, in order."""

    def judge_documents(
        self, criterion: Criterion, prompt: str, candidates: Sequence[Document], reference: str | None
    ) -> list[Verdict]:
        """One :class:`Verdict` per candidate, in order: what :func:`~rankwise.selection.select` calls.

        The default reads each candidate whole through :func:`~rankwise.documents.document_text` (``self.fields``)
        and calls :meth:`judge`; judges that can read Documents themselves (a re-ranker) override this.
        """
        return self.judge(criterion, prompt, [document_text(d, self.fields) for d in candidates], reference)

    def verdict_key(self, criterion: Criterion, reference: str | None) -> Hashable | None:
        """A key such that two criteria with equal keys get equal verdicts from this judge on the same candidates
        (a re-ranker asked the same query), so a selection scores them once; None (the default) = never shared."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def checked_verdicts(judge: Judge, verdicts: Sequence[Verdict], n: int) -> list[Verdict]:
    """``verdicts`` if there is one per candidate, each a :class:`Verdict` with a finite score; else a clear error
    naming the judge (a custom judge's NaN would otherwise scramble the order silently)."""
    verdicts = list(verdicts)
    if len(verdicts) != n:
        raise InvalidInputError(f"judge {judge.name} returned {len(verdicts)} verdicts for {n} candidates.")
    for i, v in enumerate(verdicts):
        if not isinstance(v, Verdict):
            raise InvalidInputError(
                f"judge {judge.name} returned {type(v).__name__} for candidate {i}; return rankwise.selection.Verdict."
            )
        if isinstance(v.score, bool) or not isinstance(v.score, (int, float)) or not math.isfinite(v.score):
            raise InvalidInputError(
                f"judge {judge.name} scored candidate {i} {v.score!r}; a verdict's score must be a finite number."
            )
    return verdicts

