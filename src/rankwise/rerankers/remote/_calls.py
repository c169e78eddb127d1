"""Transport helpers of the remote re-rankers: API keys, URLs, option checks and calls run on a bounded pool.

Example:
    >>> join_url("https://api.cohere.com", "/v2/rerank")
    'https://api.cohere.com/v2/rerank'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

from rankwise.errors import InvalidInputError

T = TypeVar("T")


def resolve_key(given: str | None, env: Sequence[str]) -> str | None:
    """``given``, else the first of the ``env`` variables that is set and not blank, else None.

    A key must be printable ASCII (it travels in an HTTP header); the error says where it came from, never what it is.
    """
    if given is not None:
        if not isinstance(given, str) or not given.strip():
            raise InvalidInputError(
                "api_key must be a non-empty string (or None to read it from the environment)."
            )
        key, source = given.strip(), "api_key"
    else:
        found = [(os.environ[name].strip(), name) for name in env if os.environ.get(name, "").strip()]
        if not found:
            return None
        key, source = found[0]
    if not (key.isascii() and key.isprintable()):
        raise InvalidInputError(
            f"the API key from {source} holds characters an HTTP header cannot carry (not printable ASCII: a "
            "stray quote or newline?); set it again."
        )
    return key


def join_url(base: str, route: str) -> str:
    """``base`` + ``route``, without doubling a version segment the base already ends with.

    Example:
        >>> join_url("https://api.jina.ai/", "/v1/rerank"), join_url("https://api.jina.ai/v1", "/v1/rerank")
        ('https://api.jina.ai/v1/rerank', 'https://api.jina.ai/v1/rerank')
    """
    base = base.rstrip("/")
    first = "/" + route.strip("/").split("/")[0]
    if route.count("/") > 1 and base.endswith(first):
        base = base[: -len(first)]
    return base + route


def check_url(url: Any, label: str) -> str:
    """An ``http(s)://`` URL, or :class:`InvalidInputError` naming ``label`` and the value."""
    if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
        raise InvalidInputError(f"{label} must be an http:// or https:// URL, got {url!r}.")
    return url.strip()


def positive_int(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{label} must be an int >= 1, got {value!r}.")
    return value


def run_bounded(tasks: Sequence[Callable[[], T]], limit: int, on_done: Callable[[int, T], None]) -> None:
    """Run ``tasks`` on at most ``limit`` threads, calling ``on_done(i, result)`` in this thread as each finishes.

    The first failure (of a task or of ``on_done``) propagates at once; tasks not yet started are dropped, and those
    already running finish on their own (their results are discarded). One task runs in this thread: no pool cost.
    """
    if len(tasks) <= 1 or limit == 1:
        for i, task in enumerate(tasks):
            on_done(i, task())
        return
    pool = ThreadPoolExecutor(max_workers=min(limit, len(tasks)), thread_name_prefix="rankwise-remote")
    try:
        futures = {pool.submit(task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            on_done(futures[future], future.result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
