"""An on-disk cache of chat results, keyed by model + messages + generation parameters.

One JSON file per entry under ``path/<2 hex>/<sha256>.json``, written atomically (temp file + rename), so
several threads or processes can share one cache folder. Clients consult it only for deterministic calls
(temperature 0, or an explicit ``seed``): caching a sampled reply would return the same "sample" forever.

Example:
    >>> import tempfile
    >>> from rankwise.llm import ChatResult, DiskCache
    >>> cache = DiskCache(tempfile.mkdtemp())
    >>> key = cache.key("m", [{"role": "user", "content": "hi"}], {"max_tokens": 4})
    >>> cache.put(key, ChatResult(text="hello", model="m"))
    >>> cache.get(key).text, cache.get(key).cached
    ('hello', True)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankwise.llm.base import ChatMessage, ChatResult


class DiskCache:
    """Chat results stored as JSON files in ``path`` (created if missing).

    Args:
        path: the cache folder.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(model: str, messages: Sequence[ChatMessage], params: Mapping[str, Any]) -> str:
        """The sha256 of the canonical JSON of ``model``, ``messages`` and ``params`` (None values dropped)."""
        payload = {
            "model": model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "params": {k: v for k, v in sorted(params.items()) if v is not None},
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _file(self, key: str) -> Path:
        return self.path / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResult | None:
        """The stored result (with ``cached=True``), or None when absent or unreadable."""
        try:
            data = json.loads(self._file(key).read_text(encoding="utf-8"))
            return ChatResult.from_dict(data, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: ChatResult) -> None:
        """Store ``result`` under ``key`` (atomic: a reader sees the old file, the new one, or none)."""
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(result.to_dict(), fh, ensure_ascii=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.path.glob("??/*.json"))

    def clear(self) -> None:
        """Delete every entry."""
        for f in self.path.glob("??/*.json"):
            f.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"DiskCache({str(self.path)!r})"


def cacheable(temperature: float, params: Mapping[str, Any]) -> bool:
    """Whether a call is deterministic enough to cache: greedy decoding, or sampling with an explicit seed."""
    return temperature == 0 or params.get("seed") is not None


def as_cache(cache: DiskCache | str | os.PathLike[str] | None) -> DiskCache | None:
    """Accept a DiskCache, a folder path, or None."""
    if cache is None or isinstance(cache, DiskCache):
        return cache
    return DiskCache(cache)


def cache_key(
    cache: DiskCache | None,
    temperature: float,
    params: Mapping[str, Any],
    model: str,
    messages: Sequence[ChatMessage],
    request: Mapping[str, Any],
) -> str | None:
    """The key of a call in ``cache``; None without a cache or when the call samples (see :func:`cacheable`).

    ``params`` are the caller's extra generation parameters; ``request`` is everything sent besides the
    messages (what makes two calls with the same messages different).
    """
    if cache is None or not cacheable(temperature, params):
        return None
    return cache.key(model, messages, request)


def cached(cache: DiskCache | None, key: str | None) -> ChatResult | None:
    """The stored result for ``key`` (None without a key, a cache or an entry)."""
    return None if cache is None or key is None else cache.get(key)


def remember(cache: DiskCache | None, key: str | None, result: ChatResult) -> ChatResult:
    """Store ``result`` under ``key`` when there is a cache and a key; return it either way."""
    if cache is not None and key is not None:
        cache.put(key, result)
    return result
