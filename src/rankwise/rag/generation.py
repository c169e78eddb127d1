"""Answer generation for RAG: a prompt that allows only the numbered passages, and citations mapped back to documents.

The model sees the passages as ``[1] ...``, ``[2] ...`` and is told to answer only from them and to cite each claim as
``[n]``. :func:`parse_citations` reads the citations back (``[2]``, ``[1, 3]``, ``[2-4]``, ``[Passage 2]``) and maps
each number to the passage and document it points at; numbers outside the context are reported separately, never
mapped to anything.

The template is data (kind ``"rag"``: placeholders ``{question}``, ``{passages}``, optional ``{num}``; item section
``{number}``, ``{passage}``); pass ``prompt=`` (a :class:`~rankwise.llm.PromptTemplate` or a ``.txt`` file in the
format :mod:`rankwise.llm.prompts` describes) to change it.

Example:
    >>> from rankwise.retrieval.passages import Passage
    >>> ctx = [Passage("a#0", "a", 0, "BM25 ranks by term frequency."), Passage("b#1", "b", 1, "FAISS stores vectors.")]
    >>> found, invalid = parse_citations("BM25 uses term frequency [1]; vectors live in FAISS [2, 5].", ctx)
    >>> [(c.number, c.doc_id) for c in found], invalid
    ([(1, 'a'), (2, 'b')], [5])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rankwise.documents import document_text, model_text
from rankwise.errors import InvalidInputError, RankwiseError
from rankwise.llm.prompts import PromptTemplate, load_prompt
from rankwise.types import Document

if TYPE_CHECKING:
    from rankwise.llm.base import ChatClient, ChatMessage

RAG_PROMPT = "rag"  # the bundled template src/rankwise/prompts/rag.txt (override with a path or RANKWISE_PROMPT_DIR)

_CITATION = re.compile(
    r"\[\s*(?:(?:passages?|sources?|docs?|documents?|refs?)\s*)?(\d+(?:\s*(?:,|;|-|–|and)\s*\d+)*)\s*\]",
    re.IGNORECASE,
)
_MAX_RANGE = 50


class GenerationError(RankwiseError):
    """The generator failed for a reason the LLM client did not already explain."""


class ContextLike(Protocol):
    """What a citation can point at: a passage (``id``, ``doc_id``) -- a retrieval Passage fits."""

    id: str
    doc_id: str


@dataclass(frozen=True)
class Citation:
    """One ``[n]`` in an answer that points at a passage in the context.

    Attributes:
        number: n, the passage's 1-based number in the prompt.
        passage_id, doc_id: what it points at.
        start, end: the span of the bracket in the answer (``answer[start:end]`` is e.g. ``"[1, 2]"``).
    """

    number: int
    passage_id: str
    doc_id: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "passage_id": self.passage_id, "doc_id": self.doc_id,
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Generation:
    """An answer and its citations.

    Attributes:
        answer: the model's text.
        citations: every valid citation in order of appearance (a number cited twice appears twice).
        invalid_citations: cited numbers that match no passage in the context (hallucinated references).
        model: the model that answered; usage and finish_reason as the client reported them.
    """

    answer: str
    citations: tuple[Citation, ...] = ()
    invalid_citations: tuple[int, ...] = ()
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None

    @property
    def cited_doc_ids(self) -> list[str]:
        """The documents cited, each once, in order of first citation."""
        return list(dict.fromkeys(c.doc_id for c in self.citations))


def parse_citations(answer: str, context: Sequence[ContextLike]) -> tuple[list[Citation], list[int]]:
    """Find the ``[n]`` citations in ``answer`` and map them to ``context`` (``context[n - 1]``).

    Returns:
        (valid citations in order of appearance, invalid numbers in order of appearance). An answer without
        citations gives two empty lists.
    """
    found: list[Citation] = []
    invalid: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in _numbers(match.group(1)):
            if 1 <= number <= len(context):
                target = context[number - 1]
                found.append(Citation(number, str(target.id), str(target.doc_id), match.start(), match.end()))
            else:
                invalid.append(number)
    return found, invalid


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2 and 0 <= int(bounds[1]) - int(bounds[0]) < _MAX_RANGE:
            out.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        else:
            out.extend(int(b) for b in bounds if b)
    return out


def passage_text(passage: Any) -> str:
    """How a passage is shown in the prompt: the library's one text rule (:func:`rankwise.documents.document_text`),
    its title (when it has one) on the first line, then its text."""
    text = getattr(passage, "text", None)
    title = getattr(passage, "title", None)
    if not isinstance(text, str):  # anything else is shown as its string
        return model_text(str(passage))
    return document_text(Document(text, title=title if isinstance(title, str) else None))


class Generator:
    """Writes an answer from numbered passages with an LLM chat client.

    Args:
        client: a :class:`~rankwise.llm.ChatClient`, or what :func:`rankwise.llm.make_client` takes (None = the
            bundled SmolLM2 GGUF through llama.cpp; an ``http(s)://`` URL = an OpenAI-compatible server; a ``.gguf``
            path; a model name).
        prompt: a ``"rag"`` template or a path to one (default: :data:`RAG_PROMPT`).
        max_tokens: the answer's token limit.
        temperature: 0 = greedy (reproducible).
        client_options: passed to :func:`~rankwise.llm.make_client` (``base_url``, ``api_key``, ``model``...).

    Example:
        >>> gen = Generator("http://127.0.0.1:8080/v1", model="smollm2")           # doctest: +SKIP
        >>> gen.generate("What ranks by term frequency?", passages).citations      # doctest: +SKIP
    """

    def __init__(
        self,
        client: ChatClient | str | None = None,
        *,
        prompt: PromptTemplate | str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        **client_options: Any,
    ) -> None:
        from rankwise.llm.factory import make_client

        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be an int >= 1, got {max_tokens!r}.")
        self.client = make_client(client, **client_options)
        if prompt is None:
            self.prompt = load_prompt(RAG_PROMPT, kind="rag")
        else:
            self.prompt = load_prompt(prompt, kind="rag")
        self.max_tokens, self.temperature = max_tokens, temperature

    @property
    def model(self) -> str:
        return str(getattr(self.client, "model", ""))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the client counts them (its tokenizer, or a word-based estimate)."""
        return int(self.client.count_tokens(text))

    def messages(self, question: str, passages: Sequence[Any]) -> list[ChatMessage]:
        """The chat the model receives: the numbered passages and the question."""
        if not passages:
            raise InvalidInputError(
                f"no passages to answer {question[:60]!r} from; retrieval found nothing (check the index and query)."
            )
        items = "\n\n".join(
            self.prompt.render_item(number=i, passage=passage_text(p)) for i, p in enumerate(passages, start=1)
        )
        values = {"question": question, "passages": items, "num": len(passages)}
        return self.prompt.render(**{k: v for k, v in values.items() if k in self.prompt.placeholders})

    def generate(
        self,
        question: str,
        passages: Sequence[ContextLike],
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Generation:
        """Answer ``question`` from ``passages`` (numbered 1..n in order) and parse the answer's citations.

        Args:
            on_token: when given, the answer is streamed and each text piece is passed to it as it arrives.

        Raises:
            LLMError: the endpoint is down, timed out after its retries, or answered garbage (from the client).
            GenerationError: the client failed in another way (e.g. a prompt longer than a local model's context).
        """
        messages = self.messages(question, passages)
        options: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        try:
            if on_token is None:
                result = self.client.chat(messages, **options)
                text, usage, finish = result.text, dict(result.usage), result.finish_reason
            else:
                pieces = []
                for piece in self.client.stream(messages, **options):
                    pieces.append(piece)
                    on_token(piece)
                text, usage, finish = "".join(pieces), {}, None
        except RankwiseError:
            raise
        except Exception as exc:
            raise GenerationError(
                f"the LLM ({self.model or type(self.client).__name__}) failed to answer: {type(exc).__name__}: {exc}. "
                "If the prompt is too long for the model, lower the context budget (context_tokens / "
                "--context-tokens) or top_n."
            ) from exc
        if not isinstance(text, str):
            raise GenerationError(f"the LLM returned {type(text).__name__} instead of text: {str(text)[:80]!r}.")
        citations, invalid = parse_citations(text, passages)
        return Generation(text, tuple(citations), tuple(invalid), self.model, usage, finish)

    def __repr__(self) -> str:
        return f"Generator(client={self.client!r}, max_tokens={self.max_tokens})"
