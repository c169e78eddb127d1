"""The HTTP side of :class:`~rankwise.llm.OpenAIChatClient`: connection pools, retries, errors naming the fix.

Kept apart from the chat API (payloads, caching, streamed deltas) in :mod:`rankwise.llm.openai`, so the retry
policy is written once and the sync, async and streaming calls cannot drift apart. The policy: connection
errors, timeouts, and the statuses in :data:`RETRY_STATUS` are retried ``max_retries`` times, waiting
``backoff * 2**attempt`` seconds (at least a server's ``Retry-After``, at most ``max_backoff``); any other
status >= 400 raises at once.

Example:
    >>> normalize_base_url("http://127.0.0.1:8000/")
    'http://127.0.0.1:8000/v1'
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from rankwise.errors import InvalidInputError
from rankwise.llm.base import LLMError, LLMResponseError
from rankwise.llm.parsing import parse_stream_chunk

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""Statuses that mean "try again later" (overload, rate limit, a gateway hiccup), not "this is wrong"."""


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes; append ``/v1`` when the URL has no path (``http://host:port``)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError(f"base_url must be a non-empty URL string, got {url!r}.")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(
            f"base_url {url!r} is not an http(s) URL; pass e.g. 'http://127.0.0.1:8000/v1' or set OPENAI_BASE_URL."
        )
    return url + "/v1" if parts.path in ("", "/") else url


class RetryingHTTP:
    """Mixin for a client that talks to one OpenAI-compatible API root over httpx, with retries.

    The client's constructor sets the attributes declared below; :meth:`close` releases the pool.
    """

    _httpx: Any
    base_url: str
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float
    concurrency: int
    _headers: dict[str, str]
    _client: Any
    _lock: threading.RLock
    _model: str | None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _http(self) -> Any:
        """The shared sync connection pool, made on first use (thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    limits = self._httpx.Limits(max_connections=max(self.concurrency, 1) * 2)
                    self._client = self._httpx.Client(
                        timeout=self.timeout, headers=self._headers, limits=limits
                    )
        return self._client

    def _async_client(self) -> Any:
        # A fresh pool per call: an httpx.AsyncClient is bound to the event loop it was first used on.
        limits = self._httpx.Limits(max_connections=max(self.concurrency, 1) * 2)
        return self._httpx.AsyncClient(timeout=self.timeout, headers=self._headers, limits=limits)

    def _delay(self, attempt: int, response: Any = None) -> float:
        delay = self.backoff * (2**attempt)
        if response is not None:
            try:
                delay = max(delay, float(response.headers.get("retry-after", 0)))
            except ValueError:
                pass
        return min(delay, self.max_backoff)

    def _failure(self, url: str, attempts: int, detail: str) -> LLMError:
        return LLMError(
            f"LLM request to {url} failed after {attempts} attempt(s): {detail}. Check that the server is running "
            f"and that base_url ({self.base_url}; env OPENAI_BASE_URL) is right, or raise timeout= / max_retries=."
        )

    def _check_status(self, url: str, response: Any) -> None:
        if response.status_code < 400:
            return
        body = response.text[:300]
        hint = {
            401: "check api_key / OPENAI_API_KEY",
            403: "check api_key / OPENAI_API_KEY and the key's permissions",
            404: f"check base_url (it usually ends in /v1) and the model name {self._model!r}",
        }.get(response.status_code, "check the request parameters")
        raise LLMError(
            f"LLM request to {url} was refused with HTTP {response.status_code}: {body!r}; {hint}."
        )

    def _transport_detail(self, exc: Exception) -> str:
        if isinstance(exc, self._httpx.TimeoutException):
            return f"timed out after {self.timeout:g} s ({type(exc).__name__})"
        return f"could not connect ({type(exc).__name__}: {exc})"

    def _should_retry(self, url: str, attempt: int, response: Any, error: Exception | None) -> bool:
        """Judge attempt number ``attempt`` (from 0), which got ``response`` or failed with ``error``.

        False: ``response`` is the answer. True: wait and try again. Raises :class:`LLMError` when the server
        refused the request, or when this was the last attempt allowed.
        """
        if error is not None:
            detail = self._transport_detail(error)
        elif response.status_code in RETRY_STATUS:
            detail = f"HTTP {response.status_code} {response.text[:200]!r}"
        else:
            self._check_status(url, response)
            return False
        if attempt >= self.max_retries:
            raise self._failure(url, self.max_retries + 1, detail)
        return True

    def _request_with_retries(self, method: str, url: str, payload: dict[str, Any] | None) -> Any:
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                response = self._http().request(method, url, json=payload)
            except self._httpx.TransportError as exc:  # timeouts included (a TransportError subclass)
                error = exc
            if not self._should_retry(url, attempt, response, error):
                return response
            time.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")

    async def _arequest_with_retries(self, client: Any, url: str, payload: dict[str, Any]) -> Any:
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                response = await client.post(url, json=payload)
            except self._httpx.TransportError as exc:
                error = exc
            if not self._should_retry(url, attempt, response, error):
                return response
            await asyncio.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")

    def _stream_with_retries(self, payload: dict[str, Any]) -> Iterator[str]:
        """Text deltas of a server-sent-event stream; failures before the first delta are retried."""
        started = False
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                with self._http().stream("POST", self.url, json=payload) as response:
                    if response.status_code >= 400:
                        response.read()  # the error body goes into the message
                    if response.status_code not in RETRY_STATUS:
                        self._check_status(self.url, response)
                        for delta in self._iter_sse(response):
                            started = True
                            yield delta
                        return
            except self._httpx.TransportError as exc:
                if started:  # part of the reply was already yielded: a retry would repeat it
                    broke = "stalled" if isinstance(exc, self._httpx.TimeoutException) else "broke off"
                    detail = self._transport_detail(exc)
                    raise LLMError(f"the stream from {self.url} {broke} midway: {detail}.") from exc
                error = exc
            self._should_retry(self.url, attempt, response, error)
            time.sleep(self._delay(attempt, response))  # headers outlive the closed stream

    def _iter_sse(self, response: Any) -> Iterator[str]:
        for line in response.iter_lines():
            line = line.strip()
            if not line or line.startswith(":") or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise LLMResponseError(
                    f"{self.url} streamed an event that is not JSON: {data[:120]!r}."
                ) from exc
            delta = parse_stream_chunk(chunk, url=self.url)
            if delta:
                yield delta

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
