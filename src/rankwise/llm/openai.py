"""A chat client for any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp's server, TGI, LiteLLM...

Plain httpx (no ``openai`` package). Configuration comes from the arguments, else the environment:

==================  ======================  ===============================================
argument            environment variable    default
==================  ======================  ===============================================
``base_url``        ``OPENAI_BASE_URL``     ``https://api.openai.com/v1``
``api_key``         ``OPENAI_API_KEY``      none (no ``Authorization`` header is sent)
``model``           ``RANKWISE_LLM_MODEL``  the first model the server lists at ``/models``
==================  ======================  ===============================================

A ``base_url`` without a path (``http://127.0.0.1:8000``) gets ``default_path`` (``/v1``) appended; any other path
is used as given.

Failures: connection errors, timeouts, HTTP 429 and 5xx are retried ``max_retries`` times with exponential
backoff (``backoff * 2**attempt`` seconds, capped at ``max_backoff``; a server's ``Retry-After`` is honoured
up to the cap), then raise :class:`~rankwise.llm.LLMError` naming the URL and the fix. A reply that is not a
chat completion (invalid JSON, no ``choices``) raises :class:`~rankwise.llm.LLMResponseError` at once. Nothing
waits longer than ``timeout`` per attempt.

Example:
    >>> from rankwise.llm import OpenAIChatClient
    >>> client = OpenAIChatClient(model="smollm2", base_url="http://127.0.0.1:8080/v1")   # doctest: +SKIP
    >>> chat = [{"role": "user", "content": "Is the sky blue? yes or no"}]           # doctest: +SKIP
    >>> client.chat(chat, max_tokens=1, logprobs=5).first_token_logprobs()           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from rankwise._http import HTTPError, RetryingHTTP
from rankwise.errors import InvalidInputError
from rankwise.llm.base import (
    ChatClient,
    ChatMessage,
    ChatResult,
    LLMError,
    LLMResponseError,
    check_concurrency,
    check_generation,
    check_messages,
    gather_bounded,
    request_options,
)
from rankwise.llm.cache import DiskCache, as_cache, cache_key, cached, remember
from rankwise.llm.parsing import parse_chat_completion, parse_stream_chunk

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def normalize_base_url(url: str, default_path: str = "/v1") -> str:
    """Strip trailing slashes; append ``default_path`` when the URL has no path (``http://host:port``).

    Example:
        >>> normalize_base_url("http://127.0.0.1:8000/"), normalize_base_url("http://h:1/api/", default_path="")
        ('http://127.0.0.1:8000/v1', 'http://h:1/api')
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError(f"base_url must be a non-empty URL string, got {url!r}.")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(
            f"base_url {url!r} is not an http(s) URL; pass e.g. 'http://127.0.0.1:8000/v1' or set OPENAI_BASE_URL."
        )
    return url + default_path.rstrip("/") if parts.path in ("", "/") else url


class OpenAIChatClient(ChatClient):
    """Chat completions over HTTP from an OpenAI-compatible server.

    Args:
        model: the model name sent with each request (env ``RANKWISE_LLM_MODEL``; else asked from
        ``/models``). base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (env ``OPENAI_BASE_URL``).
        api_key: sent as ``Authorization: Bearer ...`` (env ``OPENAI_API_KEY``); local servers need none.
        timeout: seconds per attempt (connect, read and write each). max_retries: extra attempts after the
        first on connection errors, timeouts, 429 and 5xx. backoff: the first retry's delay in seconds; each
        next one doubles (capped at ``max_backoff``). cache: a :class:`DiskCache` or a folder path;
        deterministic calls (temperature 0 or a ``seed``) are served
            from it when present.
        concurrency: the most requests in flight in :meth:`batch` / :meth:`abatch`.
        max_backoff: the longest single wait between attempts.
        headers: extra HTTP headers (e.g. for a proxy).
        default_path: appended to a ``base_url`` that has no path (``http://host:port`` -> ``.../v1``); ``""`` uses
            the URL as given.

    Logprobs: ``chat(..., logprobs=N)`` sends ``"logprobs": true, "top_logprobs": N`` (N >= 1; llama.cpp's
    server returns nothing with ``logprobs`` alone).
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        cache: DiskCache | str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        *,
        max_backoff: float = 20.0,
        headers: Mapping[str, str] | None = None,
        default_path: str = "/v1",
    ) -> None:
        self.base_url = normalize_base_url(
            base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL, default_path
        )
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._model = model or os.environ.get("RANKWISE_LLM_MODEL") or None
        self.cache = as_cache(cache)
        self.concurrency = check_concurrency(concurrency)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.api_key:
            sent["Authorization"] = f"Bearer {self.api_key}"
        self._transport = RetryingHTTP(
            timeout=timeout, max_retries=max_retries, backoff=backoff, max_backoff=max_backoff, headers=sent,
            max_connections=self.concurrency * 2, extra="llm", purpose="The OpenAI-compatible LLM client",
        )
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def _headers(self) -> dict[str, str]:
        return self._transport.headers

    # -- transport: rankwise._http, its HTTPError turned into LLMError with this client's advice
    # ------------------------------------------------------------------------------------------
    def _llm_error(self, exc: HTTPError) -> LLMError:
        if exc.kind == "refused":
            hint = {
                401: "check api_key / OPENAI_API_KEY",
                403: "check api_key / OPENAI_API_KEY and the key's permissions",
                404: f"check base_url (it usually ends in /v1) and the model name {self._model!r}",
            }.get(exc.status or 0, "check the request parameters")
            return LLMError(f"LLM {exc.summary}; {hint}.")
        if exc.kind == "broken":
            return LLMError(f"{exc.summary}.")
        return LLMError(
            f"LLM {exc.summary}. Check that the server is running and that base_url ({self.base_url}; env "
            "OPENAI_BASE_URL) is right, or raise timeout= / max_retries=."
        )

    def _request(self, method: str, url: str, payload: dict[str, Any] | None) -> Any:
        try:
            return self._transport.request(method, url, payload)
        except HTTPError as exc:
            raise self._llm_error(exc) from exc

    async def _arequest(self, client: Any, payload: dict[str, Any]) -> Any:
        try:
            return await self._transport.arequest(client, "POST", self.url, payload)
        except HTTPError as exc:
            raise self._llm_error(exc) from exc

    def _stream(self, payload: dict[str, Any]) -> Iterator[str]:
        """Text deltas of the streamed completion; the stream ends at ``[DONE]``."""
        try:
            with contextlib.closing(self._transport.stream_events(self.url, payload)) as events:
                for data in events:
                    if data == "[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
                    except ValueError as exc:
                        message = f"{self.url} streamed an event that is not JSON: {data[:120]!r}."
                        raise LLMResponseError(message) from exc
                    delta = parse_stream_chunk(chunk, url=self.url)
                    if delta:
                        yield delta
        except HTTPError as exc:
            raise self._llm_error(exc) from exc

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._transport.close()

    # -- configuration
    # ------------------------------------------------------------------------------------------
    @property
    def model(self) -> str:  # type: ignore[override]
        """The model name; resolved once from the server's ``/models`` list when none was configured."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._discover_model()
        return self._model

    def _discover_model(self) -> str:
        url = f"{self.base_url}/models"
        response = self._request("GET", url, None)
        try:
            data = response.json()["data"]
            return str(data[0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"no model was given and {url} did not list one ({response.text[:120]!r}); pass model=... or set "
                "RANKWISE_LLM_MODEL."
            ) from exc

    # -- requests
    # -------------------------------------------------------------------------------------------------
    def _payload(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        logprobs: int | None,
        stop: Sequence[str] | None,
        params: Mapping[str, Any],
        stream: bool = False,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            **request_options(logprobs, stop),
        }
        if stream:
            payload["stream"] = True
        payload.update(params)
        return payload

    def _decode(self, response: Any) -> ChatResult:
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMResponseError(
                f"{self.url} answered HTTP {response.status_code} with a body that is not JSON "
                f"({response.text[:120]!r}); is base_url an OpenAI-compatible API root (usually ending in /v1)?"
            ) from exc
        return parse_chat_completion(data, url=self.url, default_model=self.model)

    # -- public API
    # -----------------------------------------------------------------------------------------------
    def _prepare(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float,
        logprobs: int | None,
        stop: Sequence[str] | None,
        params: Mapping[str, Any],
    ) -> tuple[dict[str, Any], str | None]:
        msgs = check_messages(messages)
        check_generation(max_tokens, temperature, logprobs)
        payload = self._payload(msgs, max_tokens, temperature, logprobs, stop, params)
        request = {k: v for k, v in payload.items() if k != "messages"}
        return payload, cache_key(self.cache, temperature, params, self.model, msgs, request)

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
        """One chat completion (see the class docstring for retries and errors)."""
        payload, key = self._prepare(messages, max_tokens, temperature, logprobs, stop, params)
        if (hit := cached(self.cache, key)) is not None:
            return hit
        response = self._request("POST", self.url, payload)
        return remember(self.cache, key, self._decode(response))

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
        """Async :meth:`chat` on its own connection (use :meth:`abatch` for many)."""
        async with self._transport.async_client() as client:
            return await self._achat_on(client, messages, max_tokens, temperature, logprobs, stop, params)

    async def _achat_on(
        self,
        client: Any,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        temperature: float,
        logprobs: int | None,
        stop: Sequence[str] | None,
        params: Mapping[str, Any],
    ) -> ChatResult:
        if self._model is None:  # discovery is a blocking call: keep it off the event loop
            await asyncio.to_thread(lambda: self.model)
        payload, key = self._prepare(messages, max_tokens, temperature, logprobs, stop, params)
        if (hit := cached(self.cache, key)) is not None:
            return hit
        response = await self._arequest(client, payload)
        return remember(self.cache, key, self._decode(response))

    async def abatch(
        self,
        list_of_messages: Sequence[Sequence[ChatMessage]],
        *,
        concurrency: int | None = None,
        **kwargs: Any,
    ) -> list[ChatResult]:
        """Many chats on one async connection pool, at most ``concurrency`` in flight, results in input order."""
        width = check_concurrency(self.concurrency if concurrency is None else concurrency)
        max_tokens = kwargs.pop("max_tokens", 256)
        temperature = kwargs.pop("temperature", 0.0)
        logprobs = kwargs.pop("logprobs", None)
        stop = kwargs.pop("stop", None)
        async with self._transport.async_client() as client:
            return await gather_bounded(
                width,
                lambda m: self._achat_on(client, m, max_tokens, temperature, logprobs, stop, kwargs),
                list_of_messages,
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
        """Yield text deltas from a server-sent-event stream (``"stream": true``).

        Connection failures before the first byte are retried like :meth:`chat`; a stream cut midway raises.
        """
        msgs = check_messages(messages)
        check_generation(max_tokens, temperature, None)
        payload = self._payload(msgs, max_tokens, temperature, None, stop, params, stream=True)
        yield from self._stream(payload)

    def __repr__(self) -> str:
        return f"OpenAIChatClient(model={self._model!r}, base_url={self.base_url!r})"
