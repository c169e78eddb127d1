"""One HTTP client with retries for every part of rankwise that talks to a server (the OpenAI-compatible LLM client;
remote re-rankers next), so the retry policy is written once and sync, async and streamed calls cannot drift apart.

The policy: connection errors, timeouts and the statuses in :data:`RETRY_STATUS` are retried ``max_retries`` times,
waiting ``backoff * 2**attempt`` seconds (at least a server's ``Retry-After``, at most ``max_backoff``); any other
status >= 400 fails at once. Every failure is an :class:`HTTPError` carrying the URL, the status, a body excerpt and
the attempts made: a caller turns it into its own error with its own advice (the LLM client raises ``LLMError``).
URLs are used as given; what a base URL must end with (``/v1``...) is the caller's rule.

Example:
    >>> error = HTTPError("refused", "http://h/x", status=401, body="bad key")
    >>> str(error), error.status
    ("request to http://h/x was refused with HTTP 401: 'bad key'; check the URL, the credentials and the request.", 401)
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from rankwise.errors import InvalidInputError, RankwiseError, require

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""Statuses that mean "try again later" (overload, rate limit, a gateway hiccup), not "this is wrong"."""
BODY_EXCERPT = 300
"""How much of an error response's body an :class:`HTTPError` keeps."""

FailureKind = Literal["refused", "failed", "broken"]


class HTTPError(RankwiseError):
    """An HTTP call that did not succeed.

    ``kind``: ``"refused"`` (the server answered with a status that retrying cannot fix, e.g. 401 or 404),
    ``"failed"`` (no usable answer after every attempt: connection errors, timeouts, 429/5xx) or ``"broken"`` (a
    streamed answer cut off midway). ``status`` is None when no answer came; ``summary`` is the message without the
    advice, for callers that add their own.
    """

    def __init__(
        self,
        kind: FailureKind,
        url: str,
        *,
        status: int | None = None,
        body: str = "",
        attempts: int = 1,
        detail: str = "",
    ) -> None:
        self.kind, self.url, self.status, self.body, self.attempts = kind, url, status, body, attempts
        if kind == "refused":
            self.summary = f"request to {url} was refused with HTTP {status}: {body!r}"
            advice = "check the URL, the credentials and the request"
        elif kind == "failed":
            self.summary = f"request to {url} failed after {attempts} attempt(s): {detail}"
            advice = "check that the server is running and reachable, or allow a longer timeout or more retries"
        else:
            self.summary = f"the stream from {url} {detail}"
            advice = "try again; a stream cut midway is not retried, as that would repeat what was already received"
        super().__init__(f"{self.summary}; {advice}.")


class RetryingHTTP:
    """Connection pools and retries over httpx for one client (thread-safe; the sync pool is made on first use).

    Args:
        timeout: seconds per attempt (connect, read and write each). max_retries: extra attempts after the first.
        backoff: the first retry's delay in seconds, doubled each time up to ``max_backoff``.
        headers: sent with every request. max_connections: the pool's size.
        extra, purpose: name the ``rankwise[extra]`` that installs httpx and what needs it, for the error without it.
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 16,
        extra: str = "llm",
        purpose: str = "The HTTP client",
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidInputError(f"timeout must be a number of seconds > 0, got {timeout!r}.")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInputError(f"max_retries must be an int >= 0, got {max_retries!r}.")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
            raise InvalidInputError(f"backoff must be a number of seconds >= 0, got {backoff!r}.")
        if isinstance(max_backoff, bool) or not isinstance(max_backoff, (int, float)) or max_backoff < 0:
            raise InvalidInputError(f"max_backoff must be a number of seconds >= 0, got {max_backoff!r}.")
        self._httpx = require("httpx", extra, purpose)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.headers = dict(headers or {})
        self.max_connections = max(int(max_connections), 1)
        self._client: Any = None
        self._lock = threading.RLock()

    # -- pools
    def _http(self) -> Any:
        """The shared sync connection pool, made on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    limits = self._httpx.Limits(max_connections=self.max_connections)
                    self._client = self._httpx.Client(timeout=self.timeout, headers=self.headers, limits=limits)
        return self._client

    def async_client(self) -> Any:
        """A fresh async pool (use it as ``async with``): an httpx.AsyncClient is bound to the loop it first ran on."""
        limits = self._httpx.Limits(max_connections=self.max_connections)
        return self._httpx.AsyncClient(timeout=self.timeout, headers=self.headers, limits=limits)

    def close(self) -> None:
        """Close the sync connection pool (a later request opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- the policy
    def delay(self, attempt: int, response: Any = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``: exponential, at least ``Retry-After``, capped."""
        delay = self.backoff * (2**attempt)
        if response is not None:
            try:
                delay = max(delay, float(response.headers.get("retry-after", 0)))
            except ValueError:  # an HTTP date instead of seconds: keep the exponential delay
                pass
        return min(delay, self.max_backoff)

    def _transport_detail(self, exc: Exception) -> str:
        if isinstance(exc, self._httpx.TimeoutException):
            return f"timed out after {self.timeout:g} s ({type(exc).__name__})"
        return f"could not connect ({type(exc).__name__}: {exc})"

    def _should_retry(self, url: str, attempt: int, response: Any, error: Exception | None) -> bool:
        """Judge attempt number ``attempt`` (from 0), which got ``response`` or failed with ``error``.

        False: ``response`` is the answer. True: wait and try again. Raises :class:`HTTPError` when the server
        refused the request, or when this was the last attempt allowed.
        """
        if error is not None:
            detail = self._transport_detail(error)
        elif response.status_code in RETRY_STATUS:
            detail = f"HTTP {response.status_code} {response.text[:200]!r}"
        elif response.status_code >= 400:
            raise HTTPError("refused", url, status=response.status_code, body=response.text[:BODY_EXCERPT])
        else:
            return False
        if attempt >= self.max_retries:
            status = None if response is None else response.status_code
            raise HTTPError("failed", url, status=status, attempts=self.max_retries + 1, detail=detail)
        return True

    # -- calls
    def request(self, method: str, url: str, payload: Any = None) -> Any:
        """The httpx response to ``method url`` (``payload`` sent as JSON), after retries; :class:`HTTPError`."""
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                response = self._http().request(method, url, json=payload)
            except self._httpx.TransportError as exc:  # timeouts included (a TransportError subclass)
                error = exc
            if not self._should_retry(url, attempt, response, error):
                return response
            time.sleep(self.delay(attempt, response))
        raise AssertionError("unreachable")

    async def arequest(self, client: Any, method: str, url: str, payload: Any = None) -> Any:
        """:meth:`request` on ``client`` (from :meth:`async_client`), waiting without blocking the event loop."""
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                response = await client.request(method, url, json=payload)
            except self._httpx.TransportError as exc:
                error = exc
            if not self._should_retry(url, attempt, response, error):
                return response
            await asyncio.sleep(self.delay(attempt, response))
        raise AssertionError("unreachable")

    def stream_events(self, url: str, payload: Any) -> Iterator[str]:
        """The ``data`` of each server-sent event of ``POST url``; failures before the first event are retried, a
        stream cut after it raises :class:`HTTPError` (kind ``"broken"``). Close the iterator to stop early."""
        started = False
        for attempt in itertools.count():  # ends: _should_retry raises once the attempts are spent
            response, error = None, None
            try:
                with self._http().stream("POST", url, json=payload) as response:
                    if response.status_code >= 400:
                        response.read()  # the error body goes into the message
                    if not self._should_retry(url, attempt, response, None):
                        for line in response.iter_lines():
                            line = line.strip()
                            if line.startswith("data:"):  # comments (":"), event names and ids are not data
                                started = True
                                yield line[5:].strip()
                        return
            except self._httpx.TransportError as exc:
                if started:  # part of the reply was already yielded: a retry would repeat it
                    broke = "stalled" if isinstance(exc, self._httpx.TimeoutException) else "broke off"
                    detail = f"{broke} midway: {self._transport_detail(exc)}"
                    raise HTTPError("broken", url, attempts=attempt + 1, detail=detail) from exc
                error = exc
                self._should_retry(url, attempt, None, error)
            time.sleep(self.delay(attempt, response))  # headers outlive the closed stream
