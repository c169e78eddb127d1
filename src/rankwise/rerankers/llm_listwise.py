"""Listwise LLM re-ranking (RankGPT): the model reads numbered passages and answers with their order.

Any number of candidates is ranked with a sliding window moved from the back of the list to the front (default
window 20, step 10), so the best passages bubble up to the top. Each passage is cut to a token budget. The
reply is parsed robustly (:mod:`rankwise.rerankers._permutation`): the result is always a permutation of the
input, and every repair (duplicates, out-of-range numbers, missing passages, replies with no numbers) is
counted in a :class:`ListwiseReport`.

Scores are positional: the document ranked first among ``n`` gets ``n``, the last gets ``1``.

Example:
    >>> from rankwise.rerankers.llm_listwise import ListwiseLLMReranker   # doctest: +SKIP
    >>> reranker = ListwiseLLMReranker()          # bundled SmolLM2-135M     # doctest: +SKIP
    >>> results, report = reranker.rank_with_report("what is bm25", docs)   # doctest: +SKIP
    >>> report.calls, report.repair_rate                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient, ChatMessage
from rankwise.llm.prompts import PromptTemplate
from rankwise.rerankers._llm_base import LLMReranker
from rankwise.rerankers._permutation import parse_permutation
from rankwise.rerankers.base import ProgressCallback
from rankwise.types import Document


@dataclass(frozen=True)
class ListwiseReport:
    """What one listwise ranking cost and what the parser had to repair (also used for running totals).

    Attributes:
        queries: rankings this report covers (1 for one call of ``rank_with_report``).
        windows: windows ranked (LLM calls made or served from the cache).
        calls: LLM calls that reached the model (cache hits excluded).
        prompt_tokens / completion_tokens: tokens as the backend counted them.
        duplicates / out_of_range / missing: numbers repaired, summed over windows.
        repaired_windows: windows whose reply needed any repair; ``unparseable_windows``: replies with no
        number. seconds: wall time. replies: the raw replies, in the order the windows were ranked (empty in
        running totals).
    """

    queries: int = 0
    windows: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duplicates: int = 0
    out_of_range: int = 0
    missing: int = 0
    repaired_windows: int = 0
    unparseable_windows: int = 0
    seconds: float = 0.0
    replies: tuple[str, ...] = ()

    @property
    def repair_rate(self) -> float:
        """Share of windows whose reply needed a repair (0.0 when no window was ranked)."""
        return self.repaired_windows / self.windows if self.windows else 0.0

    def __add__(self, other: ListwiseReport) -> ListwiseReport:
        values = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "replies"
        }
        return ListwiseReport(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["replies"] = list(self.replies)
        out["repair_rate"] = self.repair_rate
        return out


def window_starts(n: int, window: int, step: int) -> list[int]:
    """Start positions of the sliding windows, back to front; the last one always starts at 0.

    Example:
        >>> window_starts(100, 20, 10)[:3], window_starts(25, 20, 10), window_starts(5, 20, 10)
        ([80, 70, 60], [5, 0], [0])
    """
    if n <= window:
        return [0] if n else []
    starts = []
    start = n - window
    while True:
        starts.append(max(start, 0))
        if start <= 0:
            return starts
        start -= step


class ListwiseLLMReranker(LLMReranker[ListwiseReport]):
    """Rank candidates with an LLM that reads them as a numbered list (RankGPT prompt, sliding windows).

    Args:
        model: which LLM (see :func:`rankwise.llm.make_client`): None = the bundled SmolLM2-135M GGUF via
        llama.cpp,
            a ``.gguf`` path, an ``http(s)://`` base URL, an OpenAI-compatible model name, or a ChatClient.
        client: a ready :class:`~rankwise.llm.ChatClient` (instead of ``model``).
        name: the name put on results (default: the client's model).
        window: passages per LLM call (default 20).
        step: how far the window moves toward the front each time (default 10; ``step < window`` so that
        passages
            can climb across windows).
        max_passage_tokens: each passage is cut to about this many tokens (the model's tokenizer for local
        models). prompt: a bundled template name, a path to a template file, or a
        :class:`~rankwise.llm.PromptTemplate`
            of kind ``listwise``.
        fields: the document fields shown to the model (default title and text).
        max_reply_tokens: the reply budget per window; default ``6 * window_size + 16``.
        client_options: passed to the client's constructor (``base_url``, ``api_key``, ``n_ctx``,
        ``cache``...).

    ``rank``/``score`` keep the :class:`Reranker` interface; :meth:`rank_with_report` also returns the
    :class:`ListwiseReport`; :meth:`totals` sums every report since the instance was made (thread-safe).
    """

    report_type = ListwiseReport

    def __init__(
        self,
        model: ChatClient | str | os.PathLike[str] | None = None,
        *,
        client: ChatClient | None = None,
        name: str | None = None,
        window: int = 20,
        step: int = 10,
        max_passage_tokens: int = 100,
        prompt: str | os.PathLike[str] | PromptTemplate = "listwise",
        fields: Sequence[str] = DEFAULT_FIELDS,
        max_reply_tokens: int | None = None,
        **client_options: Any,
    ) -> None:
        for label, value, low in (
            ("window", window, 2),
            ("step", step, 1),
            ("max_passage_tokens", max_passage_tokens, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{label} must be an int >= {low}, got {value!r}.")
        if step >= window:
            raise InvalidInputError(
                f"step ({step}) must be smaller than window ({window}) so passages can move between windows; "
                "the default is window=20, step=10."
            )
        if max_reply_tokens is not None and (not isinstance(max_reply_tokens, int) or max_reply_tokens < 1):
            raise InvalidInputError(
                f"max_reply_tokens must be an int >= 1 or None, got {max_reply_tokens!r}."
            )
        self._setup("listwise", model, client, name, prompt, fields, client_options)
        self.window, self.step, self.max_passage_tokens = window, step, max_passage_tokens
        self.max_reply_tokens = max_reply_tokens

    # -- prompt
    # ---------------------------------------------------------------------------------------------------
    def messages(self, query: str, documents: Sequence[Document]) -> list[ChatMessage]:
        """The chat for one window: ``documents`` numbered 1..n, each cut to ``max_passage_tokens``."""
        items = [
            self.template.render_item(rank=rank, passage=self._passage(doc, self.max_passage_tokens))
            for rank, doc in enumerate(documents, start=1)
        ]
        return self._render({"query": query, "passages": "\n".join(items), "num": len(documents)})

    # -- ranking
    # --------------------------------------------------------------------------------------------------
    def _score_with_report(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> tuple[list[float], ListwiseReport]:
        began = time.perf_counter()
        n = len(documents)
        order = list(range(n))
        starts = window_starts(n, self.window, self.step)
        counts = dict.fromkeys(
            (
                "windows",
                "calls",
                "prompt_tokens",
                "completion_tokens",
                "duplicates",
                "out_of_range",
                "missing",
                "repaired_windows",
                "unparseable_windows",
            ),
            0,
        )
        replies: list[str] = []
        for done, start in enumerate(starts, start=1):
            end = min(start + self.window, n)
            part = order[start:end]
            if len(part) > 1:
                reply_budget = self.max_reply_tokens or 6 * len(part) + 16
                result = self.client.chat(
                    self.messages(query, [documents[i] for i in part]),
                    max_tokens=reply_budget,
                    temperature=0.0,
                )
                perm, repairs = parse_permutation(result.text, len(part))
                order[start:end] = [part[p] for p in perm]
                replies.append(result.text)
                counts["windows"] += 1
                counts["calls"] += 0 if result.cached else 1
                counts["prompt_tokens"] += result.usage.get("prompt_tokens", 0)
                counts["completion_tokens"] += result.usage.get("completion_tokens", 0)
                counts["duplicates"] += repairs.duplicates
                counts["out_of_range"] += repairs.out_of_range
                counts["missing"] += repairs.missing
                counts["repaired_windows"] += int(repairs.repaired)
                counts["unparseable_windows"] += int(repairs.unparseable)
            if progress is not None:
                progress(done, len(starts))
        scores = [0.0] * n
        for position, i in enumerate(order):
            scores[i] = float(n - position)
        report = ListwiseReport(
            queries=1, seconds=time.perf_counter() - began, replies=tuple(replies), **counts
        )
        return scores, self._record(report)

    def config(self) -> Mapping[str, Any]:
        return {
            "window": self.window,
            "step": self.step,
            "max_passage_tokens": self.max_passage_tokens,
            "prompt": self.template.name,
            "fields": list(self.fields),
            "model": self.client.model,
        }
