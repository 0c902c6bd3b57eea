"""How a ``RedisStore`` talks to Redis: the client it builds, and the circuit breaker and timeout
around every call (docs/how-to/caching.md, "When Redis fails").

A call that fails answers its fallback. After a failure no call reaches the network for
``retry_after`` seconds, then a single call probes and its outcome closes or reopens the circuit.
The timeout times Redis, not the event loop: a call ends once ``timeout`` has passed since the
latest of its start, Redis's last answer to any call, and the last time a watch timer (every
``timeout / 10`` while calls wait) fired late, finding the loop busy. A loop never free for that
long is bounded by the wall clock: ``timeout + BUSY_LOOP_GRACE``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import Any, Final

# Imported by RedisStore only, once it checked that redis is installed.
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["BUSY_LOOP_GRACE", "Circuit", "client_for", "client_options"]

#: However busy the loop, a call gives up after ``timeout`` plus this many seconds of wall clock.
BUSY_LOOP_GRACE: Final = 5.0

# redis-py 7.1+ deprecates lib_name and lib_version in favour of driver_info.
_NO_SETINFO: Final = (
    ("driver_info",) if find_spec("redis.driver_info") else ("lib_name", "lib_version")
)
logger = logging.getLogger("fastapi_serdes")


def client_options(timeout: float) -> dict[str, Any]:
    """What a client built by the store is configured with."""
    # Socket timeouts count the wall clock (a busy loop too): only a backstop. No retries: on a
    # hung server, redis-py's default three make four timeouts a call. No CLIENT SETINFO on
    # connect: two round trips fewer per connection.
    backstop = timeout + BUSY_LOOP_GRACE
    return {"socket_timeout": backstop, "socket_connect_timeout": backstop,
            "retry": Retry(NoBackoff(), 0), **dict.fromkeys(_NO_SETINFO)}  # fmt: skip


def client_for(
    url: str | None, client: Redis | RedisCluster | None, *, cluster: bool, timeout: float
) -> tuple[Redis | RedisCluster, bool]:
    """The client a store uses (one built for ``url``, or ``client`` once checked), and whether
    the store built it (and closes it)."""
    if (url is None) == (client is None):
        raise ValueError(
            f"pass exactly one of url and client, got url={url!r} and client={client!r}"
        )
    if url is not None:
        build = RedisCluster.from_url if cluster else Redis.from_url
        return build(url, **client_options(timeout)), True
    if cluster:
        raise ValueError("cluster=True applies to a url; a RedisCluster client is detected")
    if not isinstance(client, Redis | RedisCluster):
        raise TypeError(f"client must be a redis.asyncio.Redis or RedisCluster, got {client!r}")
    if client.get_encoder().decode_responses:
        raise ValueError(
            "client must return bytes: build it with decode_responses=False, "
            "got decode_responses=True"
        )
    return client, False


class Circuit:
    """Runs a store's Redis calls: the timeout, the breaker, and logging a failure streak once;
    ``on_close`` is called when a call succeeds after the circuit was open."""

    def __init__(self, timeout: float, retry_after: float, on_close: Callable[[], None]) -> None:
        self.timeout = timeout
        self.retry_after = retry_after
        self._on_close = on_close
        # When open, no call reaches Redis before open_until (time.monotonic).
        self.open_until: float | None = None
        self._probing = False  # a half-open probe is in flight; the others keep skipping
        self._failing = False  # inside a failure streak, which is logged once
        # Timing, in the loop's clock: the calls waiting and their starts.
        self._waiting: dict[asyncio.Timeout, float] = {}
        self._answered_at = self._busy_at = float("-inf")
        self._watch: asyncio.TimerHandle | None = None
        self._watch_loop: asyncio.AbstractEventLoop | None = None
        self._watch_due = 0.0
        self._watch_every = max(timeout / 10, 0.001)

    async def call(
        self, command: Callable[[], Awaitable[object]], *, fallback: object, force: bool = False
    ) -> object:
        """Run one Redis command through the breaker and the timeout; ``fallback`` on any
        failure. ``force``: try even while the circuit is open (an invalidation: skipping it
        would leave other replicas serving what a write changed). Each caller checks the type
        of the reply, so an unexpected one is a miss rather than an exception further up."""
        probe = False
        if self.open_until is not None and not force:
            if self._probing or time.monotonic() < self.open_until:
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
                    self._waiting.pop(deadline, None)  # the watch may have ended it already
        except Exception as exc:
            self.failed(exc, trip=self._trips(exc, loop.time()))
            return fallback
        finally:
            if probe:
                self._probing = False
        self._answered_at = loop.time()
        self._succeeded()
        return result

    def _trips(self, exc: Exception, now: float) -> bool:
        """Whether a failed call opens the circuit: not when the server answers (an error reply
        such as WRONGTYPE, OOM or READONLY, or a burst used up the client's pool), nor when the
        call timed out while Redis answered another meanwhile (this one alone is stuck)."""
        if isinstance(exc, ResponseError):
            self._answered_at = now
        if isinstance(exc, ResponseError | MaxConnectionsError):
            return False
        if isinstance(exc, TimeoutError | RedisTimeoutError):
            return now - self._answered_at >= self.timeout
        return True  # refused, reset, a protocol error

    def failed(self, exc: Exception, *, trip: bool) -> None:
        """Log a failure (once per streak, and whenever the circuit opens); ``trip``: open it."""
        opening = trip and self.open_until is None  # logged even inside a failure streak
        if trip:
            self.open_until = time.monotonic() + self.retry_after
        if not self._failing or opening:
            self._failing = True
            logger.warning(
                "Redis cache store failed (%s: %s); serving uncached%s",
                type(exc).__name__,
                exc,
                f", retrying in {self.retry_after:g} s" if trip else "",
            )

    def _succeeded(self) -> None:
        if self.open_until is not None:
            self._on_close()
        self.open_until = None
        if self._failing:
            self._failing = False
            logger.info("Redis cache store answers again; caching resumed")

    def _start_waiting(
        self, loop: asyncio.AbstractEventLoop, deadline: asyncio.Timeout, start: float
    ) -> None:
        if self._watch_loop is not loop:  # used from another loop now (asyncio.run per test):
            self._waiting.clear()  # what waited on the old one can no longer be ended from here
            self._watch, self._watch_loop = None, loop
        self._waiting[deadline] = start
        if self._watch is None:
            self._arm_watch(loop, start)

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
