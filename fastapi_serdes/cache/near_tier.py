"""The in-process tier in front of a shared ``RedisStore``, coherent across replicas by lease.

The tier holds only values read (or written) under its reading of the store's invalidation clock
(shared in Redis, advanced by every invalidation), empties itself on seeing a newer value, and
serves only while its latest reading is younger than ``lease`` (counted from when it was *sent*).
An invalidation returns ``lease`` seconds after it finished in Redis, so no replica serves the old
bytes once it returned (docs/how-to/caching.md, "Two tiers"). While Redis fails, the clock cannot
be read: the tier serves nothing, but its copies remain a ``stale-if-error`` fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from .._types import check_positive
from .memory_store import MemoryStore

__all__ = ["DEFAULT_LEASE", "NearTier"]

DEFAULT_LEASE: Final = 0.1
ReadClock = Callable[[], Awaitable[int | None]]
#: Reads the clock, then the value under a key and its remaining TTL (one round trip).
ReadThrough = Callable[[str], Awaitable[tuple[int | None, bytes | None, float]]]


class NearTier:
    """An in-process, byte-bounded copy of what a replica read from its shared store."""

    __slots__ = ("_entries", "_renewing", "clock", "lease", "read_at")

    def __init__(self, max_bytes: int, lease: float = DEFAULT_LEASE) -> None:
        check_positive("near_lease", lease, "number of seconds")
        self._entries = MemoryStore(max_bytes=max_bytes)
        self.lease = float(lease)
        #: The shared clock value the entries were read under (None: not read yet).
        self.clock: int | None = None
        #: When the reading of ``clock`` that renewed the lease was sent (the loop's time).
        self.read_at = float("-inf")
        self._renewing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"NearTier(max_bytes={self._entries.max_bytes}, lease={self.lease})"

    def leased(self) -> bool:
        """Whether the tier may serve now: its latest clock reading is younger than the lease."""
        return asyncio.get_running_loop().time() - self.read_at < self.lease

    async def get(self, key: str, read_clock: ReadClock, read_through: ReadThrough) -> bytes | None:
        """The tier's copy of ``key`` while it may serve it (renewing an expired lease when it
        holds one), else what ``read_through`` reads, kept when the clock allows."""
        value = self.peek(key)
        if value is None and self._entries.fetch(key) is not None and await self._renew(read_clock):
            value = self.peek(key)  # the copy survived the new reading
        if value is not None:
            return value
        sent_at = asyncio.get_running_loop().time()
        clock, value, ttl = await read_through(key)
        self.saw(clock, sent_at)
        if value is not None:
            await self.put(key, value, ttl=ttl, clock=clock)
        return value

    def peek(self, key: str) -> bytes | None:
        """The copy under ``key`` if the tier may serve it now, without waiting for anything."""
        return self._entries.fetch(key) if self.leased() else None

    async def unverified(self, key: str) -> bytes | None:
        """The copy under ``key`` even when the tier may not serve it (stale-if-error)."""
        return await self._entries.get(key)

    def saw(self, clock: int | None, sent_at: float) -> None:
        """A clock reading sent at ``sent_at``: a newer value empties the tier; its own renews."""
        if clock is None:
            return
        if self.clock is None or clock > self.clock:
            self._entries.clear()
            self.clock = clock
        if clock == self.clock and sent_at > self.read_at:
            self.read_at = sent_at

    async def put(self, key: str, value: bytes, *, ttl: float, clock: int | None) -> None:
        """Hold ``value`` if read (or stored) under the tier's clock; else drop the copy held."""
        if clock is not None and clock == self.clock and ttl > 0:
            await self._entries.set(key, value, ttl=ttl)
        else:
            await self.delete(key)

    async def delete(self, key: str) -> None:
        await self._entries.delete(key)

    def empty(self, clock: int | None) -> None:
        """Drop every entry and the lease: this replica invalidated (``clock``: the clock after)."""
        self.saw(clock, float("-inf"))
        self._entries.clear()
        self.read_at = float("-inf")

    async def _renew(self, read_clock: ReadClock) -> bool:
        """Read the clock, once for every request waiting on it; whether the lease holds now."""
        if self._renewing is not None:
            await asyncio.shield(self._renewing)
            return self.leased()
        loop = asyncio.get_running_loop()
        self._renewing = done = loop.create_future()
        try:
            sent_at = loop.time()
            self.saw(await read_clock(), sent_at)
        finally:
            self._renewing = None
            done.set_result(None)
        return self.leased()
