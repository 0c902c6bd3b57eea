"""The in-process tier in front of a shared ``RedisStore``, coherent across replicas by lease.

A hit on the tier costs what a ``MemoryStore`` hit costs: no round trip. What keeps it coherent is
the store's invalidation clock, shared in Redis and advanced by every invalidation, and a lease:

- the tier holds values read (or written) while the clock had one value, the tier's ``clock``;
  a reading of a newer value empties the tier (every entry: the tier does not know which tags a
  foreign invalidation named);
- it serves them only while its latest reading of the clock is younger than ``lease`` seconds,
  counted from when that reading was *sent*; past that, the next request reads the clock again
  (one read in flight for every request waiting, not one per request);
- an invalidation returns only ``lease`` seconds after it finished in Redis.

So a request that starts after an invalidation returned is served from a tier whose clock was
read after the invalidation finished: it saw the new clock value and emptied the tier. No
replica serves the old bytes after the call returns; the price is an invalidation ``lease``
seconds slower, and each replica's tier emptied by any invalidation (coarse, but it never needs
to know what another replica invalidated). Every replica sharing a prefix must use the same
lease (a replica without a tier invalidates without waiting).

When Redis fails, the clock cannot be read: the tier serves nothing, but its entries stay
available as a ``stale-if-error`` fallback (:meth:`NearTier.unverified`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from .._types import check_positive
from .memory_store import MemoryStore

__all__ = ["DEFAULT_LEASE", "NearTier"]

DEFAULT_LEASE: Final = 0.1


class NearTier:
    """An in-process, byte-bounded copy of what a replica read from its shared store.

    Args:
        max_bytes: the bound on the tier (values, keys and bookkeeping), as for ``MemoryStore``.
        lease: seconds a reading of the shared clock lets the tier serve without asking again.
    """

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

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def max_bytes(self) -> int:
        return self._entries.max_bytes

    def leased(self) -> bool:
        """Whether the tier may serve now: its latest clock reading is younger than the lease."""
        return asyncio.get_running_loop().time() - self.read_at < self.lease

    async def get(
        self,
        key: str,
        read_clock: Callable[[], Awaitable[int | None]],
        read_through: Callable[[str], Awaitable[tuple[int | None, bytes | None, float]]],
    ) -> bytes | None:
        """The value under ``key``: the tier's copy while it may serve it (renewing the lease
        with ``read_clock`` when it ran out and the tier holds a copy), else what
        ``read_through`` reads from the shared store (the clock, then the value and its
        remaining TTL), kept when the clock allows."""
        value = self.peek(key)
        if value is None and self._entries.fetch(key) is not None and await self._renew(read_clock):
            value = self.peek(key)  # the lease renewed, and the copy survived the new reading
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
        """The value held under ``key`` whether or not the tier may serve it (a fallback when
        the shared store failed: stale-if-error)."""
        return await self._entries.get(key)

    def saw(self, clock: int | None, sent_at: float) -> None:
        """A reading of the shared clock, sent at ``sent_at``: a newer value empties the tier; the
        value the tier holds renews its lease."""
        if clock is None:
            return
        if self.clock is None or clock > self.clock:
            self._entries.clear()
            self.clock = clock
        if clock == self.clock and sent_at > self.read_at:
            self.read_at = sent_at

    async def put(self, key: str, value: bytes, *, ttl: float, clock: int | None) -> None:
        """Hold ``value``, read (or stored) under the shared clock value ``clock``; a value of
        another clock than the tier's is not held, and drops the copy held before."""
        if clock is not None and clock == self.clock and ttl > 0:
            await self._entries.set(key, value, ttl=ttl)
        else:
            await self._entries.delete(key)

    async def delete(self, key: str) -> None:
        await self._entries.delete(key)

    def empty(self, clock: int | None) -> None:
        """Drop every entry and the lease: this replica invalidated something, and ``clock`` is
        the shared clock's value after it (None: unknown, Redis failed)."""
        self._entries.clear()
        self.read_at = float("-inf")
        if clock is not None and (self.clock is None or clock > self.clock):
            self.clock = clock

    async def _renew(self, read_clock: Callable[[], Awaitable[int | None]]) -> bool:
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
