"""MemoryStore: the embedded cache store, in-process and bounded in bytes.

A flood of unique keys (every query string an attacker can invent) must not grow memory past the
bound, so every entry is charged what it really costs: its value, its key, its tags, and the fixed
overhead of the Python objects that hold it (measured with ``tracemalloc``; a test keeps the figure
honest). The tag index is cleaned whenever an entry leaves (deleted, overwritten, evicted, or
found expired), so it never outgrows the entries it points to.

Expiry is lazy: an expired entry is dropped when it is read, invalidated or evicted. Until then it
is charged like any other, so the bound holds, and being unread it drifts to the LRU end and goes
first. (cachetools' TLRUCache expires eagerly through a heap, but costs five times as much per
write: about 30 us against 6 us.)
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Final, NamedTuple

from cachetools import Cache, LRUCache

from .._types import check_positive

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ITEM_BYTES", "MemoryStore"]

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_ITEM_BYTES: Final = 1024 * 1024
# Bytes charged per entry on top of its value and key: the headers of the bytes, str, float and
# tuple objects, and the slots cachetools keeps per key (two dicts and an OrderedDict). Measured
# with tracemalloc at about 560 on CPython 3.11 (64-bit); test_memory_store keeps it honest.
ENTRY_OVERHEAD: Final = 600
# Per tag of an entry, on top of its length: the tag's slot in the entry's frozenset and the key's
# slot in the tag's set, plus, for a tag no other entry shares, the str, the set and its slot in
# the index (measured at about 420). Shared tags cost less, so this errs on the safe side.
TAG_OVERHEAD: Final = 440
# Locks live in a plain dict, swept of expired locks whenever it doubles past this size, so
# locks a caller never released cannot pile up.
LOCK_SWEEP_SIZE: Final = 1024
# Invalidation marks kept (tag -> the clock when it was last invalidated), oldest out; a write
# that started before the oldest forgotten mark is refused, so forgetting is never unsafe.
MAX_MARKS: Final = 10_000


class _Entry(NamedTuple):
    value: bytes
    expires: float
    tags: frozenset[str]
    size: int


_NO_TAGS: Final[frozenset[str]] = frozenset()


def _size(entry: _Entry) -> int:
    return entry.size


def _str_size(text: str) -> int:
    # CPython stores a str in 1, 2 or 4 bytes per character; isascii() is O(1) there.
    return len(text) if text.isascii() else 4 * len(text)


class _TaggedCache(LRUCache[str, _Entry]):
    """An LRU cache, bounded by the sizes its entries declare, with a tag -> keys index.

    cachetools removes an entry through ``__delitem__`` (for deletes and for the evictions
    ``popitem`` makes) or replaces it in ``__setitem__``; both are hooked so the index forgets the
    keys that left and never outgrows the entries it points to.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize, getsizeof=_size)
        self.tags: dict[str, set[str]] = {}

    def __setitem__(self, key: str, entry: _Entry) -> None:
        if key in self:  # an overwrite: the old entry's tags may differ
            self._untag(key, Cache.__getitem__(self, key))
        super().__setitem__(key, entry)
        for tag in entry.tags:
            self.tags.setdefault(tag, set()).add(key)

    def __delitem__(self, key: str) -> None:
        entry = Cache.__getitem__(self, key)  # without touching the LRU order
        super().__delitem__(key)
        if entry.tags:
            self._untag(key, entry)

    def _untag(self, key: str, entry: _Entry) -> None:
        for tag in entry.tags:
            keys = self.tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.tags[tag]


class MemoryStore:
    """An in-process store: LRU, a TTL per item, bounded in bytes, with tags and locks.

    Values larger than ``max_item_bytes`` are not stored (the request is simply served uncached),
    and the least recently used entries are evicted to keep the total under ``max_bytes``. The
    store is meant for one event loop: its methods never await, so each runs atomically there, but
    it is not safe to share between threads.

    Args:
        max_bytes: the bound on everything the store holds, values, keys, tags and bookkeeping.
        max_item_bytes: the largest value stored; larger values are dropped. Defaults to 1 MiB
            (or ``max_bytes`` when that is smaller).
        timer: the clock for TTLs and locks, in seconds (monotonic); tests inject a fake one.
    """

    name = "memory"

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_item_bytes: int | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        check_positive("max_bytes", max_bytes, "int (bytes)")
        if max_item_bytes is None:
            max_item_bytes = min(DEFAULT_MAX_ITEM_BYTES, max_bytes)
        check_positive("max_item_bytes", max_item_bytes, "int (bytes)")
        if max_item_bytes > max_bytes:
            raise ValueError(
                f"max_item_bytes must not exceed max_bytes ({max_bytes}), got {max_item_bytes!r}"
            )
        if not callable(timer):
            raise TypeError(f"timer must be a callable returning seconds, got {timer!r}")
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self._timer = timer
        self._cache = _TaggedCache(max_bytes)
        self._locks: dict[str, float] = {}  # key -> when the lock expires
        # The invalidation clock: +1 per invalidate(); each tag's last one; what was forgotten.
        self._clock = 0
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._floor = 0
        self._sweep_at = LOCK_SWEEP_SIZE  # sweep when the dict has doubled since the last one

    def __repr__(self) -> str:
        return f"MemoryStore(max_bytes={self.max_bytes}, max_item_bytes={self.max_item_bytes})"

    @property
    def size(self) -> int:
        """The bytes currently charged to the store's entries (never more than ``max_bytes``)."""
        return int(self._cache.currsize)

    def __len__(self) -> int:
        return len(self._cache)

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None when absent or expired."""
        return self.fetch(key)

    def fetch(self, key: str) -> bytes | None:
        """:meth:`get`, without a coroutine (the store never waits)."""
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires <= self._timer():
            with contextlib.suppress(KeyError):
                del self._cache[key]
            return None
        return entry.value

    async def clock(self) -> int:
        """The invalidation clock: read before computing a value, passed to :meth:`set` as
        ``since``."""
        return self._clock

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float,
        tags: Collection[str] = (),
        since: int | None = None,
    ) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds, findable by each of ``tags``.

        A value over ``max_item_bytes`` is not stored, and any older value under ``key`` is
        dropped so a reader never gets a stale one. With ``since`` (the :meth:`clock` read
        before the value was computed), a value one of whose tags was invalidated since is not
        stored: it may hold what the invalidation was about (a value already stored stays).
        """
        if since is not None and await self.invalidated_since(tags, since):
            # Refused; a value already there was stored after that invalidation (or deleted
            # by it) and stays.
            return False
        if not ttl > 0:  # inline: the hot path of a miss
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if len(value) > self.max_item_bytes:
            await self.delete(key)
            return False
        size = len(value) + _str_size(key) + ENTRY_OVERHEAD
        if tags:
            tag_set = frozenset(tags)
            size += sum(_str_size(tag) + TAG_OVERHEAD for tag in tag_set)
        else:
            tag_set = _NO_TAGS
        if size > self.max_bytes:  # only possible with many long tags on a tiny store
            await self.delete(key)
            return False
        self._cache[key] = _Entry(bytes(value), self._timer() + ttl, tag_set, size)
        return True

    async def delete(self, key: str) -> None:
        """Forget ``key`` (nothing happens when it is absent)."""
        with contextlib.suppress(KeyError):
            del self._cache[key]

    async def invalidated_since(self, tags: Collection[str], since: int) -> bool:
        """Whether one of ``tags`` was invalidated after the :meth:`clock` reading ``since``."""
        marks = self._marks
        return since < self._floor or any(marks.get(tag, 0) > since for tag in tags)

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every entry stored with any of ``tags``; return how many live entries went.

        The tags are marked with the next :meth:`clock` value first, so a value computed before
        the invalidation and stored after it is refused."""
        self._clock += 1
        marks = self._marks
        for tag in tags:
            marks[tag] = self._clock
            marks.move_to_end(tag)
        while len(marks) > MAX_MARKS:
            self._floor = max(self._floor, marks.popitem(last=False)[1])
        keys: set[str] = set()
        for tag in tags:
            keys.update(self._cache.tags.get(tag, ()))
        now = self._timer()
        live = 0
        for key in keys:
            live += Cache.__getitem__(self._cache, key).expires > now  # expired ones don't count
            del self._cache[key]
        return live

    async def acquire(self, key: str, ttl: float) -> bool:
        """Take the lock named ``key`` for ``ttl`` seconds; True if this caller got it."""
        check_positive("ttl", ttl, "number of seconds")
        now = self._timer()
        expires = self._locks.get(key)
        if expires is not None and now < expires:
            return False
        if expires is None and len(self._locks) >= self._sweep_at:
            # Amortised O(1) per acquire: the dict holds at most twice the live locks.
            self._locks = {k: t for k, t in self._locks.items() if now < t}
            self._sweep_at = max(LOCK_SWEEP_SIZE, 2 * len(self._locks))
        self._locks[key] = now + ttl
        return True

    async def release(self, key: str) -> None:
        """Release the lock named ``key`` (nothing happens when it is not held)."""
        self._locks.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (locks and invalidation marks stay)."""
        self._cache.clear()
        self._cache.tags.clear()

    async def aclose(self) -> None:
        """Drop every entry and lock."""
        self.clear()
        self._locks.clear()
        self._marks.clear()
