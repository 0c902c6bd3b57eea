"""RedisStore: a cache store shared by every replica, that fails open.

Redis is an optimisation here, never a dependency of a response: any failure (refused, timed out,
hung, an error reply, an unexpected value) is served as a miss and writes are dropped; a circuit
breaker keeps a hung server from costing a timeout per request (:mod:`.redis_client`). With
``near_bytes``, an in-process tier in front of Redis serves hits without a round trip
(:mod:`.near_tier`).

The keys it keeps under its prefix, and how they are written on one server or a cluster, are in
:mod:`.redis_scripts`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Collection
from typing import Final

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel
except ImportError as exc:  # pragma: no cover - exercised by a test that hides redis
    raise ImportError(
        "RedisStore needs the redis package: pip install 'fastapi-serdes[redis]'"
    ) from exc

from .._types import check_positive
from .near_tier import DEFAULT_LEASE, NearTier
from .redis_client import Circuit, client_for, client_options
from .redis_scripts import Cluster, Server

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX: Final = "fastapi-serdes:"
DEFAULT_TIMEOUT: Final = 0.05
DEFAULT_RETRY_AFTER: Final = 5.0
DEFAULT_MAX_ITEM_BYTES: Final = 1024 * 1024
_FAILED: Final = object()  # a call's fallback when a failure must be told from any reply
logger = logging.getLogger("fastapi_serdes")


def _ms(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, round(ttl * 1000))


class RedisStore:
    """A Redis-backed store (redis.asyncio) with a short timeout, no retries and a circuit breaker.

    Pass either ``url`` (the store builds and owns the client, with no retries) or ``client``
    (yours, used as configured and left open by :meth:`aclose`; it must not decode responses).
    For Sentinel, see :meth:`from_sentinel`.

    Args:
        url: a Redis URL such as ``redis://localhost:6379/0``, or ``rediss://...`` for TLS.
        client: an existing ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            instead of ``url``.
        cluster: ``url`` names a node of a Redis Cluster (the store builds a ``RedisCluster``).
        prefix: prepended to every key: give each app sharing a Redis its own (e.g. ``"shop:"``).
        timeout: seconds Redis may leave a call unanswered while the event loop is free to read
            its reply (default 0.05). A hung server costs one timeout, then nothing until
            ``retry_after`` has passed.
        retry_after: seconds Redis is skipped after a failure before one call probes it.
        max_item_bytes: the largest value stored; larger ones are not sent (a big write on a
            short timeout would time out and open the circuit).
        near_bytes: turn on the in-process tier in front of Redis, bounded to this many bytes:
            a hit costs no round trip, and an invalidation returns ``near_lease`` seconds later,
            when no replica can serve what it dropped. Give every replica sharing the prefix the
            same lease.
        near_lease: how long a reading of the shared clock lets the tier serve (default 0.1 s).
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        cluster: bool = False,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        near_bytes: int | None = None,
        near_lease: float = DEFAULT_LEASE,
    ) -> None:
        check_positive("timeout", timeout, "number of seconds")
        check_positive("retry_after", retry_after, "number of seconds")
        check_positive("max_item_bytes", max_item_bytes, "int (bytes)")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        client, self._owns_client = client_for(url, client, cluster=cluster, timeout=timeout)
        self._client = client
        # This store's keys, and how they are written: one server's scripts or a cluster's steps.
        self._redis = (
            Cluster(client, prefix) if isinstance(client, RedisCluster) else Server(client, prefix)
        )
        self.cluster = isinstance(self._redis, Cluster)
        self.prefix = prefix
        self.timeout = float(timeout)
        self.retry_after = float(retry_after)
        self.max_item_bytes = max_item_bytes
        self._token = secrets.token_hex(16).encode()  # a lock's value: which replica holds it
        self._circuit = Circuit(self.timeout, self.retry_after, self._closed)
        self._call = self._circuit.call
        # Tags whose invalidation failed, invalidated once Redis answers again, by this task.
        self._replay: set[str] = set()
        self.replaying: asyncio.Task[int] | None = None
        #: The in-process tier in front of Redis (``near_bytes``), if any, and how it reads Redis.
        self.near = None if near_bytes is None else NearTier(near_bytes, near_lease)
        self._reads = (self._read_clock, self._read_through)

    @classmethod
    def from_sentinel(
        cls,
        sentinel: Sentinel,
        service_name: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        near_bytes: int | None = None,
    ) -> RedisStore:
        """A store on the master that ``sentinel`` names ``service_name``, following failovers.

        The store builds and owns the master's client (no retries, like a ``url``); ``sentinel``
        (a ``redis.asyncio.sentinel.Sentinel``, with its own timeouts) stays yours.
        """
        check_positive("timeout", timeout, "number of seconds")
        client = sentinel.master_for(service_name, **client_options(timeout))
        store = cls(client=client, prefix=prefix, timeout=timeout, retry_after=retry_after,
                    max_item_bytes=max_item_bytes, near_bytes=near_bytes)  # fmt: skip
        store._owns_client = True
        return store

    def __repr__(self) -> str:
        return (
            f"RedisStore(prefix={self.prefix!r}, timeout={self.timeout}, "
            f"retry_after={self.retry_after}, near={self.near!r}, available={self.available})"
        )

    @property
    def available(self) -> bool:
        """False while the circuit is open (Redis failed and is being skipped); for health checks.

        The flag changes only when a call reaches Redis; :meth:`ping` makes one.
        """
        return self._circuit.open_until is None

    async def ping(self) -> bool:
        """Ask Redis (through the circuit breaker) whether it answers; True if it does."""
        return await self._call(self._client.ping, fallback=False) is True

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (absent, expired, or Redis failed)."""
        near = self.near
        if near is not None:  # the tier's copy at once when it may serve it (a warm hit)
            value = near.peek(key)
            return value if value is not None else await near.get(key, *self._reads)
        reply = await self._call(lambda: self._client.get(self._redis.key(key)), fallback=None)
        return self._bytes(reply)

    async def _read_through(self, key: str) -> tuple[int | None, bytes | None, float]:
        """For the in-process tier: the clock, then the value and its remaining TTL."""
        reply = await self._call(lambda: self._redis.read(key), fallback=None)
        if not isinstance(reply, list) or len(reply) != 3:
            return None, None, 0.0
        clock, value, ttl_ms = reply
        ttl = ttl_ms / 1000 if isinstance(ttl_ms, int) else 0.0
        return self._clock_value(clock), self._bytes(value), ttl

    def _bytes(self, value: object) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        self._circuit.failed(
            TypeError(f"GET returned {type(value).__name__}, not bytes"), trip=False
        )
        return None

    async def unverified(self, key: str) -> bytes | None:
        """The in-process tier's copy of ``key`` even when it cannot be checked (Redis failed):
        an answer only when the endpoint fails (``stale-if-error``); None without a tier."""
        return await self.near.unverified(key) if self.near is not None else None

    async def clock(self) -> int | None:
        """The invalidation clock (shared by every replica), read before computing a value and
        passed to :meth:`set` as ``since``; None when Redis failed. With the in-process tier,
        its reading while the lease holds (an earlier reading is as safe: it refuses more)."""
        near = self.near
        if near is not None and near.clock is not None and near.leased():
            return near.clock
        return await self._read_clock()

    async def _read_clock(self) -> int | None:
        value = await self._call(lambda: self._client.get(self._redis.clock), fallback=_FAILED)
        return self._clock_value(value)

    @staticmethod
    def _clock_value(value: object) -> int | None:
        if value is None:
            return 0  # never invalidated
        if not isinstance(value, bytes) or not value.isdigit():
            return None
        return int(value)

    async def invalidated_since(self, tags: Collection[str], since: int) -> bool:
        """Whether one of ``tags`` was invalidated (by any replica) after the :meth:`clock`
        reading ``since``; True when Redis failed (it cannot be told)."""
        _, marks = self._redis.tags(tags)
        if not marks:
            return False
        found = await self._call(lambda: self._redis.marked_since(marks, since), fallback=True)
        return found is not False

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

        A value over ``max_item_bytes`` is not sent, and an older value under ``key`` is deleted.
        With ``since`` (the :meth:`clock` read before the value was computed), a value one of
        whose tags was invalidated since, by any replica, is not stored.
        """
        ttl_ms = _ms(ttl)
        if len(value) > self.max_item_bytes:
            await self.delete(key)
            return False
        result = await self._call(
            lambda: self._redis.write(key, value, ttl_ms, tags, since), fallback=_FAILED
        )
        stored = result is not _FAILED and result != 0
        if self.near is not None and result is not _FAILED:  # failed: the copy is a fallback
            # Stored, it joins the tier under the clock the tier holds; refused, it is dropped.
            await self.near.put(key, value, ttl=ttl, clock=since if stored else None)
        return stored

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        if self.near is not None:
            await self.near.delete(key)
        await self._call(lambda: self._client.delete(self._redis.key(key)), fallback=0)

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every key stored with any of ``tags``; return how many values were deleted.

        The tags are first marked with the next value of the shared :meth:`clock`, so a value
        computed before the invalidation and stored after it is refused (on every replica).
        It is tried even while the circuit is open (this replica's calls may fail only because
        its loop was busy, while other replicas keep serving the entries); once such a try
        failed, the tags are invalidated with the first call after the circuit closed again.
        With the in-process tier, the call returns ``near_lease`` seconds after Redis dropped
        the entries, when no replica's tier can serve them."""
        unique = set(tags) | self._replay
        if not unique:
            return 0
        if self._circuit.open_until is not None and self._replay:
            self._replay = unique  # a forced try already failed in this open spell
            return 0
        self._replay = set()
        deleted, clock = await self._drop(unique)
        if self.near is not None:
            self.near.empty(clock)
        if deleted is None:
            self._replay = unique
            logger.error(
                "fastapi-serdes: invalidating %d tag(s) in Redis failed; retried once Redis "
                "answers again (until then other replicas may serve the old entries)",
                len(unique),
            )
            return 0
        if self.near is not None:
            await asyncio.sleep(self.near.lease)
        return deleted

    async def _drop(self, tags: Collection[str]) -> tuple[int | None, int | None]:
        """Invalidate ``tags`` in Redis: how many values went, the clock after (None: failed)."""
        reply = await self._call(lambda: self._redis.drop(tags), fallback=None, force=True)
        if not isinstance(reply, list) or len(reply) != 2:
            return None, None
        deleted, clock = (value if isinstance(value, int) else None for value in reply)
        return deleted or 0, clock

    async def acquire(self, key: str, ttl: float) -> bool:
        """Take the lock ``key`` for ``ttl`` seconds across replicas (SET NX PX).

        True if this store got it, and also when Redis failed: the caller then computes, which
        is what it would do without a lock.
        """
        px = _ms(ttl)
        lock = f"{self.prefix}l:{key}"
        got = await self._call(
            lambda: self._client.set(lock, self._token, nx=True, px=px), fallback=True
        )
        return got is True

    async def release(self, key: str) -> None:
        """Release the lock ``key`` if this store holds it; another's lock is left alone."""
        lock = f"{self.prefix}l:{key}"
        await self._call(lambda: self._redis.release([lock], [self._token]), fallback=0)

    async def aclose(self) -> None:
        """Close the client if the store built it; a passed ``client`` stays open."""
        if self._owns_client:
            try:
                await self._client.aclose()
            except Exception:  # closing is best effort: the connections may be dead already
                logger.debug("closing the Redis client failed", exc_info=True)

    def _closed(self) -> None:
        """Redis answers again: invalidate the tags whose invalidation failed meanwhile."""
        if self._replay:
            self.replaying = asyncio.get_running_loop().create_task(self.invalidate(()))
