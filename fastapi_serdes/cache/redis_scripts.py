"""A ``RedisStore``'s keys and the commands that keep them: Lua scripts, each atomic in Redis.

Under the prefix: ``k:<key>`` holds a value, ``l:<key>`` a lock, ``t:<tag>`` a sorted set of the
value keys stored with the tag, scored by when they expire (each write drops expired members; the
set expires with its longest-lived member), ``clock`` the invalidation clock and ``i:<tag>`` the
clock value of the tag's last invalidation (kept an hour), which refuses a value computed before
it and written after.

On one server (or Sentinel), a write and an invalidation are each one script (:class:`Server`).
A Redis Cluster puts a value and its tag sets in different hash slots, so :class:`Cluster` takes
steps of one key each: a write adds the value to its tag sets before storing it (never a value
that invalidation cannot find); an invalidation advances the clock and marks its tags, empties
each tag set atomically, deletes their members slot by slot, then advances the clock once more
(an in-process tier that read a value meanwhile sees the clock move).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # imported by RedisStore, which says which extra to install without redis
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["Cluster", "Server"]

# How long a tag's invalidation mark is kept, in ms: longer than any value takes to compute.
MARK_MS: Final = 3_600_000

# Adds `member` to the tag set `key` until `ttl` ms from now, first dropping expired members.
TAG_LUA: Final = """
local function tag(key, member, ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, now + ttl, member)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
"""
# KEYS[1]: the value key; then ARGV[3] tag keys, then as many mark keys. ARGV[1]: the value;
# ARGV[2]: the TTL in ms; ARGV[4]: the clock read before the value was computed ('' for none):
# a tag marked later refuses the value (0 returned; a value already there was written after that
# invalidation, or deleted by it, and stays).
SET_SCRIPT: Final = TAG_LUA + """
local ttl, n = tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] ~= '' then
  local since = tonumber(ARGV[4])
  for i = 2 + n, 1 + 2 * n do
    local mark = redis.call('GET', KEYS[i])
    if mark and tonumber(mark) > since then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, 1 + n do tag(KEYS[i], KEYS[1], ttl) end
return 1
"""  # fmt: skip
# KEYS[1]: the clock; then ARGV[1] tag keys, then as many mark keys. Marks each tag with the next
# clock value (kept ARGV[2] ms), then deletes every member of each tag and the tag; returns how
# many values went and the clock value.
INVALIDATE_SCRIPT: Final = """
local tags = tonumber(ARGV[1])
local clock = redis.call('INCR', KEYS[1])
for i = 2 + tags, 1 + 2 * tags do redis.call('SET', KEYS[i], clock, 'PX', ARGV[2]) end
local n = 0
for i = 2, 1 + tags do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  -- unpack() is limited by Lua's stack, so delete in batches
  for j = 1, #members, 1000 do
    n = n + redis.call('DEL', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('DEL', KEYS[i])
end
return {n, clock}
"""
# KEYS[1]: the lock key; ARGV[1]: our token. Compare-and-delete, so a lock that expired and was
# taken by another replica is not released by us.
RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Cluster: KEYS[1]: one tag key. ARGV[1]: the value key; ARGV[2]: the TTL in ms.
TAG_SCRIPT: Final = TAG_LUA + "tag(KEYS[1], ARGV[1], tonumber(ARGV[2]))\nreturn 1\n"
# Cluster: KEYS[1]: one tag key. Empties it and returns its members (the caller deletes them).
POP_SCRIPT: Final = (
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1)\nredis.call('DEL', KEYS[1])\nreturn m"
)
# Cluster, one hash slot. KEYS[1]: a staged value; KEYS[2]: its key. The staged value replaces
# the key's, unless an invalidation deleted it meanwhile; returns whether it did.
PROMOTE_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
"""


class Server:
    """A store's keys under its prefix, and its commands on one server (scripts registered once).
    Replies are ``object``: the store checks the type it expects."""

    def __init__(self, client: Redis | RedisCluster, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = f"{prefix}clock"
        self._set = client.register_script(SET_SCRIPT)
        self._invalidate = client.register_script(INVALIDATE_SCRIPT)
        self.release = client.register_script(RELEASE_SCRIPT)

    def key(self, key: str) -> str:
        return f"{self.prefix}k:{key}"

    def tags(self, tags: Collection[str]) -> tuple[list[str], list[str]]:
        """The sorted sets of ``tags`` and their invalidation marks, in the same order."""
        unique = set(tags)
        prefix = self.prefix
        return [f"{prefix}t:{tag}" for tag in unique], [f"{prefix}i:{tag}" for tag in unique]

    async def marked_since(self, marks: list[str], since: int) -> bool:
        """Whether one of the invalidation ``marks`` is newer than the clock reading ``since``."""
        found = await asyncio.gather(*(self.client.get(mark) for mark in marks))
        return any(mark is not None and int(mark) > since for mark in found)

    async def write(
        self, key: str, value: bytes, ttl_ms: int, tags: Collection[str], since: int | None
    ) -> object:
        """Store ``value`` under ``key`` in the sets of ``tags``; refused (0) when one of them
        was invalidated after the clock reading ``since``."""
        sets, marks = self.tags(tags)
        args: list[bytes | int | str] = [value, ttl_ms, len(sets), "" if since is None else since]
        return await self._set([self.key(key), *sets, *marks], args)

    async def read(self, key: str) -> list[object]:
        """The clock, then the value under ``key`` and its remaining TTL (ms), in one round trip
        (a pipeline runs in order)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.clock).get(self.key(key)).pttl(self.key(key))  # type: ignore[attr-defined]
        return list(await pipe.execute())

    async def drop(self, tags: Collection[str]) -> object:
        """Invalidate ``tags``: how many values went, and the clock after."""
        sets, marks = self.tags(tags)
        return await self._invalidate([self.clock, *sets, *marks], [len(sets), MARK_MS])


class Cluster(Server):
    """The same on a Redis Cluster, in steps of one hash slot each."""

    def __init__(self, client: RedisCluster, prefix: str) -> None:
        super().__init__(client, prefix)
        self._tag = client.register_script(TAG_SCRIPT)
        self._pop = client.register_script(POP_SCRIPT)
        self._promote = client.register_script(PROMOTE_SCRIPT)

    def key(self, key: str) -> str:
        # The braces put a value and its staged copy in one hash slot.
        return f"{self.prefix}k:{{{key}}}"

    def _staged(self, stored: str) -> str:
        """Where a value waits beside its key ``stored`` (same slot) while its tags are checked."""
        return f"{self.prefix}n:{stored[len(self.prefix) + 2 :]}"

    async def write(
        self, key: str, value: bytes, ttl_ms: int, tags: Collection[str], since: int | None
    ) -> object:
        sets, marks = self.tags(tags)
        stored = self.key(key)
        # First: a stored value is always found by its tags.
        await asyncio.gather(*(self._tag([each], [stored, ttl_ms]) for each in sets))
        if since is None or not marks:
            return await self.client.set(stored, value, px=ttl_ms)
        # The marks live in other slots: the value is staged beside its key (readers keep the
        # old one), the marks are read, then the staged value replaces the old one at once.
        # An invalidation marks its tags before it deletes their members and their staged
        # values, so one that began after `since` is seen here, or leaves nothing to promote.
        staged = self._staged(stored)
        await self.client.set(staged, value, px=ttl_ms)
        if await self.marked_since(marks, since):
            await self.client.delete(staged)
            return 0
        return await self._promote([staged, stored])

    async def read(self, key: str) -> list[object]:
        clock = await self.client.get(self.clock)  # first: a cluster pipeline runs on many nodes
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.key(key)).pttl(self.key(key))  # type: ignore[attr-defined]
        return [clock, *await pipe.execute()]

    async def drop(self, tags: Collection[str]) -> object:
        sets, marks = self.tags(tags)
        client = self.client
        clock = await client.incr(self.clock)
        await asyncio.gather(*(client.set(mark, clock, px=MARK_MS) for mark in marks))
        popped = await asyncio.gather(*(self._pop([tag]) for tag in sets))
        members = {member for each in popped for member in each}
        deleted = 0
        if members:  # their staged copies first (same slots): none is promoted after
            await client.delete(*(self._staged(member.decode()) for member in members))
            # redis-py's cluster client sends one DEL per hash slot, in one pipeline per node.
            deleted = await client.delete(*members)
        return [deleted, await client.incr(self.clock)]  # done: the clock moves on
