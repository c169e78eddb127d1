"""Optional API keys: ``Authorization: Bearer <key>``, any of several keys, compared in constant time.

With no keys configured every request passes. ``/health``, ``/ready`` and the OpenAPI docs never need a key (probes
and browsers); the re-rank routes, ``/v1/models``, ``/info`` and ``/metrics`` do.

Keys are compared as bytes: a configured key as UTF-8, the header as the bytes the client sent (HTTP servers hand
header values over decoded as latin-1, so a key with non-ASCII characters would otherwise never match).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rankwise.server.errors import ApiError

_bearer = HTTPBearer(
    auto_error=False, description="One of the server's API keys (none needed when it has none)."
)


def key_bytes(key: str) -> bytes:
    """A configured key as the bytes a client sends for it (UTF-8; undecodable bytes from the environment kept).

    Example:
        >>> key_bytes("clé")
        b'cl\\xc3\\xa9'
    """
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON/TOML file: its bytes can never match, but no crash
        return key.encode("utf-8", "surrogatepass")


def header_bytes(value: str) -> bytes:
    """The bytes a client sent for a header value that the server decoded as latin-1 (as ASGI servers do).

    Example:
        >>> header_bytes("cl\\xc3\\xa9") == key_bytes("clé")
        True
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not from a latin-1 decode (a test client, another server): take it as text
        return key_bytes(value)


def api_key_dependency(keys: Sequence[str]) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with one of ``keys`` (all through when empty).

    Example:
        >>> check = api_key_dependency(())
        >>> check(None) is None
        True
    """
    encoded = [key_bytes(k) for k in keys]

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if not encoded:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'.",
                "unauthorized",
                {"WWW-Authenticate": "Bearer"},
            )
        given = header_bytes(credentials.credentials)
        ok = False
        for key in encoded:  # check every key, so timing says nothing about which one nearly matched
            ok |= hmac.compare_digest(given, key)
        if not ok:
            raise ApiError(401, "invalid API key.", "unauthorized", {"WWW-Authenticate": "Bearer"})

    return check
