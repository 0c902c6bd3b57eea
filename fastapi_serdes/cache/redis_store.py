"""RedisStore: a cache store shared by every replica, that fails open.

Redis is an optimisation here, never a dependency of a response: any failure (refused, timed out,
hung, an error reply, an unexpected value) is served as a miss and writes are dropped. A circuit
breaker keeps a hung server from costing a timeout per request: after a failure no call reaches
the network for ``retry_after`` seconds, then a single call probes (the others still skip), and its
outcome closes or reopens the circuit. The timeout times Redis, not this process (see the class).

Layout under the prefix (default ``fastapi-serdes:``): ``k:<key>`` holds a value, ``l:<key>`` a
lock, ``t:<tag>`` a sorted set of the value keys stored with the tag, scored by when they expire
(each write drops expired members; the set expires with its longest-lived member), ``clock``
the invalidation clock and ``i:<tag>`` the clock value of the tag's last invalidation (kept an
hour), which refuses a value computed before it and written after. One server or
Sentinel: a write and an invalidation are each one atomic script. Redis Cluster puts a value and
its tag sets in different hash slots, so each script touches one key: a write adds the value to
its tag sets before storing it (never a value that invalidation cannot find), an invalidation
empties each tag set atomically, then deletes its members slot by slot.
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
from .redis_scripts import (
    INVALIDATE_SCRIPT,
    POP_SCRIPT,
    PROMOTE_SCRIPT,
    RELEASE_SCRIPT,
    SET_SCRIPT,
    TAG_SCRIPT,
)

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff
    from redis.exceptions import MaxConnectionsError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError
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
#: However busy the loop, a call gives up after ``timeout`` plus this many seconds of wall clock.
BUSY_LOOP_GRACE: Final = 5.0
# How long a tag's invalidation mark is kept: longer than any value takes to compute.
_MARK_MS: Final = 3_600_000

logger = logging.getLogger("fastapi_serdes")


def _staged(key: str) -> str:
    """Cluster: where a value waits beside its key (same hash slot) while its tags are checked."""
    at = key.rfind("k:{")
    return key[:at] + "n:{" + key[at + 3 :]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _client_options(timeout: float) -> dict[str, Any]:
    """What a client built by the store is configured with."""
    # Socket timeouts count the wall clock (a busy loop too): only a backstop here (see _call).
    # No retries: on a hung server, redis-py's default three make four timeouts a call. No
    # CLIENT SETINFO on connect: two round trips fewer per new connection.
    backstop = timeout + BUSY_LOOP_GRACE
    return {"socket_timeout": backstop, "socket_connect_timeout": backstop,
            "retry": Retry(NoBackoff(), 0), **_NO_SETINFO}  # fmt: skip


class RedisStore:
    """A Redis-backed store (redis.asyncio) with a short timeout, no retries and a circuit breaker.

    Pass either ``url`` (the store builds and owns the client, with no retries) or ``client``
    (yours, used as configured and left open by :meth:`aclose`; it must not decode responses).
    For Sentinel, see :meth:`from_sentinel`; ``cluster`` says whether the client is a cluster's.

    The timeout times Redis, not the event loop: a call ends once ``timeout`` has passed since
    the latest of its start, Redis's last answer (to any call of this store) and the last time
    the loop was found busy (a watch timer, every ``timeout / 10`` while calls wait, fired late).
    A burst of cold requests or a CPU-bound handler delays the reading of replies that arrived
    in time; counting that against Redis would open the circuit when the cache is needed most.
    A loop never free for that long is bounded by the wall clock: ``timeout + BUSY_LOOP_GRACE``.
    So a hung server costs one timeout, then nothing until ``retry_after`` has passed.

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
            build = RedisCluster.from_url if cluster else Redis.from_url
            client = build(url, **_client_options(timeout))
            self._owns_client = True
        elif cluster:
            raise ValueError("cluster=True applies to a url; a RedisCluster client is detected")
        elif not isinstance(client, Redis | RedisCluster):
            raise TypeError(f"client must be a redis.asyncio.Redis or RedisCluster, got {client!r}")
        elif client.get_encoder().decode_responses:
            raise ValueError(
                "client must return bytes: build it with decode_responses=False, "
                "got decode_responses=True"
            )
        else:
            self._owns_client = False
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
        self._tag_script = client.register_script(TAG_SCRIPT)
        self._invalidate_script = client.register_script(INVALIDATE_SCRIPT)
        self._pop_script = client.register_script(POP_SCRIPT)
        self._release_script = client.register_script(RELEASE_SCRIPT)
        self._promote_script = client.register_script(PROMOTE_SCRIPT)
        # Circuit breaker: when open, no call reaches Redis before _open_until (monotonic).
        self._open_until: float | None = None
        # Tags whose invalidation failed, invalidated once Redis answers again.
        self._replay: set[str] = set()
        #: The task invalidating them, once started.
        self.replaying: asyncio.Task[int] | None = None
        self._probing = False  # a half-open probe is in flight; the others keep skipping
        self._failing = False  # inside a failure streak, which is logged once
        # Timing (see _call), in the loop's clock: the calls waiting and their starts.
        self._waiting: dict[asyncio.Timeout, float] = {}
        self._answered_at = self._busy_at = float("-inf")
        self._watch: asyncio.TimerHandle | None = None
        self._watch_loop: asyncio.AbstractEventLoop | None = None
        self._watch_due = 0.0
        self._watch_every = max(self.timeout / 10, 0.001)

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
    ) -> RedisStore:
        """A store on the master that ``sentinel`` names ``service_name``, following failovers.

        The store builds and owns the master's client (no retries, like a ``url``); ``sentinel``
        (a ``redis.asyncio.sentinel.Sentinel``, with its own timeouts) stays yours.
        """
        check_positive("timeout", timeout, "number of seconds")
        client = sentinel.master_for(service_name, **_client_options(timeout))
        store = cls(client=client, prefix=prefix, timeout=timeout, retry_after=retry_after,
                    max_item_bytes=max_item_bytes)  # fmt: skip
        store._owns_client = True
        return store

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

    async def clock(self) -> int | None:
        """The invalidation clock (shared by every replica), read before computing a value and
        passed to :meth:`set` as ``since``; None when Redis failed."""
        failed = object()
        value: Any = await self._call(lambda: self._client.get(self._clock_key), fallback=failed)
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
        return result is not failed and result != 0

    async def _write(self, keys: list[str], value: bytes, ttl_ms: int, since: int | None) -> object:
        count = (len(keys) - 1) // 2
        if not self.cluster:
            return await self._set_script(
                keys, [value, ttl_ms, count, "" if since is None else since]
            )
        key, tags, marks = keys[0], keys[1 : 1 + count], keys[1 + count :]
        if tags:  # first: a stored value is always found by its tags
            await asyncio.gather(*(self._tag_script([tag], [key, ttl_ms]) for tag in tags))
        if since is None or not marks:
            return await self._client.set(key, value, px=ttl_ms)
        # The marks live in other slots: the value is staged beside its key (readers keep the
        # old one), the marks are read, then the staged value replaces the old one at once.
        # An invalidation marks its tags before it deletes their members and their staged
        # values, so one that began after `since` is seen here, or leaves nothing to promote.
        staged = _staged(key)
        await self._client.set(staged, value, px=ttl_ms)
        found = await asyncio.gather(*(self._client.get(mark) for mark in marks))
        if any(mark is not None and int(mark) > since for mark in found):
            await self._client.delete(staged)
            return 0
        return await self._promote_script([staged, key])

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        await self._call(lambda: self._client.delete(self._key(key)), fallback=0)

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every key stored with any of ``tags``; return how many values were deleted.

        The tags are first marked with the next value of the shared :meth:`clock`, so a value
        computed before the invalidation and stored after it is refused (on every replica).
        An invalidation is tried even while the circuit is open (this replica's Redis calls
        failing, perhaps only because its event loop was busy, while other replicas keep
        serving the entries); once such a try failed, the tags are kept and invalidated with
        the first call after the circuit closed again."""
        unique = set(tags) | self._replay
        if not unique:
            return 0
        if self._open_until is not None and self._replay:
            self._replay = unique  # a forced try already failed in this open spell
            return 0
        self._replay = set()
        keys = [f"{self.prefix}t:{tag}" for tag in unique]
        marks = [f"{self.prefix}i:{tag}" for tag in unique]
        deleted = await self._call(lambda: self._drop(keys, marks), fallback=None, force=True)
        if deleted is None:
            self._replay = unique
            logger.error(
                "fastapi-serdes: invalidating %d tag(s) in Redis failed; retried once Redis "
                "answers again (until then other replicas may serve the old entries)",
                len(keys),
            )
            return 0
        return deleted if isinstance(deleted, int) else 0

    async def _drop(self, keys: list[str], marks: list[str]) -> object:
        if not self.cluster:
            return await self._invalidate_script(
                [self._clock_key, *keys, *marks], [len(keys), _MARK_MS]
            )
        clock = await self._client.incr(self._clock_key)
        await asyncio.gather(*(self._client.set(mark, clock, px=_MARK_MS) for mark in marks))
        popped = await asyncio.gather(*(self._pop_script([key]) for key in keys))
        members = {member for each in popped for member in each}
        staged = {_staged(member.decode()) for member in members}  # same slots: no promotion
        if staged:
            await self._client.delete(*staged)
        # redis-py's cluster client sends one DEL per hash slot, in one pipeline per node.
        return await self._client.delete(*members) if members else 0

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

    def _key(self, key: str) -> str:
        # On a cluster, the braces put a value and its pending mark in one hash slot.
        return f"{self.prefix}k:{{{key}}}" if self.cluster else f"{self.prefix}k:{key}"

    async def _call(
        self, command: Callable[[], Awaitable[object]], *, fallback: object, force: bool = False
    ) -> object:
        """Run one Redis command through the circuit breaker and the timeout (see the class);
        ``fallback`` on any failure. ``force``: try even while the circuit is open (an
        invalidation: skipping it would leave other replicas serving what a write changed).

        Replies are ``object``: each caller checks the type it expects, so an unexpected reply is
        a miss rather than an exception further up.
        """
        probe = False
        if self._open_until is not None and not force:
            if self._probing or time.monotonic() < self._open_until:
                return fallback  # open: no network at all
            self._probing = probe = True  # half-open: this call is the probe
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout_at(start + self.timeout + BUSY_LOOP_GRACE) as deadline:
                self._start_waiting(loop, deadline, start)
                try:
                    result = await command()
                finally:
                    self._stop_waiting(deadline)
        except (ResponseError, MaxConnectionsError) as exc:
            # An error reply (WRONGTYPE on a key someone else wrote, OOM, READONLY...) came back
            # quickly, or a burst used up the client's pool (100 connections by default): this
            # call fails open, but the server answers, so the circuit stays closed.
            if isinstance(exc, ResponseError):
                self._answered_at = loop.time()
            self._failed(exc, trip=False)
            return fallback
        except (TimeoutError, RedisTimeoutError) as exc:
            # Redis is silent, unless it answered another call meanwhile: this one alone is stuck.
            self._failed(exc, trip=loop.time() - self._answered_at >= self.timeout)
            return fallback
        except Exception as exc:  # refused, reset, a protocol error: skip Redis
            self._failed(exc, trip=True)
            return fallback
        finally:
            if probe:
                self._probing = False
        self._answered_at = loop.time()
        self._succeeded()
        return result

    def _start_waiting(
        self, loop: asyncio.AbstractEventLoop, deadline: asyncio.Timeout, start: float
    ) -> None:
        if self._watch_loop is not loop:  # used from another loop now (asyncio.run per test):
            self._waiting.clear()  # what waited on the old one can no longer be ended from here
            self._watch, self._watch_loop = None, loop
        self._waiting[deadline] = start
        if self._watch is None:
            self._arm_watch(loop, start)

    def _stop_waiting(self, deadline: asyncio.Timeout) -> None:
        self._waiting.pop(deadline, None)  # the watch may have ended it already
        if not self._waiting and self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _arm_watch(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        self._watch_due = now + self._watch_every
        self._watch = loop.call_at(self._watch_due, self._check_deadlines, loop)

    def _check_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if now - self._watch_due > self._watch_every:  # late: the loop was busy
            self._busy_at = now
        quiet_since = max(self._answered_at, self._busy_at)
        for deadline, start in list(self._waiting.items()):
            if now - max(start, quiet_since) >= self.timeout and not deadline.expired():
                del self._waiting[deadline]
                deadline.reschedule(now)  # the call raises TimeoutError
        self._watch = None
        if self._waiting:
            self._arm_watch(loop, now)

    def _failed(self, exc: Exception, *, trip: bool) -> None:
        opening = trip and self._open_until is None  # logged even inside a failure streak
        if trip:
            self._open_until = time.monotonic() + self.retry_after
        if not self._failing or opening:
            self._failing = True
            logger.warning(
                "Redis cache store failed (%s: %s); serving uncached%s",
                type(exc).__name__,
                exc,
                f", retrying in {self.retry_after:g} s" if trip else "",
            )

    def _succeeded(self) -> None:
        if self._open_until is not None and self._replay:
            # Invalidations that failed while the circuit was open: now.
            self.replaying = asyncio.get_running_loop().create_task(self.invalidate(()))
        self._open_until = None
        if self._failing:
            self._failing = False
            logger.info("Redis cache store answers again; caching resumed")
