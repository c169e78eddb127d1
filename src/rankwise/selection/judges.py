"""Judges score responses on one criterion, each score in [0, 1] with a reason.

- :class:`LLMJudge`: asks a chat model "does the response meet <criterion>? yes/no, then why"; the score is
  P(yes) at
  the first reply token (from logprobs), the reason is the reply. With a reference answer, correctness uses
  the ``judge_reference`` prompt.
- :class:`RerankerJudge`: any rankwise :class:`~rankwise.rerankers.base.Reranker` as a reward model; the query
  is the
  reference answer for correctness (when given), else the prompt; scores are min-max normalised over the
  candidates (``normalize="sigmoid"`` or ``"none"`` for other scales).
- :class:`TokenF1Judge`: no model: SQuAD-style token F1 against the reference answer.
- :class:`AgreementJudge`: correctness without a reference: a response's mean similarity to the other
  responses
  (self-consistency), with a similarity from a Reranker or token F1.

Example:
    >>> from rankwise.selection import Criterion, TokenF1Judge
    >>> v = TokenF1Judge().judge(Criterion("correctness"), "Capital of France?", ["Paris", "Lyon"], "Paris")
    >>> [round(x.score, 2) for x in v]
    [1.0, 0.0]
"""

from __future__ import annotations

import math
import os
import re
import string
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient
from rankwise.llm.prompts import PromptTemplate, load_prompt
from rankwise.llm.scoring import YES_NO_CANDIDATES, NextTokenScorer, verdict_from_result, yes_probability
from rankwise.rerankers.base import Reranker
from rankwise.selection.criteria import Criterion
from rankwise.types import rank_order

NEUTRAL = 0.5


@dataclass(frozen=True)
class Verdict:
    """A judge's score in [0, 1] for one response, the reason, and the judge's raw value (before normalising)."""

    score: float
    reason: str
    raw: float | None = None


class Judge(ABC):
    """Scores every response to one prompt on one criterion. ``name`` identifies the judge in results."""

    name: str = "judge"

    @abstractmethod
    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        """One :class:`Verdict` per response, in order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# -- LLM ----------------------------------------------------------------------------------------------------------
class LLMJudge(Judge):
    """A chat model as judge: P(yes) of "does the response meet the criterion?", the reply as the reason.

    Args:
        client: a :class:`~rankwise.llm.ChatClient`, or anything :func:`rankwise.llm.make_client` takes
            (None = the bundled SmolLM2 GGUF).
        prompt: the ``judge`` template (name, path or PromptTemplate).
        reference_prompt: the ``judge_reference`` template, used for correctness when a reference is given.
        max_reason_tokens: reply budget (the verdict word plus a one-sentence reason).
        top_logprobs: alternatives asked for at the first reply token.
    """

    def __init__(
        self,
        client: ChatClient | str | os.PathLike[str] | None = None,
        *,
        prompt: str | os.PathLike[str] | PromptTemplate = "judge",
        reference_prompt: str | os.PathLike[str] | PromptTemplate = "judge_reference",
        max_reason_tokens: int = 48,
        top_logprobs: int = 20,
    ) -> None:
        from rankwise.llm.factory import make_client

        self.client = make_client(client)
        self.template = load_prompt(prompt, "judge")
        self.reference_template = load_prompt(reference_prompt, "judge_reference")
        self.max_reason_tokens = max_reason_tokens
        self.top_logprobs = top_logprobs
        self.name = f"llm:{self.client.model}"

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        template = (
            self.reference_template
            if reference is not None and criterion.name == "correctness"
            else self.template
        )
        values = {
            "prompt": prompt,
            "criterion": criterion.name.replace("_", " "),
            "description": criterion.description,
            "reference": reference or "",
        }
        used = {k: v for k, v in values.items() if k in template.placeholders and k != "response"}
        chats = [template.render(response=r, **used) for r in responses]
        if isinstance(
            self.client, NextTokenScorer
        ):  # exact P(yes) from logits, then the reason as plain text
            exact = [yes_probability(self.client.next_token_logprobs(c, YES_NO_CANDIDATES)[0]) for c in chats]
            results = self.client.batch(chats, max_tokens=self.max_reason_tokens, temperature=0.0)
            outcomes = [
                (p, "logits") if p is not None else verdict_from_result(r) for p, r in zip(exact, results)
            ]
        else:
            results = self.client.batch(
                chats, max_tokens=self.max_reason_tokens, temperature=0.0, logprobs=self.top_logprobs
            )
            outcomes = [verdict_from_result(r) for r in results]
        verdicts = []
        for result, (p, source) in zip(results, outcomes):
            reason = " ".join(result.text.split())[:400]
            if p is None:
                reason = f"no yes/no verdict in the reply (scored {NEUTRAL}): {reason!r}"
            elif source == "text":
                reason = f"{reason} [verdict from the reply text: the backend gave no logprobs]"
            verdicts.append(Verdict(NEUTRAL if p is None else p, reason or f"P(yes)={p:.3f}", p))
        return verdicts


# -- reward model
# ---------------------------------------------------------------------------------------------------
def normalize_scores(raw: Sequence[float], how: str) -> list[float]:
    """Map raw scores to [0, 1]: ``minmax`` over the set (all equal -> 0.5), ``sigmoid``, or ``none`` (clipped)."""
    if how == "minmax":
        lo, hi = min(raw), max(raw)
        return [NEUTRAL if hi == lo else (s - lo) / (hi - lo) for s in raw]
    if how == "sigmoid":
        return [1.0 / (1.0 + math.exp(-max(min(s, 60.0), -60.0))) for s in raw]
    if how == "none":
        return [min(max(s, 0.0), 1.0) for s in raw]
    raise InvalidInputError(f"normalize must be 'minmax', 'sigmoid' or 'none', got {how!r}.")


class RerankerJudge(Judge):
    """Any rankwise re-ranker as a reward model.

    The "query" is the reference answer for correctness when one is given, else ``query_template`` filled with
    the prompt and the criterion's description (default: the prompt alone, which is what a relevance model
    understands).

    Args:
        reranker: a :class:`~rankwise.rerankers.base.Reranker` or a name for :func:`rankwise.load`.
        normalize: ``minmax`` (default), ``sigmoid`` (raw logits of a cross-encoder) or ``none`` (already in
        [0, 1]). query_template: ``str.format`` template with ``{prompt}`` and optionally ``{description}``.
    """

    def __init__(
        self, reranker: Reranker | str, *, normalize: str = "minmax", query_template: str = "{prompt}"
    ) -> None:
        if isinstance(reranker, str):
            from rankwise.registry import load

            reranker = load(reranker)
        if not isinstance(reranker, Reranker):
            raise InvalidInputError(
                f"reranker must be a rankwise Reranker or a model name, got {reranker!r}."
            )
        normalize_scores([0.0], normalize)  # validate early
        self.reranker = reranker
        self.normalize = normalize
        self.query_template = query_template
        self.name = f"reranker:{reranker.name}"

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        against_reference = reference is not None and criterion.name == "correctness"
        query = (
            reference
            if against_reference
            else self.query_template.format(prompt=prompt, description=criterion.description)
        )
        raw = self.reranker.score(query, list(responses))
        scores = normalize_scores(raw, self.normalize)
        place = {i: r for r, i in enumerate(rank_order(raw), start=1)}
        what = "the reference answer" if against_reference else "the prompt"
        return [
            Verdict(
                s, f"{self.reranker.name} scored {r:.4g} against {what} (rank {place[i]} of {len(raw)})", r
            )
            for i, (s, r) in enumerate(zip(scores, raw))
        ]

    def similarity(self, text: str, others: Sequence[str]) -> list[float]:
        """Similarity of ``text`` to each of ``others``, in [0, 1] (sigmoid/none) or raw scores (minmax)."""
        raw = self.reranker.score(text, list(others))
        return raw if self.normalize == "minmax" else normalize_scores(raw, self.normalize)


# -- token overlap
# --------------------------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> list[str]:
    """SQuAD normalisation: lower case, no punctuation, no articles, split on whitespace."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 of two answers (1.0 when both are empty after normalising)."""
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class TokenF1Judge(Judge):
    """Reference-based correctness without a model: token F1 against the reference answer.

    For any other criterion or without a reference it falls back to agreement among the candidates (token F1).
    """

    name = "token-f1"

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        if reference is None:
            return AgreementJudge().judge(criterion, prompt, responses, None)
        out = []
        for r in responses:
            f1 = token_f1(r, reference)
            exact = normalize_answer(r) == normalize_answer(reference)
            reason = f"token F1 {f1:.2f} with the reference answer" + (" (exact match)" if exact else "")
            out.append(Verdict(f1, reason, f1))
        return out


class AgreementJudge(Judge):
    """Correctness with no reference: each response's mean similarity to the others (self-consistency).

    Args:
        similarity: a :class:`RerankerJudge` (its re-ranker scores response pairs; min-max normalised at the
        end)
            or None for token F1.
    """

    def __init__(self, similarity: RerankerJudge | None = None) -> None:
        self.similarity = similarity
        self.name = "agreement:" + ("token-f1" if similarity is None else similarity.reranker.name)

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        n = len(responses)
        if n < 2:
            return [Verdict(NEUTRAL, "only one candidate: nothing to agree with", None) for _ in responses]
        means = []
        for i, r in enumerate(responses):
            others = [o for j, o in enumerate(responses) if j != i]
            sims = (
                [token_f1(r, o) for o in others]
                if self.similarity is None
                else self.similarity.similarity(r, others)
            )
            means.append(sum(sims) / len(sims))
        scores = (
            means
            if self.similarity is None or self.similarity.normalize != "minmax"
            else normalize_scores(means, "minmax")
        )
        return [
            Verdict(s, f"mean agreement {m:.3f} with the other {n - 1} candidates ({self.name})", m)
            for s, m in zip(scores, means)
        ]


def as_judge(judge: Any) -> Judge:
    """A judge from a Judge, a Reranker (reward model), a ChatClient (LLM judge), or a string:
    ``"token-f1"``, ``"llm"`` (bundled SmolLM2), a ``.gguf`` path or ``http(s)://`` URL (LLM judge), or a
    :func:`rankwise.load` preset name (reward model)."""
    if isinstance(judge, Judge):
        return judge
    if isinstance(judge, Reranker):
        return RerankerJudge(judge)
    if judge is None or isinstance(judge, ChatClient):
        return LLMJudge(judge)
    if isinstance(judge, (str, os.PathLike)):
        text = os.fspath(judge)
        if text in ("token-f1", "token_f1", "f1"):
            return TokenF1Judge()
        if text == "llm":
            return LLMJudge(None)
        if text.startswith(("http://", "https://")) or text.lower().endswith(".gguf"):
            return LLMJudge(text)
        from rankwise.registry import presets

        if text in presets():
            return RerankerJudge(text)
        raise InvalidInputError(
            f"unknown judge {text!r}: use 'llm', 'token-f1', a .gguf path, an http(s) URL of an OpenAI-compatible "
            f"server, or a re-ranker preset ({', '.join(sorted(presets()))})."
        )
    raise InvalidInputError(
        f"judge must be a Judge, Reranker, ChatClient or name, got {type(judge).__name__}."
    )
