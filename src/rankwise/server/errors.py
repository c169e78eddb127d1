"""Every error the server answers is JSON: ``{"message", "error", "error_type"}``, never a stack trace.

``message`` is what Cohere and Jina clients read, ``error``/``error_type`` what TEI clients read; both hold the same
text. Status codes: 400 bad request (malformed JSON, empty query, too many documents...), 401 missing/wrong API key,
404 unknown model or path, 413 body too large, 422 a field of the wrong type (pydantic's check, with a readable
message), 499 client left, 500 model failure, 502 a remote re-ranker behind this server (a gateway) failed, 503
overloaded or shutting down, 504 request timeout passed.

Bodies are written by :func:`json_bytes`: UTF-8 JSON, or ASCII JSON with ``\\uXXXX`` escapes when a text the caller
sent holds a lone surrogate (``"\\ud800"``), so it comes back exactly as sent instead of failing to encode.
"""

from __future__ import annotations

import json
import logging
import reprlib
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote._answers import RemoteAnswerError, RemoteAuthError, RemoteError
from rankwise.server._jobs import OverloadedError

logger = logging.getLogger(__name__)


def json_bytes(content: Any) -> bytes:
    """``content`` as compact JSON bytes: UTF-8, or escaped ASCII where a string holds a lone surrogate.

    Raises ValueError for a non-finite float (JSON has none) and RecursionError for nesting deeper than Python's limit.

    Example:
        >>> json_bytes({"t": "é"}), json_bytes({"t": "\\ud800"})
        (b'{"t":"\\xc3\\xa9"}', b'{"t":"\\\\ud800"}')
    """
    try:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: "\\ud800" in the answer, as the caller wrote it
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class SafeJSONResponse(JSONResponse):
    """A JSON response written by :func:`json_bytes` (never fails on a lone surrogate)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


class ApiError(Exception):
    """An error with its HTTP status and a message written for the caller."""

    def __init__(
        self, status: int, message: str, error_type: str = "invalid_request", headers: dict | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.headers = headers


def error_response(
    status: int, message: str, error_type: str, headers: dict | None = None, request: Request | None = None
) -> JSONResponse:
    """The JSON error body; counted in ``rankwise_errors_total`` when the request is given."""
    metrics = getattr(getattr(request, "app", None), "state", None)
    metrics = getattr(metrics, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(metrics.endpoint_label(request.url.path), error_type).inc()
    return SafeJSONResponse(
        {"message": message, "error": message, "error_type": error_type}, status_code=status, headers=headers
    )


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 50, 50


def _short(value: Any, limit: int = 60) -> str:
    """A bounded repr: a few levels of nesting, a few items, at most ``limit`` characters (any input, any depth)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, message, type) for pydantic's errors: 400 for unreadable JSON, 422 for fields of the wrong type."""
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "JSON decode error")
            return (
                400,
                f"the request body is not valid JSON ({detail} at position {e['loc'][-1]}).",
                "invalid_json",
            )
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        return (
            400,
            "the request body must be a JSON object (send Content-Type: application/json).",
            "invalid_json",
        )
    seen: dict[str, str] = {}
    for e in errors:
        loc = tuple(e.get("loc", ()))
        # a document that is neither a string nor an object fails both union branches: report it once
        if len(loc) >= 3 and loc[-1] in ("str", "dict[str,any]"):
            loc = loc[:-1]
            msg = f"must be a string or an object, got {_short(e.get('input'))}"
        elif e.get("type") == "missing":
            msg = "is required"
        else:
            raw = e.get("msg") or "is invalid"
            msg = f"{raw[0].lower()}{raw[1:]}, got {_short(e.get('input'))}"
        seen.setdefault(_where(loc), msg)
    text = "; ".join(f"{where}: {msg}" for where, msg in list(seen.items())[:5])
    more = f" (and {len(seen) - 5} more)" if len(seen) > 5 else ""
    return 422, f"invalid request: {text}{more}.", "invalid_type"


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for every error path, including the ones FastAPI and Starlette raise themselves."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.error_type, exc.headers, request)

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return error_response(400, str(exc), "invalid_request", None, request)

    @app.exception_handler(OverloadedError)
    async def _overloaded(request: Request, exc: OverloadedError) -> JSONResponse:
        return error_response(503, str(exc), "overloaded", {"Retry-After": "1"}, request)

    @app.exception_handler(RemoteError)
    async def _upstream(request: Request, exc: RemoteError) -> JSONResponse:
        # a gateway's remote re-ranker failed: the log has the detail (never the key: RemoteError scrubs it), the
        # client a 502 that names the provider and the kind of failure, not its URL
        ref = uuid.uuid4().hex[:12]
        logger.error("upstream error %s on %s %s: %s", ref, request.method, request.url.path, exc)
        return error_response(502, upstream_message(exc, ref), "upstream_error", None, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, kind = validation_message(exc)
        return error_response(status, message, kind, None, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs for the API."
        if exc.status_code == 400 and message == "There was an error parsing the body":  # e.g. not UTF-8
            kinds[400] = "invalid_json"
            message = "the request body could not be read as JSON (send UTF-8 JSON with Content-Type: application/json)."
        return error_response(
            exc.status_code, message, kinds.get(exc.status_code, "http_error"), exc.headers, request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by an error outside the routes (ErrorAnswerMiddleware answers the routes' own): Starlette
        # re-raises it after this answer and the ASGI server logs its traceback, so this logs one line, not two.
        ref = uuid.uuid4().hex[:12]
        logger.error("unhandled error %s on %s %s: %r", ref, request.method, request.url.path, exc)
        return error_response(500, internal_message(ref), "internal", None, request)


def upstream_message(exc: RemoteError, ref: str) -> str:
    """The 502's message when a remote re-ranker behind this server failed: which provider, what kind of failure.

    Example:
        >>> upstream_message(RemoteError("x", provider="cohere", url="u", status=503), "abc")[:61]
        'the upstream re-ranker (cohere) failed: it answered HTTP 503;'
    """
    if isinstance(exc, RemoteAuthError):
        what = "it refused this server's API key for it (an operator must fix the key)"
    elif isinstance(exc, RemoteAnswerError):
        what = "it answered an unusable ranking"
    elif exc.status is not None:
        what = f"it answered HTTP {exc.status}"
    else:
        what = "it could not be reached in time"
    return (
        f"the upstream re-ranker ({exc.provider}) failed: {what}; retry later (reference {ref}; the server log has "
        "the details)."
    )


def internal_message(ref: str) -> str:
    """The 500's message: no detail of the failure, a reference the server log repeats."""
    return f"internal server error (reference {ref}; the server log has the details)."
