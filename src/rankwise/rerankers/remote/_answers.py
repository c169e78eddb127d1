"""Reading a provider's answer: the errors a remote re-ranker raises, the one check every answer passes (each
document's index exactly once, in range, with a finite score), and the provider's billing units.

Providers answer the same thing in different shapes (Cohere ``results[].relevance_score``, Voyage
``data[].relevance_score``, Mixedbread ``data[].score``, TEI a bare list of ``{index, score}``), so the check takes
where the list is and what the score is called. It never fills a gap: an answer that lacks a document, repeats one,
names one out of range or gives a score that is not a finite number fails the whole call, with every problem named
by the caller's own document positions.

Example:
    >>> read_scores({"results": [{"index": 1, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.9}]},
    ...             items="results", score="relevance_score", positions=[10, 11], provider="cohere", url="http://h")
    [0.9, 0.5]
    >>> units_of({"meta": {"billed_units": {"search_units": 1}}}, search_units=("meta", "billed_units", "search_units"))
    {'search_units': 1.0}
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Sequence
from typing import Any

from rankwise.errors import RankwiseError

MAX_NAMED = 8
"""How many positions an error lists before it says "and N more"."""
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 40, 40, 3, 3


def preview(value: Any, limit: int = 80) -> str:
    """A bounded repr of any decoded JSON (a few items, a few levels: an answer may be huge or deeply nested).

    Example:
        >>> preview({"results": list(range(100))})
        "{'results': [0, 1, 2, ...]}"
    """
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RemoteError(RankwiseError):
    """A remote re-ranker call that did not give a score to every document: the provider could not be reached, refused
    the request, or answered something unusable. ``provider``, ``url`` and ``status`` (None when no answer came) say
    which call. Messages never hold the API key."""

    def __init__(self, message: str, *, provider: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider, self.url, self.status = provider, url, status


class RemoteAuthError(RemoteError):
    """The provider refused the API key (HTTP 401 or 403). Never retried: a wrong key stays wrong."""


class RemoteAnswerError(RemoteError):
    """The provider answered, but not with one finite score per document (bad JSON, a missing or repeated index...)."""


def _listed(values: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_NAMED])
    return shown + (f" and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def _score_value(value: Any) -> float | None:
    """``value`` as a finite float, or None (a bool, a string, null, NaN, an infinity or a number too large)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a double's range
        return None
    return number if math.isfinite(number) else None


def _items(answer: Any, items: str | None) -> list[Any] | None:
    if items is None:
        return answer if isinstance(answer, list) else None
    found = answer.get(items) if isinstance(answer, dict) else None
    return found if isinstance(found, list) else None


def read_scores(
    answer: Any, *, items: str | None, score: str, positions: Sequence[int], provider: str, url: str
) -> list[float]:
    """One finite score per document of a call, in the call's order, from the provider's decoded JSON ``answer``.

    Args:
        answer: the decoded JSON body.
        items: the key of the result list (``"results"``, ``"data"``), or None when the body is the list (TEI).
        score: the key of the score in each result (``"relevance_score"``, ``"score"``).
        positions: the caller's position of each document of the call (``len(positions)`` documents were sent); the
            error names these, so a caller can find the document.
        provider, url: which call, for messages.

    Raises:
        RemoteAnswerError: the list is missing, or any document lacks a score, is named twice or out of range, or has
            a score that is not a finite number. Every problem is listed; nothing is filled in.
    """
    n, where = len(positions), f"{provider} at {url}"
    found = _items(answer, items)
    if found is None:
        shape = "a list" if items is None else f"an object with a {items!r} list"
        raise RemoteAnswerError(
            f"{where} answered {preview(answer)}, not {shape} of results; check that the URL and the backend match "
            "(e.g. a TEI server needs backend='tei').",
            provider=provider,
            url=url,
        )
    scores: list[float | None] = [None] * n
    repeated: list[int] = []
    outside: list[Any] = []
    unusable: list[str] = []
    for k, item in enumerate(found):
        index = item.get("index") if isinstance(item, dict) else None
        if isinstance(index, bool) or not isinstance(index, int):
            unusable.append(f"result {k} has no integer 'index' ({preview(item)})")
            continue
        if not 0 <= index < n:
            outside.append(index)
            continue
        value = _score_value(item.get(score))
        if value is None:
            unusable.append(
                f"document {positions[index]} has no finite {score!r} ({preview(item.get(score))})"
            )
        elif scores[index] is not None:
            repeated.append(positions[index])
        else:
            scores[index] = value
    missing = [positions[i] for i, s in enumerate(scores) if s is None]
    if missing or repeated or outside or unusable:
        message = _answer_problems(where, n, missing, repeated, outside, unusable)
        raise RemoteAnswerError(message, provider=provider, url=url)
    return [float(s) for s in scores]  # type: ignore[arg-type]  # every slot is filled (checked above)


def _answer_problems(
    where: str, n: int, missing: list[int], repeated: list[int], outside: list[Any], unusable: list[str]
) -> str:
    problems = []
    if missing:
        problems.append(f"no score for document(s) {_listed(missing)}")
    if repeated:
        problems.append(f"document(s) {_listed(repeated)} scored more than once")
    if outside:
        problems.append(f"index(es) {_listed(outside)} outside 0..{n - 1}")
    problems.extend(unusable[:MAX_NAMED])
    return (
        f"{where} answered an unusable ranking for the {n} document(s) of a call: {'; '.join(problems)}. No partial "
        "ranking is returned; retry, or report the answer to the provider."
    )


def number_at(answer: Any, path: Sequence[str]) -> float | None:
    """The finite number >= 0 at ``path`` in ``answer`` (nested keys), or None when absent or not such a number."""
    value = answer
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    number = _score_value(value)
    return number if number is not None and number >= 0 else None


def units_of(answer: Any, **paths: Sequence[str]) -> dict[str, float]:
    """Billing units found in ``answer``: ``name -> number`` for each ``name=path`` present. Units are a report,
    never a reason to fail: a missing or malformed one is left out."""
    found = {name: number_at(answer, path) for name, path in paths.items()}
    return {name: value for name, value in found.items() if value is not None}
