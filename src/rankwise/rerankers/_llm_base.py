"""What the LLM re-rankers share: client and prompt set-up, passage text, and per-call reports with totals.

:class:`~rankwise.rerankers.llm_listwise.ListwiseLLMReranker` and
:class:`~rankwise.rerankers.llm_pointwise.PointwiseLLMReranker` differ only in how they ask the model and
what their report counts; the bookkeeping around that (``rank_with_report``, thread-safe ``totals``) lives
here once so the two cannot drift apart.

Example:
    >>> from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker, PointwiseReport
    >>> issubclass(PointwiseLLMReranker, LLMReranker), PointwiseLLMReranker.report_type is PointwiseReport
    (True, True)
"""

from __future__ import annotations

import os
import re
import threading
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from rankwise._validation import check_fields, check_query, check_top_k
from rankwise.documents import DocumentLike, document_text, model_text, to_documents
from rankwise.llm.base import ChatClient, ChatMessage
from rankwise.llm.factory import make_client
from rankwise.llm.prompts import PromptTemplate, load_prompt
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document, RankedResults

_SPACES = re.compile(r"\s+")


class _Report(Protocol):
    """A frozen report dataclass that can be summed (``a + b``) and built empty as ``Report(queries=1)``."""

    def __add__(self, other: Any, /) -> Any: ...


ReportT = TypeVar("ReportT", bound=_Report)


class LLMReranker(Reranker, Generic[ReportT]):
    """Base of the LLM re-rankers: a subclass sets :attr:`report_type` and writes :meth:`_score_with_report`.

    ``rank``/``score`` keep the :class:`Reranker` interface; :meth:`rank_with_report` also returns the
    report of the call and :meth:`totals` sums every report since the instance was made.
    """

    report_type: ClassVar[type[Any]]
    client: ChatClient
    template: PromptTemplate
    fields: tuple[str, ...]

    def _setup(
        self,
        kind: str,
        model: ChatClient | str | os.PathLike[str] | None,
        client: ChatClient | None,
        name: str | None,
        prompt: str | os.PathLike[str] | PromptTemplate,
        fields: Sequence[str],
        client_options: Mapping[str, Any],
    ) -> None:
        """Resolve the client, the ``kind`` prompt, the fields and the name (call after validating options).

        The order (client, prompt, fields) is the order in which a bad argument is reported.
        """
        self.client = client if client is not None else make_client(model, **client_options)
        self.template = load_prompt(prompt, kind)
        self.fields = check_fields(fields)
        self.name = name or f"llm-{kind}:{self.client.model}"
        self._totals: ReportT = self.report_type()
        self._totals_lock = threading.Lock()

    def _passage(self, document: Document, max_tokens: int) -> str:
        """The document's shown fields on one line, cut to about ``max_tokens`` of the client's tokens."""
        text = _SPACES.sub(" ", document_text(document, self.fields)).strip()
        return self.client.truncate(text, max_tokens)

    def _render(self, values: Mapping[str, Any]) -> list[ChatMessage]:
        """The chat from the template, given only the placeholders the template uses."""
        return self.template.render(**{k: v for k, v in values.items() if k in self.template.placeholders})

    def _record(self, report: ReportT) -> ReportT:
        """Add ``report`` to the running totals (thread-safe) and return it."""
        with self._totals_lock:
            self._totals = self._totals + report
        return report

    @abstractmethod
    def _score_with_report(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> tuple[list[float], ReportT]:
        """Scores in input order and the report of this call (already :meth:`_record` ed)."""

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        return self._score_with_report(query, documents, progress)[0]

    def rank_with_report(
        self,
        query: str,
        docs: Iterable[DocumentLike],
        top_k: int | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> tuple[RankedResults, ReportT]:
        """Like :meth:`rank`, plus the report of this call (calls, tokens and what the subclass counts)."""
        query = check_query(query)
        top_k = check_top_k(top_k)
        documents = to_documents(docs)
        if not documents:
            return RankedResults(query=query, results=(), model=self.name), self.report_type(queries=1)
        scores, report = self._score_with_report(model_text(query), documents, progress)
        return RankedResults.from_scores(query, documents, scores, model=self.name, top_k=top_k), report

    def totals(self) -> ReportT:
        """Every report since this instance was made, summed (thread-safe)."""
        with self._totals_lock:
            return self._totals
