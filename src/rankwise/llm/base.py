"""The chat-client interface every LLM backend implements, and the values it returns.

A backend writes :meth:`ChatClient.chat` (one blocking call). ``achat``, ``stream``, ``batch`` and ``abatch``
have working defaults built on it (a thread per call, bounded by ``concurrency``); backends override them when
they can do better (the HTTP client streams server-sent events and runs ``abatch`` on one async connection
pool).

Example:
    >>> from rankwise.llm import ChatResult
    >>> ChatResult(text="yes", model="m").usage
    {'prompt_tokens': 0, 'completion_tokens': 0}
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rankwise.errors import InvalidInputError, RankwiseError

if TYPE_CHECKING:  # typing.Self is 3.11+ (rankwise supports 3.10); type checkers ship typing_extensions
    from typing_extensions import Self

ChatMessage = dict[str, str]
"""One chat turn: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

_ROLES = ("system", "user", "assistant")
_T = TypeVar("_T")
_R = TypeVar("_R")


class LLMError(RankwiseError):
    """An LLM call failed: the server is down, timed out, refused the request, or answered something unusable.

    The message names the URL or model and says how to fix it.
    """


class LLMResponseError(LLMError):
    """The server answered, but not with a usable chat completion (invalid JSON, missing fields)."""


@dataclass(frozen=True)
class TokenLogprob:
    """The log-probability of one generated token and the most likely alternatives at that position.

    ``top_logprobs`` maps token text -> natural-log probability (the chosen token is usually among them).
    """

    token: str
    logprob: float
    top_logprobs: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top_logprobs": dict(self.top_logprobs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenLogprob:
        return cls(str(data["token"]), float(data["logprob"]), dict(data.get("top_logprobs") or {}))


@dataclass(frozen=True)
class ChatResult:
    """What one chat call returned.

    Attributes:
        text: the generated text (the assistant's reply).
        logprobs: one :class:`TokenLogprob` per generated token when logprobs were asked for and the backend
        gives
            them, else None.
        usage: ``{"prompt_tokens": int, "completion_tokens": int}`` as the backend counted them.
        model: the model that answered (as the backend names it). cached: True when the result came from a
        :class:`~rankwise.llm.DiskCache` instead of the model. finish_reason: ``"stop"``, ``"length"`` or
        whatever the backend reported (None if it said nothing).
    """

    text: str
    logprobs: list[TokenLogprob] | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    model: str = ""
    cached: bool = False
    finish_reason: str | None = None

    def first_token_logprobs(self) -> dict[str, float]:
        """The top alternatives (token -> logprob) at the first generated position, chosen token included.

        Empty when the backend returned no logprobs.
        """
        if not self.logprobs:
            return {}
        first = self.logprobs[0]
        out = dict(first.top_logprobs)
        out.setdefault(first.token, first.logprob)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "logprobs": None if self.logprobs is None else [t.to_dict() for t in self.logprobs],
            "usage": dict(self.usage),
            "model": self.model,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, cached: bool = False) -> ChatResult:
        lp = data.get("logprobs")
        return cls(
            text=str(data["text"]),
            logprobs=None if lp is None else [TokenLogprob.from_dict(t) for t in lp],
            usage={k: int(v) for k, v in (data.get("usage") or {}).items()},
            model=str(data.get("model", "")),
            cached=cached,
            finish_reason=data.get("finish_reason"),
        )


def check_messages(messages: Any) -> list[ChatMessage]:
    """Validate a chat: a non-empty list of ``{"role", "content"}`` dicts with known roles and string content."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError(
            f"messages must be a non-empty list of {{'role', 'content'}} dicts, got {type(messages).__name__} "
            f"{str(messages)[:60]!r}; e.g. [{{'role': 'user', 'content': 'Hello'}}]."
        )
    out: list[ChatMessage] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise InvalidInputError(
                f"message {i} must be a dict with role in {_ROLES} and a str content, got {str(m)[:80]!r}."
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def check_generation(max_tokens: Any, temperature: Any, logprobs: Any) -> None:
    """Validate the common generation parameters (one wording for every backend)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidInputError(f"max_tokens must be an int >= 1, got {max_tokens!r}.")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise InvalidInputError(f"temperature must be a finite number >= 0, got {temperature!r}.")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0):
        raise InvalidInputError(
            f"logprobs must be None or the number of top alternatives per token (an int >= 0), got {logprobs!r}."
        )


def request_options(logprobs: int | None, stop: Sequence[str] | None) -> dict[str, Any]:
    """The ``stop``, ``logprobs`` and ``top_logprobs`` entries of an OpenAI-style chat request (when set).

    ``top_logprobs`` is at least 1 because llama.cpp returns nothing for ``"logprobs": true`` alone.

    Example:
        >>> request_options(0, "Question:")
        {'stop': ['Question:'], 'logprobs': True, 'top_logprobs': 1}
    """
    options: dict[str, Any] = {}
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if logprobs is not None:
        options["logprobs"] = True
        options["top_logprobs"] = max(1, logprobs)
    return options


def check_concurrency(concurrency: Any) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInputError(f"concurrency must be an int >= 1, got {concurrency!r}.")
    return concurrency


async def gather_bounded(
    width: int, call: Callable[[_T], Awaitable[_R]], items: Iterable[_T]
) -> list[_R]:
    """``await call(item)`` for every item, at most ``width`` in flight at once; results in input order.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> asyncio.run(gather_bounded(2, double, [1, 2, 3]))
        [2, 4, 6]
    """
    gate = asyncio.Semaphore(width)

    async def one(item: _T) -> _R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


class ChatClient(ABC):
    """A chat model behind one small interface: ``chat``, ``achat``, ``stream``, ``batch``, ``abatch``.

    Every method takes the same generation parameters: ``max_tokens``, ``temperature`` (0 = greedy),
    ``logprobs`` (None, or the number of top alternatives to return per generated token), ``stop`` (strings
    that end the reply) and backend-specific ``**params`` (``seed``, ``top_p``...). Implementations are safe
    to call from several threads.

    Example:
        >>> from rankwise.llm import LlamaCppChatClient          # doctest: +SKIP
        >>> client = LlamaCppChatClient()       # the bundled SmolLM2-135M GGUF   # doctest: +SKIP
        >>> client.chat([{"role": "user", "content": "Say hi"}], max_tokens=8).text  # doctest: +SKIP
        'Hi!'
    """

    model: str = ""
    concurrency: int = 1

    @abstractmethod
    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        **params: Any,
    ) -> ChatResult:
        """Generate one reply to ``messages``."""

    async def achat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        **params: Any,
    ) -> ChatResult:
        """Async :meth:`chat` (the default runs ``chat`` in a worker thread)."""
        return await asyncio.to_thread(
            self.chat,
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            logprobs=logprobs,
            stop=stop,
            **params,
        )

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **params: Any,
    ) -> Iterator[str]:
        """Yield the reply as text pieces while it is generated (the default yields the whole reply at once)."""
        yield self.chat(messages, max_tokens=max_tokens, temperature=temperature, stop=stop, **params).text

    def batch(
        self,
        list_of_messages: Sequence[Sequence[ChatMessage]],
        *,
        concurrency: int | None = None,
        **kwargs: Any,
    ) -> list[ChatResult]:
        """Run many chats, at most ``concurrency`` at a time (default: the client's), results in input order.

        ``kwargs`` are :meth:`chat`'s generation parameters, the same for every chat. The first failure is
        raised after the calls already running have finished.
        """
        width = check_concurrency(self.concurrency if concurrency is None else concurrency)
        items = list(list_of_messages)
        if not items:
            return []
        if width == 1 or len(items) == 1:
            return [self.chat(m, **kwargs) for m in items]
        with ThreadPoolExecutor(
            max_workers=min(width, len(items)), thread_name_prefix="rankwise-llm"
        ) as pool:
            return list(pool.map(lambda m: self.chat(m, **kwargs), items))

    async def abatch(
        self,
        list_of_messages: Sequence[Sequence[ChatMessage]],
        *,
        concurrency: int | None = None,
        **kwargs: Any,
    ) -> list[ChatResult]:
        """Async :meth:`batch`: at most ``concurrency`` calls in flight, results in input order."""
        width = check_concurrency(self.concurrency if concurrency is None else concurrency)
        return await gather_bounded(width, lambda m: self.achat(m, **kwargs), list_of_messages)

    def count_tokens(self, text: str) -> int:
        """Roughly how many tokens ``text`` is for this model (default: 4/3 per whitespace-separated word)."""
        return math.ceil(len(text.split()) * 4 / 3)

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to at most about ``max_tokens`` tokens (default: by words, 3 words per 4 tokens)."""
        words = text.split()
        keep = max(1, (max_tokens * 3) // 4)
        return text if len(words) <= keep else " ".join(words[:keep])

    def close(self) -> None:
        """Release connections or model memory (optional; the client is unusable afterwards for some backends)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
