"""Plain ASGI middlewares (no BaseHTTPMiddleware: it breaks client-disconnect detection and streams).

* :class:`ErrorAnswerMiddleware` (innermost) answers what the routes could not: a 500 for an unexpected error, logged
  once with its traceback, and a 503 for a request that the server cut at the end of its graceful shutdown.
* :class:`BodyLimitMiddleware` answers 413 before reading a body whose ``Content-Length`` is over the limit, and stops
  a chunked body as soon as it passes the limit.
* :class:`MetricsMiddleware` counts every request by endpoint and status and times it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

from rankwise.server.errors import internal_message, json_bytes
from rankwise.server.metrics import ServerMetrics

logger = logging.getLogger("rankwise.server.errors")

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


async def send_json_error(send: Send, status: int, message: str, error_type: str, **headers: str) -> None:
    """Send a whole JSON error answer (``{"message", "error", "error_type"}``) through ``send``."""
    body = json_bytes({"message": message, "error": message, "error_type": error_type})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class ErrorAnswerMiddleware:
    """Answer, in JSON, the requests that would otherwise get a bare 500 or no answer at all.

    * An exception no route handler answered: logged here once, with its traceback and a reference, and answered 500
      with that reference (Starlette's own 500 path would log it again through the ASGI server).
    * A request cancelled by the ASGI server when ``graceful_timeout_s`` of a shutdown has passed: answered 503
      (``Retry-After: 1``) instead of a dropped connection. Its queued model work is dropped like a client's who left.
    """

    def __init__(self, app: Callable, graceful_timeout_s: float, metrics: ServerMetrics | None = None) -> None:
        self.app = app
        self.graceful_timeout_s = graceful_timeout_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if started:
                raise
            # only the server cancels a request's task (a client that leaves is noticed, not cancelled): shutdown
            self._count(scope, "shutting_down")
            await send_json_error(send, 503, self._cut_message(), "shutting_down", retry_after="1")
        except Exception as exc:
            ref = uuid.uuid4().hex[:12]
            logger.error(
                "unhandled error %s on %s %s", ref, scope.get("method"), scope.get("path"), exc_info=exc
            )
            if started:
                return  # the answer is half sent: nothing to add; the server closes the connection
            self._count(scope, "internal")
            await send_json_error(send, 500, internal_message(ref), "internal")

    def _cut_message(self) -> str:
        return (
            f"the server is shutting down and did not finish this request within its graceful timeout of "
            f"{self.graceful_timeout_s:g} s; retry (on another replica). Operators change the wait with "
            "--graceful-timeout / RANKWISE_GRACEFUL_TIMEOUT_S / graceful_timeout_s in the config file."
        )

    def _count(self, scope: Scope, error_type: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(self.metrics.endpoint_label(scope.get("path", "")), error_type).inc()


def _too_large(limit: int) -> str:
    return f"the request body is over this server's limit of {limit} bytes; send fewer or shorter documents."


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with a 413 JSON error."""

    def __init__(self, app: Callable, max_bytes: int, metrics: ServerMetrics | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            if self.metrics is not None:
                self.metrics.errors.labels(
                    self.metrics.endpoint_label(scope.get("path", "")), "payload_too_large"
                ).inc()
            await self._reject(send)
            return
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if (
                    seen > limit
                ):  # FastAPI re-raises HTTPException from body reading as it is: a 413 JSON error
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Send) -> None:
        text = _too_large(self.max_bytes)
        body = json.dumps({"message": text, "error": text, "error_type": "payload_too_large"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count and time every HTTP request (endpoint label bounded to the known routes)."""

    def __init__(self, app: Callable, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self.metrics.endpoint_label(scope.get("path", ""))
        status = 500
        began = time.perf_counter()

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - began)
            self.metrics.requests.labels(endpoint, str(status)).inc()
