"""Judges score responses on one criterion, each score in [0, 1] with a reason.

- :class:`~rankwise.selection.llm_judge.LLMJudge`: asks a chat model "does the response meet <criterion>? yes/no,
  then why"; the score is P(yes) at the first reply token. With a reference answer, correctness uses the
  ``judge_reference`` prompt.
- :class:`RerankerJudge`: any rankwise :class:`~rankwise.rerankers.base.Reranker` as a reward model. It hands the
  caller's Documents to the re-ranker unchanged, so it reads exactly what ``reranker.rank()`` reads; the query is the
  reference answer for correctness (when given), else the prompt; scores are min-max normalised over the candidates.
- :class:`TokenF1Judge`: no model: SQuAD-style token F1 against the reference answer.
- :class:`AgreementJudge`: the ``agreement`` criterion (self-consistency): a response's mean similarity to the
  other responses, with a similarity from a Reranker or token F1. It suits n answers sampled for one prompt
  (:func:`~rankwise.selection.best_of_n`), not candidates that differ by design (docs/selection.md has the figures).

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
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from rankwise.documents import document_text
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient
from rankwise.rerankers.base import Reranker
from rankwise.selection.base import NEUTRAL, Judge, Verdict
from rankwise.selection.llm_judge import LLMJudge
from rankwise.types import Document, rank_order

if TYPE_CHECKING:
    from rankwise.selection.criteria import Criterion

__all__ = [
    "NEUTRAL", "AgreementJudge", "Judge", "LLMJudge", "RerankerJudge", "TokenF1Judge", "Verdict", "as_judge",
    "normalize_answer", "normalize_scores", "token_f1",
]


# -- reward model -------------------------------------------------------------------------------------------------
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
    understands, so every criterion but correctness-with-a-reference asks the same question and a selection
    scores it once). The candidates reach the re-ranker as the caller's Documents, read by the re-ranker's own
    ``fields``: ``select(q, docs, criteria=["correctness"], judge=r)`` orders exactly as ``r.rank(q, docs)``.

    Args:
        reranker: a :class:`~rankwise.rerankers.base.Reranker` or a name for :func:`rankwise.load`.
        normalize: ``minmax`` (default), ``sigmoid`` (raw logits of a cross-encoder) or ``none`` (already in
            [0, 1]).
        query_template: ``str.format`` template with ``{prompt}`` and optionally ``{description}``.
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
        try:
            query_template.format(prompt="", description="")
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise InvalidInputError(
                f"query_template {query_template!r} is not a str.format template of {{prompt}} and "
                f"{{description}} ({type(exc).__name__}: {exc})."
            ) from exc
        self.reranker = reranker
        self.normalize = normalize
        self.query_template = query_template
        self.name = f"reranker:{reranker.name}"

    def _query(self, criterion: Criterion, prompt: str, reference: str | None) -> tuple[str, bool]:
        """The query the re-ranker is asked, and whether it is the reference answer."""
        if reference is not None and criterion.name == "correctness":
            return reference, True
        return self.query_template.format(prompt=prompt, description=criterion.description), False

    def judge_documents(
        self, criterion: Criterion, prompt: str, candidates: Sequence[Document], reference: str | None
    ) -> list[Verdict]:
        query, against_reference = self._query(criterion, prompt, reference)
        raw = self.reranker.score(query, list(candidates))
        scores = normalize_scores(raw, self.normalize)
        place = {i: r for r, i in enumerate(rank_order(raw), start=1)}
        what = "the reference answer" if against_reference else "the prompt"
        return [
            Verdict(
                s, f"{self.reranker.name} scored {r:.4g} against {what} (rank {place[i]} of {len(raw)})", r
            )
            for i, (s, r) in enumerate(zip(scores, raw))
        ]

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        return self.judge_documents(criterion, prompt, [Document(r) for r in responses], reference)

    def verdict_key(self, criterion: Criterion, reference: str | None) -> Hashable | None:
        if reference is not None and criterion.name == "correctness":
            return ("reference", reference)
        if "{description}" in self.query_template:
            return ("description", criterion.description)
        return ("prompt",)

    def similarity(self, text: str, others: Sequence[Document | str]) -> list[float]:
        """Similarity of ``text`` to each of ``others``, in [0, 1] (sigmoid/none) or raw scores (minmax)."""
        raw = self.reranker.score(text, list(others))
        return raw if self.normalize == "minmax" else normalize_scores(raw, self.normalize)


# -- token overlap ------------------------------------------------------------------------------------------------
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

    Without a reference there is nothing to compare with, so it scores agreement among the candidates (token F1;
    the judge name in the results says ``agreement:token-f1``).
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

    def verdict_key(self, criterion: Criterion, reference: str | None) -> Hashable | None:
        return ("token-f1", reference)  # the criterion plays no part


class AgreementJudge(Judge):
    """Self-consistency: each response's mean similarity to the others (the ``agreement`` criterion).

    The answer most samples agree on is most often right when the candidates are n answers sampled for one prompt
    (best-of-n); candidates that differ by design (retrieved sentences, answers of different systems) get no such
    signal from agreement, and it costs n re-ranker calls (docs/selection.md).

    Args:
        similarity: a :class:`RerankerJudge` (its re-ranker scores a response, as the query, against the others;
            min-max normalised at the end) or None for token F1.
    """

    def __init__(self, similarity: RerankerJudge | None = None) -> None:
        if similarity is not None and not isinstance(similarity, RerankerJudge):
            raise InvalidInputError(
                f"similarity must be a RerankerJudge or None (token F1), got {type(similarity).__name__}."
            )
        self.similarity = similarity
        self.name = "agreement:" + ("token-f1" if similarity is None else similarity.reranker.name)

    def judge_documents(
        self, criterion: Criterion, prompt: str, candidates: Sequence[Document], reference: str | None
    ) -> list[Verdict]:
        n = len(candidates)
        if n < 2:
            return [Verdict(NEUTRAL, "only one candidate: nothing to agree with", None) for _ in candidates]
        texts = [document_text(d, self.fields) for d in candidates]
        means: list[float | None] = []
        for i, text in enumerate(texts):
            if not text.strip():  # an empty answer agrees with nothing (and is no query for a re-ranker)
                means.append(None)
            elif self.similarity is None:
                sims = [token_f1(text, o) for j, o in enumerate(texts) if j != i]
                means.append(sum(sims) / len(sims))
            else:  # the others as the caller's Documents: the re-ranker reads them as rank() would
                sims = self.similarity.similarity(text, [d for j, d in enumerate(candidates) if j != i])
                means.append(sum(sims) / len(sims))
        return self._verdicts(means)

    def _verdicts(self, found: list[float | None]) -> list[Verdict]:
        """Verdicts from mean similarities; an empty candidate gets the lowest agreement of the set."""
        n = len(found)
        known = [m for m in found if m is not None]
        floor = min(known) if known else 0.0
        means = [floor if m is None else m for m in found]
        scores = (
            means
            if self.similarity is None or self.similarity.normalize != "minmax"
            else normalize_scores(means, "minmax")
        )
        return [
            Verdict(s, f"mean agreement {m:.3f} with the other {n - 1} candidates ({self.name})", m)
            if f is not None else Verdict(s, f"empty: agrees with nothing (lowest agreement, {self.name})", m)
            for s, m, f in zip(scores, means, found)
        ]

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        return self.judge_documents(criterion, prompt, [Document(r) for r in responses], reference)

    def verdict_key(self, criterion: Criterion, reference: str | None) -> Hashable | None:
        return ("agreement",)  # neither the criterion nor the reference plays a part


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
