"""RedisStore: a cache store shared by every replica, that fails open.

Redis is an optimisation here, never a dependency of a response: any failure (refused, timed out,
hung, an error reply, an unexpected value) is served as a miss and writes are dropped. A circuit
breaker keeps a hung server from costing a timeout per request: after a failure no call reaches
the network for ``retry_after`` seconds, then a single call probes (the others still skip), and its
outcome closes or reopens the circuit. Nothing needs a restart.

Layout under the prefix (default ``fastapi-serdes:``): ``k:<key>`` holds a value, ``l:<key>`` a
lock, ``t:<tag>`` a sorted set of the value keys stored with the tag, scored by when they expire.
Scores let each write drop the members that have already expired, so a hot tag never grows past
its live keys; the set itself expires with its longest-lived member.

Standalone Redis (or a proxy that keeps a script's keys together): the tag scripts touch keys they
do not declare, which Redis Cluster refuses.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, Final

from .._types import check_positive

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import MaxConnectionsError, ResponseError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides redis
    raise ImportError(
        "RedisStore needs the redis package: pip install 'fastapi-serdes[redis]'"
    ) from exc

try:  # redis-py 7.1+ deprecates lib_name / lib_version in favour of driver_info
    from redis.driver_info import DriverInfo  # noqa: F401
except ImportError:  # pragma: no cover - older redis-py
    _NO_SETINFO: Mapping[str, Any] = MappingProxyType({"lib_name": None, "lib_version": None})
else:
    _NO_SETINFO = MappingProxyType({"driver_info": None})

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX: Final = "fastapi-serdes:"
DEFAULT_TIMEOUT: Final = 0.05
DEFAULT_RETRY_AFTER: Final = 5.0
DEFAULT_MAX_ITEM_BYTES: Final = 1024 * 1024

logger = logging.getLogger("fastapi_serdes")

# KEYS[1]: the value key; KEYS[2..]: tag keys. ARGV[1]: the value; ARGV[2]: the TTL in ms.
_SET_SCRIPT: Final = """
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if #KEYS > 1 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 2, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
    if redis.call('PTTL', KEYS[i]) < ttl then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
return 1
"""

# KEYS: tag keys. Deletes every member of each tag, then the tag; returns how many values went.
_INVALIDATE_SCRIPT: Final = """
local n = 0
for i = 1, #KEYS do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  -- unpack() is limited by Lua's stack, so delete in batches
  for j = 1, #members, 1000 do
    n = n + redis.call('DEL', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('DEL', KEYS[i])
end
return n
"""

# KEYS[1]: the lock key; ARGV[1]: our token. Compare-and-delete, so a lock that expired and was
# taken by another replica is not released by us.
_RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisStore:
    """A Redis-backed store (redis.asyncio) with short timeouts, no retries and a circuit breaker.

    Pass either ``url`` (the store builds and owns the client, with ``timeout`` on connect and
    read and no retries) or ``client`` (yours, used as configured and left open by
    :meth:`aclose`; it must not decode responses). Every call is also bounded by ``timeout`` as a
    whole, so a hung server costs one timeout, then nothing until ``retry_after`` has passed.

    Args:
        url: a Redis URL such as ``redis://localhost:6379/0``.
        client: an existing ``redis.asyncio.Redis`` instead of ``url``.
        prefix: prepended to every key, so several apps can share one database.
        timeout: the most one call may take, in seconds (default 0.05).
        retry_after: seconds Redis is skipped after a failure before one call probes it.
        max_item_bytes: the largest value stored; larger ones are not sent (a big write on a
            short timeout would time out and open the circuit).
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    ) -> None:
        check_positive("timeout", timeout, "number of seconds")
        check_positive("retry_after", retry_after, "number of seconds")
        check_positive("max_item_bytes", max_item_bytes, "int (bytes)")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        if (url is None) == (client is None):
            raise ValueError(
                f"pass exactly one of url and client, got url={url!r} and client={client!r}"
            )
        if client is None:
            assert url is not None  # checked above; narrows the type
            client = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # redis-py retries three times by default: on a hung server that is four
                # timeouts per call. One failure is enough to open the circuit.
                retry=Retry(NoBackoff(), 0),
                # No CLIENT SETINFO on connect: two round trips fewer per new connection, which
                # keeps a cold burst of connections inside the timeout (240 ms -> 100 ms for 100).
                **_NO_SETINFO,
            )
            self._owns_client = True
        elif not isinstance(client, Redis):
            raise TypeError(f"client must be a redis.asyncio.Redis, got {client!r}")
        else:
            if client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError(
                    "client must return bytes: build it with decode_responses=False, "
                    "got decode_responses=True"
                )
            self._owns_client = False
        self._client = client
        self.prefix = prefix
        self.timeout = float(timeout)
        self.retry_after = float(retry_after)
        self.max_item_bytes = max_item_bytes
        # One token per store: a lock's value says which replica holds it.
        self._token = secrets.token_hex(16).encode()
        self._set_script = client.register_script(_SET_SCRIPT)
        self._invalidate_script = client.register_script(_INVALIDATE_SCRIPT)
        self._release_script = client.register_script(_RELEASE_SCRIPT)
        # Circuit breaker: when open, no call reaches Redis before _open_until (monotonic).
        self._open_until: float | None = None
        self._probing = False  # a half-open probe is in flight; the others keep skipping
        self._failing = False  # inside a failure streak, which is logged once

    def __repr__(self) -> str:
        return (
            f"RedisStore(prefix={self.prefix!r}, timeout={self.timeout}, "
            f"retry_after={self.retry_after}, available={self.available})"
        )

    @property
    def available(self) -> bool:
        """False while the circuit is open (Redis failed and is being skipped); for health checks.

        The flag changes only when a call reaches Redis; :meth:`ping` makes one.
        """
        return self._open_until is None

    async def ping(self) -> bool:
        """Ask Redis (through the circuit breaker) whether it answers; True if it does."""
        return await self._call(self._client.ping, fallback=False) is True

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (absent, expired, or Redis failed)."""
        value = await self._call(lambda: self._client.get(self._key(key)), fallback=None)
        if value is None or isinstance(value, bytes):
            return value
        self._failed(TypeError(f"GET returned {type(value).__name__}, not bytes"), trip=False)
        return None

    async def set(self, key: str, value: bytes, *, ttl: float, tags: Collection[str] = ()) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds, findable by each of ``tags``.

        A value over ``max_item_bytes`` is not sent, and an older value under ``key`` is deleted.
        """
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        ttl_ms = _ms(ttl)
        if len(value) > self.max_item_bytes:
            await self.delete(key)
            return False
        keys = [self._key(key), *(f"{self.prefix}t:{tag}" for tag in set(tags))]
        failed = object()
        result = await self._call(lambda: self._set_script(keys, [value, ttl_ms]), fallback=failed)
        return result is not failed

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._call(lambda: self._client.delete(self._key(key)), fallback=0)

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every key stored with any of ``tags``; return how many values were deleted."""
        keys = [f"{self.prefix}t:{tag}" for tag in set(tags)]
        if not keys:
            return 0
        deleted = await self._call(lambda: self._invalidate_script(keys), fallback=0)
        return deleted if isinstance(deleted, int) else 0

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
        """Close the client if the store built it from ``url``; a passed ``client`` stays open."""
        if self._owns_client:
            try:
                await self._client.aclose()
            except Exception:  # closing is best effort: the connections may be dead already
                logger.debug("closing the Redis client failed", exc_info=True)

    def _key(self, key: str) -> str:
        return f"{self.prefix}k:{key}"

    async def _call(self, command: Callable[[], Awaitable[object]], *, fallback: object) -> object:
        """Run one Redis command through the circuit breaker; ``fallback`` on any failure.

        Replies are ``object``: each caller checks the type it expects, so an unexpected reply is
        a miss rather than an exception further up.
        """
        probe = False
        if self._open_until is not None:
            if self._probing or time.monotonic() < self._open_until:
                return fallback  # open: no network at all
            self._probing = probe = True  # half-open: this call is the probe
        try:
            # The socket timeouts bound each read; this bounds connect + write + read together
            # (and works for a passed client configured with long timeouts or retries).
            async with asyncio.timeout(self.timeout):
                result = await command()
        except (ResponseError, MaxConnectionsError) as exc:
            # An error reply (WRONGTYPE on a key someone else wrote, OOM, READONLY...) came back
            # quickly, or a burst used up the client's pool (100 connections by default): this
            # call fails open, but the server answers, so the circuit stays closed.
            self._failed(exc, trip=False)
            return fallback
        except Exception as exc:  # refused, timed out, reset, a protocol error: skip Redis
            self._failed(exc, trip=True)
            return fallback
        finally:
            if probe:
                self._probing = False
        self._succeeded()
        return result

    def _failed(self, exc: Exception, *, trip: bool) -> None:
        if trip:
            self._open_until = time.monotonic() + self.retry_after
        if not self._failing:
            self._failing = True
            logger.warning(
                "Redis cache store failed (%s: %s); serving uncached%s",
                type(exc).__name__,
                exc,
                f", retrying in {self.retry_after:g} s" if trip else "",
            )

    def _succeeded(self) -> None:
        self._open_until = None
        if self._failing:
            self._failing = False
            logger.info("Redis cache store answers again; caching resumed")
