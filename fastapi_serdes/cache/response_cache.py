"""The response cache: serves stored responses before the app runs (used by SerdesMiddleware).

What a cached route answers is stored after compression: every content coding is its own entry,
compressed once. A store that fails is skipped: the request is served uncached.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

from cachetools import LRUCache
from starlette.requests import Request

from .._types import Message, Scope, Send, Store
from ..settings import header
from ..state import RequestState
from . import (
    CACHE_STATUS_PREFIX,
    UNSAFE_METHODS,
    CachePolicy,
    Entry,
    credentialed,
    path_tag,
    principal_of,
    request_host,
    request_key,
    requested,
)
from .capture import Capture
from .conditional import not_modified
from .freshness import MISSED, Lookup, judge
from .route_table import CachedRoute, RouteTable

logger = logging.getLogger("fastapi_serdes")
T = TypeVar("T")

_PARSED_BYTES: Final = 16 * 1024 * 1024  # the most the entries kept parsed hold
_KEYS_KEPT: Final = 4096  # clients choose paths and queries: bounded, cleared when full
_GET_FAILED: Final = "cache store get failed; serving uncached"


def wall_clock() -> float:
    """Wall-clock seconds: entries are shared across processes, so not a monotonic clock."""
    return time.time()


async def _fail_open(call: Callable[[], Awaitable[T]], failed: T, message: str) -> T:
    """What ``call()`` answers, or ``failed`` when the store raised: it must not fail a request."""
    try:
        return await call()
    except Exception:
        logger.exception("fastapi-serdes: %s", message)
        return failed


class ResponseCache:
    """Stored responses for the routes that opted in, served before the app runs.

    Args:
        store: where entries live (a ``MemoryStore`` by default, or a ``RedisStore`` shared by
            every replica).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.table = RouteTable()  # the routes that cache, read at the app's first request
        # Whether the store keeps an invalidation clock its writes check (clock(), set(since=)).
        self._clocked = (
            hasattr(store, "clock") and "since" in inspect.signature(store.set).parameters
        )
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # background refreshes, by key
        self._keys: dict[tuple[object, ...], str] = {}  # see _key
        # Entries read, by key, with the stored bytes they were read from: a store that hands
        # out the object it holds (in process) is parsed once per write, not once per hit.
        self._parsed: LRUCache[str, tuple[bytes, Entry]] = LRUCache(
            _PARSED_BYTES, getsizeof=lambda known: len(known[0])
        )

    @property
    def active(self) -> bool:
        """Whether a route of the app caches (otherwise the middleware skips the cache)."""
        return bool(self.table.routes)

    def _principal(self, scope: Scope, policy: CachePolicy) -> tuple[bool, str | None]:
        if policy.key is None:  # the usual case: no Request to build
            return not credentialed(scope), None
        return principal_of(policy, Request(scope))

    def _key(
        self,
        scope: Scope,
        media: str | None,
        coding: str,
        vary: tuple[str, ...],
        principal: str | None,
    ) -> str:
        """:func:`request_key`, remembered for a route without ``vary`` (no header but Host)."""
        if vary:
            return request_key(
                scope, media_type=media, coding=coding, vary=vary, principal=principal
            )
        host = request_host(scope["headers"])
        query = scope.get("query_string", b"")
        seen = (host, scope.get("root_path", ""), scope["path"], query, media, coding, principal)
        key = self._keys.get(seen)
        if key is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            key = self._keys[seen] = request_key(
                scope, media_type=media, coding=coding, vary=(), principal=principal
            )
        return key

    def wrap(self, scope: Scope, send: Send, state: RequestState, preferred: str) -> Send:
        """The ``send`` to run the app with: it stores what a cached route answers (GET), or
        invalidates the path once an unsafe method succeeded."""
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            return Capture(self, scope, send, state, preferred).send
        if method not in UNSAFE_METHODS:
            return send

        async def invalidate_after(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                await self.invalidate([path_tag(scope)])

        return invalidate_after

    async def answer(
        self,
        scope: Scope,
        send: Send,
        state: RequestState,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None,
    ) -> Lookup:
        """Answer from the store when a fresh entry, or a stale one within
        ``stale-while-revalidate``, is stored; say what the middleware does next.

        ``codings``: the codings the request may be answered with, preferred first.
        ``uncompressed_ok``: whether an identity entry may answer a request preferring a coding
        (compression would have left it alone); None: always.
        """
        route = self.table.match(scope)
        if route is None or (
            scope["method"] == "HEAD" and not state.negotiated.settings.answer_head
        ):
            return MISSED  # (without answer_head, a HEAD is FastAPI's: 405 on a GET route)
        if "no-cache" in requested(scope):
            # Not looked up, but stored like any miss: under the clock read before it computes.
            return dataclasses.replace(MISSED, since=await self.clock())
        usable, principal = self._principal(scope, route.policy)
        if not usable:
            return MISSED
        recorder = state.recorder
        if recorder is not None:
            span, labels = recorder.start_cache(
                self.store, state.negotiated.media_type, route.template
            )
        found = await self._find(scope, send, route, state, principal, codings, uncompressed_ok)
        if recorder is not None:
            recorder.end_cache(span, found.result, labels)
        if not found.served:
            found = dataclasses.replace(found, since=await self.clock())
        return found

    async def _find(
        self,
        scope: Scope,
        send: Send,
        route: CachedRoute,
        state: RequestState,
        principal: str | None,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None,
    ) -> Lookup:
        """Look the request up under each coding in turn; answer from the first usable entry."""
        now = wall_clock()
        policy, found = route.policy, MISSED
        for coding in codings:
            key = self._key(scope, state.negotiated.media_type, coding, policy.vary, principal)
            entry = await self._get(key)
            if coding == "identity" and coding != codings[0] and entry and uncompressed_ok:
                entry = entry if uncompressed_ok(entry) else None
            if entry is None:
                found = await self._unverified(key, policy, now, found)
                continue
            found, status = judge(entry, key, policy, now, found)
            if status is not None:
                await self._serve(scope, send, entry, now, status, header(scope, b"if-none-match"))
                return found
        return found

    async def _unverified(self, key: str, policy: CachePolicy, now: float, found: Lookup) -> Lookup:
        """A miss: the store's unverified copy (an in-process tier's while Redis fails) becomes
        the ``stale-if-error`` fallback when within its window."""
        unverified = getattr(self.store, "unverified", None)
        if unverified is None or found.fallback is not None:
            return found
        data = await _fail_open(lambda: unverified(key), None, _GET_FAILED)
        entry = Entry.loads(data) if data is not None else None
        if entry is None or now - entry.stored_at >= entry.ttl + policy.stale_if_error:
            return found
        return Lookup(fallback=entry, result=found.result)

    async def clock(self) -> int | None:
        """The store's invalidation clock, read before an endpoint computes (an entry with a tag
        invalidated since is not stored); None when the store keeps none or failed."""
        if not self._clocked:
            return None
        clock = self.store.clock  # type: ignore[attr-defined]
        since: int | None = await _fail_open(clock, None, "cache store clock failed")
        return since

    async def current_etag(
        self, scope: Scope, route: CachedRoute, media_type: str | None
    ) -> str | None:
        """The ETag of the fresh identity entry stored for this GET, if any."""
        usable, principal = self._principal(scope, route.policy)
        if not usable:
            return None
        key = self._key(scope, media_type, "identity", route.policy.vary, principal)
        entry = await self._get(key)
        return entry.etag if entry is not None and entry.fresh(wall_clock()) else None

    def refresh(self, key: str, refreshing: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``refreshing`` in the background, once per key in this process at a time."""
        if key in self._refreshing:
            return
        task = self._refreshing[key] = asyncio.get_running_loop().create_task(refreshing())
        task.add_done_callback(lambda done: self._refreshed(key, done))

    def _refreshed(self, key: str, task: asyncio.Task[None]) -> None:
        self._refreshing.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "fastapi-serdes: background refresh of a stale entry failed",
                exc_info=task.exception(),
            )

    async def refreshes_done(self) -> None:
        """Wait for the background refreshes under way (e.g. at shutdown, or in tests)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def _get(self, key: str) -> Entry | None:
        try:  # not through _fail_open: a hit is faster without its extra coroutine
            data = await self.store.get(key)
        except Exception:
            logger.exception("fastapi-serdes: %s", _GET_FAILED)
            return None
        if data is None:
            return None
        known = self._parsed.get(key)
        if known is not None and known[0] is data:
            return known[1]
        entry = Entry.loads(data)
        if entry is not None and len(data) <= _PARSED_BYTES // 8:
            self._parsed[key] = (data, entry)
        return entry

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        entry: Entry,
        now: float,
        status: tuple[bytes, bytes],
        if_none_match: str | None,
    ) -> None:
        headers = [*entry.headers, (b"age", str(entry.age(now)).encode("latin-1")), status]
        kept = not_modified(headers, if_none_match, entry.etag) if if_none_match else None
        start: Message
        if kept is not None:
            start = {"type": "http.response.start", "status": 304, "headers": [*kept, status]}
            body = b""
        else:
            start = {"type": "http.response.start", "status": entry.status, "headers": headers}
            body = b"" if scope["method"] == "HEAD" else entry.body
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def serve_stale(self, scope: Scope, send: Send, entry: Entry, failed: int) -> None:
        """Answer with a stale entry instead of the endpoint's failure (``stale-if-error``)."""
        detail = b"fwd=stale; fwd-status=%d; detail=stale-if-error" % failed
        status = (b"cache-status", CACHE_STATUS_PREFIX + detail)
        await self._serve(scope, send, entry, wall_clock(), status, None)

    async def _store(
        self,
        scope: Scope,
        marked: RequestState,
        state: RequestState,
        start: Message,
        body: bytes,
        preferred: str,
    ) -> bool:
        """Store the response the route marked (``marked``: its state; ``state``: this
        middleware's); whether it was stored. An identity answer to a request preferring a
        coding is stored under both, so the next such request finds it at its first lookup."""
        policy = marked.policy
        assert policy is not None
        usable, principal = self._principal(scope, policy)
        if not usable:
            return False
        headers = [(k, v) for k, v in start.get("headers", ()) if k != b"cache-status"]
        found = dict(reversed(headers))  # the first of a repeated header
        sent = found.get(b"content-encoding", b"identity").decode("latin-1")
        etag = found.get(b"etag", b"").decode("latin-1")
        tags = [path_tag(scope), *(marked.tags or ())]
        data = Entry(start["status"], headers, body, etag, wall_clock(), policy.ttl, tags).dumps()
        stored = []
        aliased = sent == "identity" and preferred != "identity"
        for coding in (sent, preferred) if aliased else (sent,):
            key = self._key(scope, state.negotiated.media_type, coding, policy.vary, principal)
            stored.append(await self.put(key, data, ttl=policy.kept, tags=tags, since=state.since))
        return stored[0]

    async def put(
        self, key: str, data: bytes, *, ttl: float, tags: list[str], since: int | None
    ) -> bool:
        """Write to the store unless a tag was invalidated after ``since``; whether it was."""
        clocked: dict[str, Any] = {"since": since} if since is not None and self._clocked else {}
        message = "cache store set failed; response not stored"
        stored: bool | None = await _fail_open(
            lambda: self.store.set(key, data, ttl=ttl, tags=tags, **clocked), False, message
        )
        return stored is not False

    async def invalidated_since(self, tags: list[str], since: int) -> bool:
        """Whether one of ``tags`` was invalidated after ``since`` (True when it cannot be told)."""
        if not self._clocked:
            return True
        check = self.store.invalidated_since  # type: ignore[attr-defined]
        found: bool = await _fail_open(lambda: check(tags, since), True, "cache store clock failed")
        return found

    async def invalidate(self, tags: Sequence[str]) -> int:
        """Delete every entry stored with any of ``tags``; 0 when the store fails."""
        return await _fail_open(lambda: self.store.invalidate(tags), 0, "cache invalidation failed")
