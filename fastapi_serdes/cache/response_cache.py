"""The response cache: serves stored responses before the app runs (used by SerdesMiddleware).

The middleware reads which routes cache from its app's route table at the first request
(:mod:`~fastapi_serdes.cache.route_table`), and looks up a GET or HEAD in the store only when its
path matches one of their templates. ``SerdesRoute`` marks a response it may store in the
request's state (its :func:`~fastapi_serdes.cache.cached` policy and tags); the middleware then
stores what it sends — after compression, so every content coding is its own stored variant,
compressed once. Unsafe methods on a path invalidate its entries once they succeed. A store
that fails is skipped: the request is served uncached.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

from cachetools import LRUCache
from starlette.requests import Request

from .._types import Message, Scope, Send, Store
from ..state import RequestState
from ..telemetry import Recorder
from . import (
    CACHE_STATUS_PREFIX,
    UNSAFE_METHODS,
    CachePolicy,
    Entry,
    cache_control,
    credentialed,
    path_tag,
    principal_of,
    request_cache_headers,
    request_host,
    request_key,
    wall_clock,
)
from .capture import Capture
from .conditional import not_modified
from .freshness import MISSED, Lookup, judge
from .route_table import CachedRoute, RouteTable

logger = logging.getLogger("fastapi_serdes")

# The most the entries kept parsed hold (each also holds its body a second time, in the entry).
_PARSED_BYTES: Final = 16 * 1024 * 1024
# The most cache keys remembered (clients choose paths and queries: bounded, cleared when full).
_KEYS_KEPT: Final = 4096


class ResponseCache:
    """Stored responses for the routes that opted in, served before the app runs.

    Args:
        store: where entries live (a :class:`~fastapi_serdes.cache.memory_store.MemoryStore` by
            default, or a ``RedisStore`` shared by every replica).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        #: The routes that cache, read from the app's route table at its first request.
        self.table = RouteTable()
        # Whether the store keeps an invalidation clock its writes check (clock(), set(since=)).
        self._clocked = (
            hasattr(store, "clock") and "since" in inspect.signature(store.set).parameters
        )
        # A copy the store keeps but cannot vouch for (RedisStore's in-process tier).
        self._unverified_of: Callable[[str], Awaitable[bytes | None]] | None = getattr(
            store, "unverified", None
        )
        # Background refreshes of stale entries under way, by key.
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # Cache keys by what they are computed from (see _key); cleared when full.
        self._keys: dict[tuple[object, ...], str] = {}
        # Entries read, by key, with the stored bytes they were read from: a store that hands
        # out the object it holds (in process) is read once per write, not once per hit.
        self._parsed: LRUCache[str, tuple[bytes, Entry]] = LRUCache(
            _PARSED_BYTES, getsizeof=lambda known: len(known[0])
        )

    @property
    def active(self) -> bool:
        """Whether a route of the app caches: otherwise the middleware neither looks up, nor
        captures responses, nor invalidates after unsafe methods."""
        return bool(self.table.routes)

    def _principal(self, scope: Scope, policy: CachePolicy) -> tuple[bool, str | None]:
        if policy.key is None:  # the usual case: no Request to build
            return not credentialed(scope), None
        return principal_of(policy, Request(scope))

    def _key(
        self,
        scope: Scope,
        media_type: str | None,
        coding: str,
        vary: tuple[str, ...],
        principal: str | None,
    ) -> str:
        """:func:`request_key`, remembered for requests whose key depends on no request header
        but ``Host`` (most: a route without ``vary``), by what it is computed from."""
        if vary:
            return request_key(
                scope, media_type=media_type, coding=coding, vary=vary, principal=principal
            )
        host = request_host(scope["headers"])
        query = scope.get("query_string", b"")
        seen = (
            host,
            scope.get("root_path", ""),
            scope["path"],
            query,
            media_type,
            coding,
            principal,
        )
        key = self._keys.get(seen)
        if key is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            key = self._keys[seen] = request_key(
                scope, media_type=media_type, coding=coding, vary=(), principal=principal
            )
        return key

    def wrap(
        self, scope: Scope, send: Send, state: RequestState, preferred: str = "identity"
    ) -> Send:
        """The ``send`` to run the app with: it stores a response its route marked cacheable
        (GET), or invalidates the path after an unsafe method succeeded. ``preferred``: the
        content coding the request prefers (see :meth:`_store`)."""
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            return Capture(self, scope, send, state, preferred).send
        if method in UNSAFE_METHODS:
            return self._invalidating(scope, send)
        return send

    async def answer(
        self,
        scope: Scope,
        send: Send,
        route: CachedRoute,
        *,
        media_type: str | None,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None = None,
        recorder: Recorder | None = None,
    ) -> Lookup:
        """Answer from the store when a fresh entry (or a stale one within its
        ``stale-while-revalidate`` window) is stored; say what the middleware does next.

        ``codings`` are the content codings this request could be answered with, the preferred
        first (what the compression layer would choose, then identity when acceptable).
        ``uncompressed_ok`` says whether a stored identity entry may answer a client that
        prefers a coding: only when compression would have left it alone (a small body); None:
        always (no compression).
        ``recorder`` traces and counts the lookup (None: telemetry off).
        """
        request_cc, if_none_match = request_cache_headers(scope)
        if request_cc is not None and "no-cache" in cache_control(request_cc.decode("latin-1")):
            return MISSED
        policy = route.policy
        usable, principal = self._principal(scope, policy)
        if not usable:
            return MISSED
        span, labels = None, None
        if recorder is not None:
            span, labels = recorder.start_cache(self.store, media_type, route.template)
        found = await self._find(
            scope, send, policy, principal, media_type, codings, uncompressed_ok, if_none_match
        )
        if recorder is not None and labels is not None:
            recorder.end_cache(span, found.result, labels)
        if not found.served:
            found = dataclasses.replace(found, since=await self.clock())
        return found

    async def _find(
        self,
        scope: Scope,
        send: Send,
        policy: CachePolicy,
        principal: str | None,
        media_type: str | None,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None,
        if_none_match: bytes | None,
    ) -> Lookup:
        """Look the request up under each coding in turn; answer from the first usable entry."""
        now = wall_clock()
        found = MISSED
        for coding in codings:
            key = self._key(scope, media_type, coding, policy.vary, principal)
            entry = await self._get(key)
            if coding == "identity" and coding != codings[0] and entry and uncompressed_ok:
                entry = entry if uncompressed_ok(entry) else None
            if entry is None:
                found = await self._unverified(key, policy, now, found)
                continue
            found, status = judge(entry, key, policy, now, found)
            if status is not None:
                await self._serve(scope, send, entry, now, status, if_none_match)
                return found
        return found

    async def _unverified(self, key: str, policy: CachePolicy, now: float, found: Lookup) -> Lookup:
        """A miss: the store's unverified copy (an in-process tier's while Redis fails) becomes
        the ``stale-if-error`` fallback when within its window."""
        if self._unverified_of is None or found.fallback is not None:
            return found
        try:
            data = await self._unverified_of(key)
        except Exception:
            logger.exception("fastapi-serdes: cache store get failed; serving uncached")
            return found
        entry = Entry.loads(data) if data is not None else None
        if entry is None or now - entry.stored_at >= entry.ttl + policy.stale_if_error:
            return found
        return Lookup(fallback=entry, result=found.result)

    async def clock(self) -> int | None:
        """The store's invalidation clock, read before an endpoint computes what may be stored:
        an entry one of whose tags is invalidated after this reading is then not stored (it
        may hold what the invalidation was about). None when the store keeps no clock (a
        ``Store`` without ``clock()``) or failed."""
        if not self._clocked:
            return None
        try:
            since: int | None = await self.store.clock()  # type: ignore[attr-defined]
        except Exception:
            logger.exception("fastapi-serdes: cache store clock failed")
            return None
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
        """Run ``refreshing`` in the background (a stale entry was served), once per key in
        this process at a time; the route's single flight makes it once per cluster."""
        if key in self._refreshing:
            return
        task = asyncio.get_running_loop().create_task(refreshing())
        self._refreshing[key] = task
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
        try:
            data = await self.store.get(key)
        except Exception:  # a store must not fail a request
            logger.exception("fastapi-serdes: cache store get failed; serving uncached")
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
        if_none_match: bytes | None = None,
    ) -> None:
        headers = list(entry.headers)
        headers.append((b"age", str(entry.age(now)).encode("latin-1")))
        headers.append(status)
        if if_none_match is not None:
            kept = not_modified(headers, if_none_match.decode("latin-1"), entry.etag)
            if kept is not None:
                kept.append(status)
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    async def serve_stale(self, scope: Scope, send: Send, entry: Entry, failed: int) -> None:
        """Answer with a stale entry instead of the endpoint's failure (``stale-if-error``)."""
        detail = b"fwd=stale; fwd-status=%d; detail=stale-if-error" % failed
        status = (b"cache-status", CACHE_STATUS_PREFIX + detail)
        await self._serve(scope, send, entry, wall_clock(), status)

    async def _store(
        self,
        scope: Scope,
        marked: RequestState,
        state: RequestState,
        start: Message,
        body: bytes,
        preferred: str,
    ) -> bool:
        """Store the response (``marked``: the state the route marked with its policy and tags;
        ``state``: this middleware's, with the store's clock read before the app ran); whether
        it was stored. An uncompressed answer to a request that preferred a coding (compression
        left it alone) is stored under both: the next such request finds it at its first
        lookup, not after a miss (a round trip, with Redis)."""
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
        """Write to the store (refused when a tag was invalidated after ``since``, with a store
        that keeps a clock); whether it was written. A failing store writes nothing."""
        try:
            if since is None or not self._clocked:
                stored = await self.store.set(key, data, ttl=ttl, tags=tags)
            else:
                stored = await self.store.set(  # type: ignore[call-arg]
                    key, data, ttl=ttl, tags=tags, since=since
                )
            return stored is not False
        except Exception:
            logger.exception("fastapi-serdes: cache store set failed; response not stored")
            return False

    async def invalidated_since(self, tags: list[str], since: int) -> bool:
        """Whether one of ``tags`` was invalidated after the clock reading ``since`` (True when
        that cannot be told: the store failed or keeps no clock)."""
        if not self._clocked:
            return True
        try:
            found: bool = await self.store.invalidated_since(tags, since)  # type: ignore[attr-defined]
        except Exception:
            logger.exception("fastapi-serdes: cache store clock failed")
            return True
        return found

    def _invalidating(self, scope: Scope, send: Send) -> Send:
        """A send that drops a path's entries once an unsafe method on it succeeded."""

        async def invalidate_after(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                await self.invalidate([path_tag(scope)])

        return invalidate_after

    async def invalidate(self, tags: Sequence[str]) -> int:
        """Delete every entry stored with any of ``tags``; 0 when the store fails."""
        try:
            return await self.store.invalidate(tags)
        except Exception:
            logger.exception("fastapi-serdes: cache invalidation failed")
            return 0
