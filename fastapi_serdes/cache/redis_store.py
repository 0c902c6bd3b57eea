"""RedisStore: a cache store shared by every replica, that fails open.

Redis is an optimisation here, never a dependency of a response: any failure (refused, timed out,
hung, an error reply, an unexpected value) is served as a miss and writes are dropped; a circuit
breaker keeps a hung server from costing a timeout per request (:mod:`.redis_client`). With
``near_bytes``, an in-process tier in front of Redis serves hits without a round trip, coherent
across replicas by the shared clock and a lease (:mod:`.near_tier`).

Layout under the prefix (default ``fastapi-serdes:``): ``k:<key>`` holds a value, ``l:<key>`` a
lock, ``t:<tag>`` a sorted set of the value keys stored with the tag, scored by when they expire
(each write drops expired members; the set expires with its longest-lived member), ``clock``
the invalidation clock and ``i:<tag>`` the clock value of the tag's last invalidation (kept an
hour), which refuses a value computed before it and written after. One server or
Sentinel: a write and an invalidation are each one atomic script; a Redis Cluster takes several
steps instead (:mod:`.redis_cluster`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Collection
from typing import Any, Final

from .._types import check_positive
from .near_tier import DEFAULT_LEASE, NearTier
from .redis_client import Circuit, client_for, client_options
from .redis_cluster import MARK_MS, Cluster
from .redis_scripts import INVALIDATE_SCRIPT, RELEASE_SCRIPT, SET_SCRIPT

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel
except ImportError as exc:  # pragma: no cover - exercised by a test that hides redis
    raise ImportError(
        "RedisStore needs the redis package: pip install 'fastapi-serdes[redis]'"
    ) from exc

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX: Final = "fastapi-serdes:"
DEFAULT_TIMEOUT: Final = 0.05
DEFAULT_RETRY_AFTER: Final = 5.0
DEFAULT_MAX_ITEM_BYTES: Final = 1024 * 1024
logger = logging.getLogger("fastapi_serdes")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisStore:
    """A Redis-backed store (redis.asyncio) with a short timeout, no retries and a circuit breaker.

    Pass either ``url`` (the store builds and owns the client, with no retries) or ``client``
    (yours, used as configured and left open by :meth:`aclose`; it must not decode responses).
    For Sentinel, see :meth:`from_sentinel`; ``cluster`` says whether the client is a cluster's.

    The timeout times Redis, not the event loop (a burst of cold requests delays the reading of
    replies that arrived in time): see :mod:`~fastapi_serdes.cache.redis_client`. A hung server
    costs one timeout, then nothing until ``retry_after`` has passed.

    Args:
        url: a Redis URL such as ``redis://localhost:6379/0``, or ``rediss://...`` for TLS.
        client: an existing ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            instead of ``url``.
        cluster: ``url`` names a node of a Redis Cluster (the store builds a ``RedisCluster``).
        prefix: prepended to every key: give each app sharing a Redis its own (e.g. ``"shop:"``).
        timeout: seconds Redis may leave a call unanswered while the event loop is free to read
            its reply (default 0.05); see above.
        retry_after: seconds Redis is skipped after a failure before one call probes it.
        max_item_bytes: the largest value stored; larger ones are not sent (a big write on a
            short timeout would time out and open the circuit).
        near_bytes: turn on the in-process tier in front of Redis, bounded to this many bytes
            (see :mod:`~fastapi_serdes.cache.near_tier`): a hit costs no round trip, and an
            invalidation returns ``near_lease`` seconds later, when no replica can serve what
            it dropped. Give every replica sharing the prefix the same lease.
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
        self.cluster = isinstance(client, RedisCluster)
        self.prefix = prefix
        self.timeout = float(timeout)
        self.retry_after = float(retry_after)
        self.max_item_bytes = max_item_bytes
        self._clock_key = f"{prefix}clock"
        # One token per store: a lock's value says which replica holds it.
        self._token = secrets.token_hex(16).encode()
        self._set_script = client.register_script(SET_SCRIPT)
        self._invalidate_script = client.register_script(INVALIDATE_SCRIPT)
        self._release_script = client.register_script(RELEASE_SCRIPT)
        self._cluster = Cluster(client) if isinstance(client, RedisCluster) else None
        self._circuit = Circuit(self.timeout, self.retry_after, self._closed)
        self._call = self._circuit.call
        # Tags whose invalidation failed, invalidated once Redis answers again.
        self._replay: set[str] = set()
        #: The task invalidating them, once started.
        self.replaying: asyncio.Task[int] | None = None
        self._reads = (self._read_clock, self._read_through)  # what the tier reads Redis with
        #: The in-process tier in front of Redis (``near_bytes``), if any.
        self.near = None if near_bytes is None else NearTier(near_bytes, near_lease)

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
        return self._bytes(
            await self._call(lambda: self._client.get(self._key(key)), fallback=None)
        )

    async def _read_through(self, key: str) -> tuple[int | None, bytes | None, float]:
        """For the in-process tier: the clock, then the value and its remaining TTL, in one
        round trip on one server (a pipeline runs in order; the clock first on a cluster)."""

        async def read() -> list[object]:
            pipe = self._client.pipeline(transaction=False)
            clock = await self._client.get(self._clock_key) if self.cluster else None
            if not self.cluster:
                pipe.get(self._clock_key)
            pipe.get(self._key(key)).pttl(self._key(key))  # type: ignore[attr-defined]
            replies = list(await pipe.execute())
            return [clock, *replies] if self.cluster else replies

        reply = await self._call(read, fallback=None)
        if not isinstance(reply, list) or len(reply) != 3:
            return None, None, 0.0
        clock, value, ttl_ms = reply
        return (
            self._clock_value(clock),
            self._bytes(value),
            ttl_ms / 1000 if isinstance(ttl_ms, int) else 0.0,
        )

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
        failed = object()
        value = await self._call(lambda: self._client.get(self._clock_key), fallback=failed)
        return None if value is failed else self._clock_value(value)

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
        marks = [f"{self.prefix}i:{tag}" for tag in set(tags)]
        if not marks:
            return False
        failed = object()
        found: Any = await self._call(
            lambda: asyncio.gather(*(self._client.get(mark) for mark in marks)), fallback=failed
        )
        if found is failed:
            return True
        return any(mark is not None and int(mark) > since for mark in found)

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
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        ttl_ms = _ms(ttl)
        if len(value) > self.max_item_bytes:
            await self.delete(key)
            return False
        unique = set(tags)
        keys = [self._key(key), *(f"{self.prefix}t:{tag}" for tag in unique)]
        keys += [f"{self.prefix}i:{tag}" for tag in unique]
        failed = object()
        result = await self._call(lambda: self._write(keys, value, ttl_ms, since), fallback=failed)
        stored = result is not failed and result != 0
        if self.near is not None and stored:  # under the clock the tier holds: joins it
            await self.near.put(key, value, ttl=ttl, clock=since)
        elif self.near is not None and result is not failed:  # failed: the copy is a fallback
            await self.near.delete(key)
        return stored

    async def _write(self, keys: list[str], value: bytes, ttl_ms: int, since: int | None) -> object:
        count = (len(keys) - 1) // 2
        if self._cluster is None:
            return await self._set_script(
                keys, [value, ttl_ms, count, "" if since is None else since]
            )
        tags, marks = keys[1 : 1 + count], keys[1 + count :]
        return await self._cluster.write(keys[0], tags, marks, value, ttl_ms, since)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        if self.near is not None:
            await self.near.delete(key)
        await self._call(lambda: self._client.delete(self._key(key)), fallback=0)

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every key stored with any of ``tags``; return how many values were deleted.

        The tags are first marked with the next value of the shared :meth:`clock`, so a value
        computed before the invalidation and stored after it is refused (on every replica).
        An invalidation is tried even while the circuit is open (this replica's Redis calls
        failing, perhaps only because its event loop was busy, while other replicas keep
        serving the entries); once such a try failed, the tags are kept and invalidated with
        the first call after the circuit closed again.

        With the in-process tier, this replica's tier is emptied, and the call returns
        ``near_lease`` seconds after Redis dropped the entries: by then no replica's tier can
        serve them (see :mod:`~fastapi_serdes.cache.near_tier`)."""
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
        """Invalidate ``tags`` in Redis (forced through an open circuit): how many values went
        and the clock after; (None, None) when it failed."""
        keys = [f"{self.prefix}t:{tag}" for tag in tags]
        marks = [f"{self.prefix}i:{tag}" for tag in tags]

        async def drop() -> object:
            if self._cluster is not None:
                return await self._cluster.drop(self._clock_key, keys, marks)
            return await self._invalidate_script(
                [self._clock_key, *keys, *marks], [len(keys), MARK_MS]
            )

        reply = await self._call(drop, fallback=None, force=True)
        if not isinstance(reply, list) or len(reply) != 2:
            return None, None
        deleted, clock = (value if isinstance(value, int) else None for value in reply)
        return deleted or 0, clock

    async def acquire(self, key: str, ttl: float) -> bool:
        """Take the lock ``key`` for ``ttl`` seconds across replicas (SET NX PX).

        True if this store got it, and also when Redis failed: the caller then computes, which
        is what it would do without a lock.
        """
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        lock = f"{self.prefix}l:{key}"
        got = await self._call(
            lambda: self._client.set(lock, self._token, nx=True, px=_ms(ttl)), fallback=True
        )
        return got is True

    async def release(self, key: str) -> None:
        """Release the lock ``key`` if this store holds it; another's lock is left alone."""
        lock = f"{self.prefix}l:{key}"
        await self._call(lambda: self._release_script([lock], [self._token]), fallback=0)

    async def aclose(self) -> None:
        """Close the client if the store built it; a passed ``client`` stays open."""
        if self._owns_client:
            try:
                await self._client.aclose()
            except Exception:  # closing is best effort: the connections may be dead already
                logger.debug("closing the Redis client failed", exc_info=True)

    def _closed(self) -> None:
        """Redis answers again after the circuit was open: invalidations that failed meanwhile,
        now."""
        if self._replay:
            self.replaying = asyncio.get_running_loop().create_task(self.invalidate(()))

    def _key(self, key: str) -> str:
        # On a cluster, the braces put a value and its pending mark in one hash slot.
        return f"{self.prefix}k:{{{key}}}" if self.cluster else f"{self.prefix}k:{key}"
