"""What ``RedisStore`` does on a Redis Cluster instead of its one-script writes and invalidations.

A cluster puts a value and its tag sets in different hash slots, so each script touches one key:
a write adds the value to its tag sets before storing it (never a value that invalidation cannot
find); an invalidation advances the clock and marks its tags, empties each tag set atomically,
deletes their members slot by slot, then advances the clock once more (an in-process tier that
read a value meanwhile sees the clock move).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from .redis_scripts import POP_SCRIPT, PROMOTE_SCRIPT, TAG_SCRIPT

if TYPE_CHECKING:  # imported by RedisStore, which says which extra to install without redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["MARK_MS", "Cluster"]

# How long a tag's invalidation mark is kept: longer than any value takes to compute.
MARK_MS: Final = 3_600_000


def _staged(key: str) -> str:
    """Where a value waits beside its key (same hash slot) while its tags are checked."""
    at = key.rfind("k:{")
    return key[:at] + "n:{" + key[at + 3 :]


class Cluster:
    """The cluster's steps for one store's client (its scripts registered once)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._tag = client.register_script(TAG_SCRIPT)
        self._pop = client.register_script(POP_SCRIPT)
        self._promote = client.register_script(PROMOTE_SCRIPT)

    async def write(
        self,
        key: str,
        tags: list[str],
        marks: list[str],
        value: bytes,
        ttl_ms: int,
        since: int | None,
    ) -> object:
        """Store ``value`` under ``key`` with its tag sets; refused (0) when one of ``marks``
        is newer than ``since``."""
        if tags:  # first: a stored value is always found by its tags
            await asyncio.gather(*(self._tag([tag], [key, ttl_ms]) for tag in tags))
        if since is None or not marks:
            return await self.client.set(key, value, px=ttl_ms)
        # The marks live in other slots: the value is staged beside its key (readers keep the
        # old one), the marks are read, then the staged value replaces the old one at once.
        # An invalidation marks its tags before it deletes their members and their staged
        # values, so one that began after `since` is seen here, or leaves nothing to promote.
        staged = _staged(key)
        await self.client.set(staged, value, px=ttl_ms)
        found = await asyncio.gather(*(self.client.get(mark) for mark in marks))
        if any(mark is not None and int(mark) > since for mark in found):
            await self.client.delete(staged)
            return 0
        return await self._promote([staged, key])

    async def drop(self, clock_key: str, tags: list[str], marks: list[str]) -> list[object]:
        """Invalidate ``tags``: how many values went, and the clock after."""
        client = self.client
        clock = await client.incr(clock_key)
        await asyncio.gather(*(client.set(mark, clock, px=MARK_MS) for mark in marks))
        popped = await asyncio.gather(*(self._pop([tag]) for tag in tags))
        members = {member for each in popped for member in each}
        staged = {_staged(member.decode()) for member in members}  # same slots: no promotion
        if staged:
            await client.delete(*staged)
        # redis-py's cluster client sends one DEL per hash slot, in one pipeline per node.
        deleted = await client.delete(*members) if members else 0
        return [deleted, await client.incr(clock_key)]  # done: the clock moves on
