"""One small in-memory cache for everything rankwise keys by a whole text (token ids, embeddings).

Texts can be megabytes long, so a cache keyed by the text itself keeps every such text alive, and a cache bounded
only by entry count can still hold gigabytes. :class:`BoundedLRU` therefore:

* keys entries by a 16-byte BLAKE2b digest of the text (the text itself is never kept);
* bounds both the number of entries and their total bytes (value ``nbytes`` plus :data:`ENTRY_OVERHEAD` per entry);
* is a true LRU: a hit moves the entry to the most-recently-used end, eviction takes the least recently used;
* counts hits, misses and evictions, and is safe to share between threads (one lock, held only for dict work:
  hashing happens outside it).

Example:
    >>> import numpy as np
    >>> cache = BoundedLRU(max_entries=2, max_bytes=1 << 20)
    >>> cache.put("a", np.zeros(4)) and cache.put("b", np.ones(4))
    True
    >>> cache.get("a") is not None   # "a" is now the most recently used
    True
    >>> cache.put("c", np.ones(4))   # evicts "b", the least recently used
    True
    >>> "b" in cache, "a" in cache, cache.evictions
    (False, True, 1)
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from rankwise.errors import InvalidInputError

V = TypeVar("V")

MB = 1 << 20
DIGEST_SIZE = 16
"""Bytes of the BLAKE2b digest used as key: 128 bits, so a collision between two texts is out of reach."""

ENTRY_OVERHEAD = 256
"""Bytes charged per entry on top of its value: the digest (49 B as a ``bytes`` object), the ordered dict's node and
slot, and the numpy array header (~112 B). A generous round figure, so the byte bound is not under-counted."""


def text_digest(text: str) -> bytes:
    """The cache key of ``text``: BLAKE2b-128 of its UTF-8 bytes (lone surrogates kept, via ``surrogatepass``)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()


def value_nbytes(value: Any) -> int:
    """Bytes held by a cached value: ``nbytes`` for numpy arrays, ``sys.getsizeof`` otherwise."""
    nbytes = getattr(value, "nbytes", None)
    return int(nbytes) if isinstance(nbytes, int) else sys.getsizeof(value)


def check_bound(label: str, value: Any) -> int:
    """A cache bound must be an int >= 0 (0 disables the cache)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{label} must be an int >= 0 (0 disables the cache), got {value!r}.")
    return value


class BoundedLRU(Generic[V]):
    """A thread-safe LRU map from texts to values, bounded by entry count and by total bytes.

    Args:
        max_entries: most entries kept; 0 disables the cache (every ``get`` misses, ``put`` keeps nothing).
        max_bytes: most bytes kept (values' ``nbytes`` + :data:`ENTRY_OVERHEAD` each); 0 disables the cache.
            A single value larger than this is not cached at all (it would evict everything else).

    Values should own their memory (``array.copy()`` of a row, not a view): ``nbytes`` of a view does not count
    the buffer it keeps alive.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = check_bound("max_entries", max_entries)
        self.max_bytes = check_bound("max_bytes", max_bytes)
        self._data: OrderedDict[bytes, tuple[V, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        """Bytes currently charged (always ``<= max_bytes``)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, text: object) -> bool:
        """Whether ``text`` is cached (does not count as a use, nor as a hit or miss)."""
        if not isinstance(text, str):
            return False
        key = text_digest(text)
        with self._lock:
            return key in self._data

    def get(self, text: str) -> V | None:
        """The value cached for ``text`` (now the most recently used), or None."""
        if not self.enabled:
            return None
        key = text_digest(text)
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, text: str, value: V) -> bool:
        """Cache ``value`` for ``text``, evicting least recently used entries to stay within both bounds.

        Returns whether the value was kept (False when the cache is disabled or the value alone exceeds
        ``max_bytes``).
        """
        if not self.enabled:
            return False
        size = value_nbytes(value) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return False
        key = text_digest(text)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= old[1]
            self._data[key] = (value, size)
            self._nbytes += size
            while len(self._data) > self.max_entries or self._nbytes > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self._nbytes -= dropped
                self.evictions += 1
        return True

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        with self._lock:
            self._data.clear()
            self._nbytes = 0

    def stats(self) -> dict[str, int]:
        """Entries, bytes, bounds, hits, misses and evictions, for monitoring."""
        with self._lock:
            return {
                "entries": len(self._data), "bytes": self._nbytes, "max_entries": self.max_entries,
                "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses, "evictions": self.evictions,
            }

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (Ray, multiprocessing) keeps the entries and drops the lock, which cannot be pickled."""
        with self._lock:
            state = dict(self.__dict__)
            state["_data"] = OrderedDict(self._data)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BoundedLRU(entries={len(self._data)}/{self.max_entries}, bytes={self._nbytes}/{self.max_bytes})"
