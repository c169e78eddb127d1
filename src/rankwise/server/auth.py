"""Optional API keys: ``Authorization: Bearer <key>``, any of several keys, compared in constant time.

With no keys configured every request passes. ``/health``, ``/ready`` and the OpenAPI docs never need a key (probes
and browsers); the re-rank routes, ``/v1/models`` and ``/metrics`` do.
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


def api_key_dependency(keys: Sequence[str]) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with one of ``keys`` (all through when empty).

    Example:
        >>> check = api_key_dependency(())
        >>> check(None) is None
        True
    """
    encoded = [k.encode() for k in keys]

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
        given = credentials.credentials.encode()
        ok = False
        for key in encoded:  # check every key, so timing says nothing about which one nearly matched
            ok |= hmac.compare_digest(given, key)
        if not ok:
            raise ApiError(401, "invalid API key.", "unauthorized", {"WWW-Authenticate": "Bearer"})

    return check
