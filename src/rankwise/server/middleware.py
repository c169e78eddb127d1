"""Two plain ASGI middlewares (no BaseHTTPMiddleware: it breaks client-disconnect detection and streams).

* :class:`BodyLimitMiddleware` answers 413 before reading a body whose ``Content-Length`` is over the limit, and stops
  a chunked body as soon as it passes the limit.
* :class:`MetricsMiddleware` counts every request by endpoint and status and times it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

from rankwise.server.metrics import ServerMetrics

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


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
