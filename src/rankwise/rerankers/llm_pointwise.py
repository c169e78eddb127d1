"""Pointwise LLM re-ranking: "is this passage relevant to the query? yes/no", scored by P(yes).

The score of a passage is ``P(yes) / (P(yes) + P(no))`` at the first reply token, in [0, 1]:

- local models (:class:`~rankwise.llm.LlamaCppChatClient`): exact, from the logits of the next token after the
  prompt, with no sampling (``next_token_logprobs``);
- endpoints: from the ``top_logprobs`` of a one-token reply (``logprobs=N``); when the server gives no
  logprobs,
  the reply's text (yes -> 1.0, no -> 0.0) is used and counted in the report;
- when neither "yes" nor "no" shows up, the passage scores 0.5 and is counted as ``no_verdict``.

Calls are batched: :meth:`ChatClient.batch` with the client's concurrency (HTTP), one by one for a local
model.

Example:
    >>> from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker      # doctest: +SKIP
    >>> reranker = PointwiseLLMReranker()                                       # doctest: +SKIP
    >>> reranker.rank("what is bm25", ["BM25 is a ranking function.", "Cats purr."])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient, ChatMessage
from rankwise.llm.prompts import PromptTemplate
from rankwise.llm.scoring import YES_NO_CANDIDATES, NextTokenScorer, verdict_from_result, yes_probability
from rankwise.rerankers._llm_base import LLMReranker
from rankwise.rerankers.base import ProgressCallback
from rankwise.types import Document

NEUTRAL = 0.5


@dataclass(frozen=True)
class PointwiseReport:
    """What a pointwise ranking cost and how each score was obtained.

    Attributes:
        queries: rankings covered; documents: passages scored.
        calls: model calls (cache hits excluded); prompt_tokens / completion_tokens as counted by the backend.
        from_logits: scores read from exact next-token logits (local models).
        from_logprobs: scores read from an endpoint's top logprobs.
        from_text: scores read from the reply text because the backend gave no logprobs (0 or 1 only).
        no_verdict: passages where neither yes nor no was found (scored 0.5).
        seconds: wall time.
    """

    queries: int = 0
    documents: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    from_logits: int = 0
    from_logprobs: int = 0
    from_text: int = 0
    no_verdict: int = 0
    seconds: float = 0.0

    def __add__(self, other: PointwiseReport) -> PointwiseReport:
        return PointwiseReport(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PointwiseLLMReranker(LLMReranker[PointwiseReport]):
    """Score each candidate alone by the LLM's probability of answering "yes" to "is it relevant?".

    Args:
        model: which LLM (see :func:`rankwise.llm.make_client`); None = the bundled SmolLM2-135M GGUF.
        client: a ready :class:`~rankwise.llm.ChatClient` (instead of ``model``).
        name: the name put on results (default ``llm-pointwise:<model>``).
        prompt: a bundled template name, a template file path, or a ``pointwise`` :class:`PromptTemplate`.
        fields: the document fields shown to the model. max_passage_tokens: each passage is cut to about this
        many tokens. top_logprobs: alternatives asked from an endpoint for the first reply token (default 20).
        concurrency: requests in flight for HTTP clients (default: the client's).
        client_options: passed to the client's constructor.
    """

    report_type = PointwiseReport
    independent_scores: ClassVar[bool] = True  # each candidate is judged alone

    def __init__(
        self,
        model: ChatClient | str | os.PathLike[str] | None = None,
        *,
        client: ChatClient | None = None,
        name: str | None = None,
        prompt: str | os.PathLike[str] | PromptTemplate = "pointwise",
        fields: Sequence[str] = DEFAULT_FIELDS,
        max_passage_tokens: int = 256,
        top_logprobs: int = 20,
        concurrency: int | None = None,
        **client_options: Any,
    ) -> None:
        if (
            isinstance(max_passage_tokens, bool)
            or not isinstance(max_passage_tokens, int)
            or max_passage_tokens < 1
        ):
            raise InvalidInputError(f"max_passage_tokens must be an int >= 1, got {max_passage_tokens!r}.")
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 1:
            raise InvalidInputError(f"top_logprobs must be an int >= 1, got {top_logprobs!r}.")
        self._setup("pointwise", model, client, name, prompt, fields, client_options)
        self.max_passage_tokens = max_passage_tokens
        self.top_logprobs = top_logprobs
        self.concurrency = concurrency

    def messages(self, query: str, document: Document) -> list[ChatMessage]:
        """The chat that asks about one passage."""
        passage = self._passage(document, self.max_passage_tokens)
        return self._render({"query": query, "passage": passage, "title": document.title or ""})

    def _score_with_report(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> tuple[list[float], PointwiseReport]:
        began = time.perf_counter()
        chats = [self.messages(query, d) for d in documents]
        counts = dict.fromkeys(
            (
                "calls",
                "prompt_tokens",
                "from_logits",
                "from_logprobs",
                "from_text",
                "no_verdict",
                "completion_tokens",
            ),
            0,
        )
        scores: list[float] = []
        if isinstance(self.client, NextTokenScorer):
            for done, chat in enumerate(chats, start=1):
                logprobs, prompt_tokens = self.client.next_token_logprobs(chat, YES_NO_CANDIDATES)
                p = yes_probability(logprobs)
                counts["calls"] += 1
                counts["prompt_tokens"] += prompt_tokens
                counts["from_logits" if p is not None else "no_verdict"] += 1
                scores.append(NEUTRAL if p is None else p)
                if progress is not None:
                    progress(done, len(chats))
        else:
            results = self.client.batch(
                chats, concurrency=self.concurrency, max_tokens=1, temperature=0.0, logprobs=self.top_logprobs
            )
            for result in results:
                p, source = verdict_from_result(result)
                counts["calls"] += 0 if result.cached else 1
                counts["prompt_tokens"] += result.usage.get("prompt_tokens", 0)
                counts["completion_tokens"] += result.usage.get("completion_tokens", 0)
                counts["no_verdict" if p is None else f"from_{source}"] += 1
                scores.append(NEUTRAL if p is None else p)
            if progress is not None:
                progress(len(chats), len(chats))
        report = PointwiseReport(
            queries=1, documents=len(documents), seconds=time.perf_counter() - began, **counts
        )
        return scores, self._record(report)
