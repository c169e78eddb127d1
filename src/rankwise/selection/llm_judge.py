"""An LLM as judge: P(yes) of "does the response meet <criterion>?", the reply as the reason.

The response shown to the model is the whole candidate, read by the one documents text rule
(:func:`rankwise.documents.document_text` with ``fields``: title and text by default), as the LLM re-rankers show
passages.

Example:
    >>> from rankwise.selection import LLMJudge                                         # doctest: +SKIP
    >>> judge = LLMJudge(None, fields=("title", "text", "source"), max_reason_tokens=0)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rankwise._validation import check_fields
from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient, ChatMessage, ChatResult
from rankwise.llm.prompts import PromptTemplate, load_prompt
from rankwise.llm.scoring import YES_NO_CANDIDATES, NextTokenScorer, verdict_from_result, yes_probability
from rankwise.selection.base import NEUTRAL, Judge, Verdict

if TYPE_CHECKING:
    from rankwise.selection.criteria import Criterion


class LLMJudge(Judge):
    """A chat model as judge: P(yes) of "does the response meet the criterion?", the reply as the reason.

    With a reference answer, correctness uses the ``judge_reference`` prompt.

    Args:
        client: a :class:`~rankwise.llm.ChatClient`, or anything :func:`rankwise.llm.make_client` takes
            (None = the bundled SmolLM2 GGUF).
        prompt: the ``judge`` template (name, path or PromptTemplate).
        reference_prompt: the ``judge_reference`` template, used for correctness when a reference is given.
        max_reason_tokens: reply budget (the verdict word plus a one-sentence reason). 0 = no reason: a local
            model (exact next-token logits) then generates no reply at all; an HTTP model still replies with one
            token to carry its logprobs.
        top_logprobs: alternatives asked for at the first reply token (HTTP models).
        fields: the candidate's fields shown as the response (:func:`~rankwise.documents.document_text`).
    """

    def __init__(
        self,
        client: ChatClient | str | os.PathLike[str] | None = None,
        *,
        prompt: str | os.PathLike[str] | PromptTemplate = "judge",
        reference_prompt: str | os.PathLike[str] | PromptTemplate = "judge_reference",
        max_reason_tokens: int = 48,
        top_logprobs: int = 20,
        fields: Sequence[str] = DEFAULT_FIELDS,
    ) -> None:
        from rankwise.llm.factory import make_client

        if isinstance(max_reason_tokens, bool) or not isinstance(max_reason_tokens, int) or max_reason_tokens < 0:
            raise InvalidInputError(f"max_reason_tokens must be an int >= 0, got {max_reason_tokens!r}.")
        self.client = make_client(client)
        self.template = load_prompt(prompt, "judge")
        self.reference_template = load_prompt(reference_prompt, "judge_reference")
        self.max_reason_tokens = max_reason_tokens
        self.top_logprobs = top_logprobs
        self.fields = check_fields(fields)
        self.name = f"llm:{self.client.model}"

    def _chats(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[list[ChatMessage]]:
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
        return [template.render(response=r, **used) for r in responses]

    def judge(
        self, criterion: Criterion, prompt: str, responses: Sequence[str], reference: str | None
    ) -> list[Verdict]:
        chats = self._chats(criterion, prompt, responses, reference)
        if isinstance(self.client, NextTokenScorer):  # exact P(yes) from logits, then the reason as plain text
            exact = [yes_probability(self.client.next_token_logprobs(c, YES_NO_CANDIDATES)[0]) for c in chats]
            if self.max_reason_tokens == 0 and all(p is not None for p in exact):
                return [Verdict(p, f"P(yes)={p:.3f} (from logits; no reason asked)", p) for p in exact]
            results = self.client.batch(chats, max_tokens=max(1, self.max_reason_tokens), temperature=0.0)
            outcomes = [
                (p, "logits") if p is not None else verdict_from_result(r) for p, r in zip(exact, results)
            ]
        else:
            results = self.client.batch(
                chats, max_tokens=max(1, self.max_reason_tokens), temperature=0.0, logprobs=self.top_logprobs
            )
            outcomes = [verdict_from_result(r) for r in results]
        return [_verdict(result, p, source) for result, (p, source) in zip(results, outcomes)]


def _verdict(result: ChatResult, p: float | None, source: str) -> Verdict:
    """The verdict of one reply: P(yes) (neutral when the reply held no yes/no) and the reply as the reason."""
    reason = " ".join(result.text.split())[:400]
    if p is None:
        reason = f"no yes/no verdict in the reply (scored {NEUTRAL}): {reason!r}"
    elif source == "text":
        reason = f"{reason} [verdict from the reply text: the backend gave no logprobs]"
    return Verdict(NEUTRAL if p is None else p, reason or f"P(yes)={p:.3f}", p)
