"""Yes/no scoring from a model's next-token distribution: the shared core of the pointwise re-ranker and LLM
judges.

Example:
    >>> from rankwise.llm.scoring import yes_probability
    >>> round(yes_probability({"Yes": -0.1, " no": -2.5, "Maybe": -4.0}), 3)
    0.917
    >>> yes_probability({"Hello": -0.1}) is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from rankwise.llm.base import ChatMessage, ChatResult

_STRIP = " \t\n.,!:;\"'*`()[]"


def _word(token: str) -> str:
    return token.strip(_STRIP).lower()


def yes_no_mass(logprobs: Mapping[str, float]) -> tuple[float, float]:
    """Total probability of tokens that read as "yes" and as "no" (any case, leading space or punctuation)."""
    p_yes = p_no = 0.0
    for token, lp in logprobs.items():
        word = _word(token)
        if word == "yes":
            p_yes += math.exp(lp)
        elif word == "no":
            p_no += math.exp(lp)
    return p_yes, p_no


def yes_probability(logprobs: Mapping[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the given next-token alternatives; None when neither word is among them."""
    p_yes, p_no = yes_no_mass(logprobs)
    if p_yes + p_no <= 0.0:
        return None
    return p_yes / (p_yes + p_no)


def text_verdict(text: str) -> float | None:
    """1.0 / 0.0 when a reply starts with yes / no (the fallback when a backend gives no logprobs), else None."""
    words = text.strip().split(maxsplit=1)
    first = _word(words[0]) if words else ""
    return 1.0 if first == "yes" else 0.0 if first == "no" else None


YES_NO_CANDIDATES: tuple[str, ...] = ("yes", "Yes", " yes", " Yes", "YES", "no", "No", " no", " No", "NO")


@runtime_checkable
class NextTokenScorer(Protocol):
    """A client that can return exact next-token logprobs for chosen strings without sampling (local models)."""

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], candidates: Sequence[str]
    ) -> tuple[dict[str, float], int]:
        """Logprob of each candidate's first token after the assistant turn opens, and the prompt's token count."""


def verdict_from_result(result: ChatResult) -> tuple[float | None, str]:
    """Score and source of a yes/no reply: P(yes) from logprobs if present ("logprobs"), else the text ("text")."""
    p = yes_probability(result.first_token_logprobs())
    if p is not None:
        return p, "logprobs"
    return text_verdict(result.text), "text"
