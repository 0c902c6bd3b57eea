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

from starlette.requests import Request

from .._types import Message, Scope, Send, Store
from ..state import RequestState, state_of
from ..telemetry import CACHE_HIT, CACHE_MISS, CACHE_STALE, Recorder
from . import (
    NOT_MODIFIED_HEADERS,
    CachePolicy,
    Entry,
    cache_control,
    none_match,
    path_tag,
    principal_of,
    request_key,
    storable_response,
    wall_clock,
)
from .memory_store import MemoryStore
from .route_table import CachedRoute, RouteTable

logger = logging.getLogger("fastapi_serdes")

_UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CACHE_STATUS_NAME: Final = "fastapi-serdes"
_HIT: Final = (b"cache-status", CACHE_STATUS_NAME.encode("latin-1") + b"; hit")
_SWR: Final = (
    b"cache-status",
    CACHE_STATUS_NAME.encode("latin-1") + b"; fwd=stale; detail=stale-while-revalidate",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Lookup:
    """What a response-cache lookup found.

    Attributes:
        served: the request was answered from the store.
        refresh: what was served is stale (``stale-while-revalidate``): the key to refresh.
        fallback: a stale entry to answer with if the endpoint fails (``stale-if-error``).
        result: the telemetry result (hit, miss, stale).
        since: the store's invalidation clock read before the endpoint runs (see
            :meth:`ResponseCache.clock`); None when the store keeps none.
    """

    served: bool = False
    refresh: str | None = None
    fallback: Entry | None = None
    result: str = CACHE_MISS
    since: int | None = None


_MISSED: Final = Lookup()
_STALE: Final = Lookup(result=CACHE_STALE)
_HIT_LOOKUP: Final = Lookup(served=True, result=CACHE_HIT)


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
        # Background refreshes of stale entries under way, by key.
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    @property
    def active(self) -> bool:
        """Whether a route of the app caches: otherwise the middleware neither looks up, nor
        captures responses, nor invalidates after unsafe methods."""
        return bool(self.table.routes)

    def _principal(self, scope: Scope, policy: CachePolicy) -> tuple[bool, str | None]:
        return principal_of(policy, Request(scope))

    def wrap(self, scope: Scope, send: Send, state: RequestState, since: int | None = None) -> Send:
        """The ``send`` to run the app with: it stores a response its route marked cacheable
        (GET), or invalidates the path after an unsafe method succeeded."""
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            return _Capture(self, scope, send, state, since).send
        if method in _UNSAFE_METHODS:
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
        uncompressed_ok: Callable[[Entry], bool] = lambda entry: True,
        recorder: Recorder | None = None,
    ) -> Lookup:
        """Answer from the store when a fresh entry (or a stale one within its
        ``stale-while-revalidate`` window) is stored; say what the middleware does next.

        ``codings`` are the content codings this request could be answered with, the preferred
        first (what the compression layer would choose, then identity when acceptable).
        ``uncompressed_ok`` says whether a stored identity entry may answer a client that
        prefers a coding: only when compression would have left it alone (a small body).
        ``recorder`` traces and counts the lookup (None: telemetry off).
        """
        request_cc, if_none_match = _cache_headers(scope)
        if request_cc is not None and "no-cache" in cache_control(request_cc.decode("latin-1")):
            return _MISSED
        policy = route.policy
        usable, principal = self._principal(scope, policy)
        if not usable:
            return _MISSED
        span, labels = None, None
        if recorder is not None:
            span, labels = recorder.start_cache(self.store, media_type, route.template)
        now = wall_clock()
        found = _MISSED
        for coding in codings:
            key = request_key(
                scope, media_type=media_type, coding=coding, vary=policy.vary, principal=principal
            )
            entry = await self._get(key)
            if coding == "identity" and coding != codings[0] and entry is not None:
                entry = entry if uncompressed_ok(entry) else None
            if entry is None:
                continue
            age = now - entry.stored_at
            if age < entry.ttl:
                found, status = _HIT_LOOKUP, _HIT
            elif age < entry.ttl + policy.stale_while_revalidate:
                found, status = Lookup(True, key, None, CACHE_STALE), _SWR
            else:
                if found.fallback is None:
                    usable = age < entry.ttl + policy.stale_if_error
                    found = Lookup(False, None, entry, CACHE_STALE) if usable else _STALE
                continue
            inm = if_none_match.decode("latin-1") if if_none_match else None
            await self._serve(scope, send, entry, now, inm, status)
            break
        if recorder is not None and labels is not None:
            recorder.end_cache(span, found.result, labels)
        if not found.served:
            found = dataclasses.replace(found, since=await self.clock())
        return found

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
        key = request_key(
            scope,
            media_type=media_type,
            coding="identity",
            vary=route.policy.vary,
            principal=principal,
        )
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
        return Entry.loads(data) if data is not None else None

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        entry: Entry,
        now: float,
        if_none_match: str | None,
        status: tuple[bytes, bytes],
    ) -> None:
        headers = list(entry.headers)
        headers.append((b"age", str(entry.age(now)).encode("latin-1")))
        headers.append(status)
        if if_none_match is not None and none_match(if_none_match, entry.etag):
            keep = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS]
            keep.append(status)
            await send({"type": "http.response.start", "status": 304, "headers": keep})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    async def serve_stale(self, scope: Scope, send: Send, entry: Entry, failed: int) -> None:
        """Answer with a stale entry instead of the endpoint's failure (``stale-if-error``)."""
        detail = b"fwd=stale; fwd-status=%d; detail=stale-if-error" % failed
        status = (b"cache-status", _CACHE_STATUS_PREFIX + detail)
        await self._serve(scope, send, entry, wall_clock(), None, status)

    async def _store(
        self,
        scope: Scope,
        marked: RequestState,
        state: RequestState,
        start: Message,
        body: bytes,
        since: int | None,
    ) -> bool:
        """Store the response (``marked``: the state the route marked with its policy and tags;
        ``state``: this middleware's; ``since``: the store's clock before the app ran); whether
        it was stored."""
        policy = marked.policy
        assert policy is not None
        headers = [(k, v) for k, v in start.get("headers", ()) if k != b"cache-status"]
        coding = next((v.decode("latin-1") for k, v in headers if k == b"content-encoding"), None)
        etag = next((v.decode("latin-1") for k, v in headers if k == b"etag"), "")
        usable, principal = self._principal(scope, policy)
        if not usable:
            return False
        key = request_key(
            scope,
            media_type=state.negotiated.media_type,
            coding=coding or "identity",
            vary=policy.vary,
            principal=principal,
        )
        tags = [path_tag(scope), *(marked.tags or ())]
        entry = Entry(start["status"], headers, body, etag, wall_clock(), policy.ttl, tags)
        try:
            if since is None:
                stored = await self.store.set(key, entry.dumps(), ttl=policy.kept, tags=tags)
            else:
                stored = await self.store.set(  # type: ignore[call-arg]
                    key, entry.dumps(), ttl=policy.kept, tags=tags, since=since
                )
            return stored is not False
        except Exception:
            logger.exception("fastapi-serdes: cache store set failed; response not stored")
            return False

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


async def invalidate(
    request: object,
    *,
    tags: Sequence[str] = (),
    route: Callable[..., Any] | None = None,
    **path_params: Any,
) -> int:
    """Invalidate cached responses from an endpoint or a background task after a write.

    ``await invalidate(request, tags=["videos"])`` drops the entries stored with any of the
    tags; ``await invalidate(request, route=get_video, video_id=7)`` drops every entry of the
    path that ``@cached`` endpoint answers for those path parameters (all its media types,
    codings, queries and views). Both may be given. Returns how many entries were deleted (0
    without ``SerdesMiddleware`` or a store).

    Raises:
        ValueError: ``route`` is not a ``@cached`` endpoint of this app, or the path
            parameters do not fill its path.
    """
    scope = getattr(request, "scope", None)
    cache = response_cache_of(scope) if isinstance(scope, dict) else None
    if cache is None:
        return 0
    dropped = list(tags)
    if route is not None:
        dropped.append(cache.table.path_tag(route, path_params))
    return await cache.invalidate(dropped) if dropped else 0


def response_cache_of(scope: Scope) -> ResponseCache | None:
    """The response cache of the SerdesMiddleware serving this request, if it has one."""
    state = state_of(scope)
    return state.cache if state is not None else None


def _cache_headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The request's Cache-Control and If-None-Match, in one pass over the headers."""
    request_cc: bytes | None = None
    if_none_match: bytes | None = None
    for name, value in scope["headers"]:
        # Several lines of a list header are one list (RFC 9110 §5.3).
        if name == b"cache-control":
            request_cc = value if request_cc is None else request_cc + b", " + value
        elif name == b"if-none-match":
            if_none_match = value if if_none_match is None else if_none_match + b", " + value
    return request_cc, if_none_match


class _Capture:
    """The ``send`` of a GET/HEAD: stores the response when its route marked it cacheable.

    Passes everything through untouched (one attribute test per message) otherwise.
    """

    __slots__ = (
        "cache",
        "chunks",
        "downstream",
        "is_get",
        "marked",
        "passing",
        "scope",
        "since",
        "size",
        "start",
        "state",
    )

    def __init__(
        self,
        cache: ResponseCache,
        scope: Scope,
        send: Send,
        state: RequestState,
        since: int | None,
    ) -> None:
        self.cache = cache
        self.scope = scope
        self.downstream = send
        self.state = state
        self.marked = state
        self.since = since
        # Read now: SerdesRoute answers HEAD as GET and sets the method while it runs; a HEAD
        # response has no body and must never be stored as the GET one.
        self.is_get = scope["method"] == "GET"
        self.passing = False
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0

    # A plain function returning the downstream awaitable: no coroutine of its own per message.
    def send(self, message: Message) -> Awaitable[None]:
        if self.passing:
            return self.downstream(message)
        kind = message["type"]
        if kind == "http.response.start":
            scope = self.scope
            # The state the route marked: an inner SerdesMiddleware (a mounted app's) puts its
            # own in the scope, and the route marks that one.
            marked = state_of(scope) or self.state
            policy = marked.policy
            if policy is None or marked.borrowed:
                self.passing = True
            else:
                cache = self.cache
                headers = list(message.get("headers", ()))
                if (
                    self.is_get
                    and not _no_store(scope)
                    and storable_response(
                        message["status"], headers, per_principal=policy.key is not None
                    )
                    and cache._principal(scope, policy)[0]
                ):
                    # Held until the body is stored: Cache-Status then says what happened.
                    message["headers"] = headers
                    self.start = message
                    self.marked = marked
                    return _sent()
                self.passing = True
                headers.append((b"cache-status", _CACHE_STATUS_PREFIX + b"fwd=miss"))
                message["headers"] = headers
        elif kind == "http.response.body" and self.start is not None:
            chunk = message.get("body", b"")
            self.chunks.append(chunk)
            self.size += len(chunk)
            if not message.get("more_body", False):
                return self._last()
            if self.size > getattr(self.cache.store, "max_item_bytes", _MAX_HELD_BYTES):
                return self._give_up()  # too large to store: stream it from here on
            return _sent()
        return self.downstream(message)

    async def _last(self) -> None:
        start, self.start = self.start, None
        self.passing = True
        assert start is not None
        body = b"".join(self.chunks)
        self.chunks = []
        stored = await self.cache._store(
            self.scope, self.marked, self.state, start, body, self.since
        )
        outcome = b"fwd=miss; stored" if stored else b"fwd=miss; detail=not-stored"
        start["headers"].append((b"cache-status", _CACHE_STATUS_PREFIX + outcome))
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    async def _give_up(self) -> None:
        start, self.start = self.start, None
        self.passing = True
        assert start is not None
        outcome = b"fwd=miss; detail=too-large"
        start["headers"].append((b"cache-status", _CACHE_STATUS_PREFIX + outcome))
        await self.downstream(start)
        body, self.chunks = b"".join(self.chunks), []
        await self.downstream({"type": "http.response.body", "body": body, "more_body": True})


# The most a streamed cacheable response is held for storing when the store states no limit.
_MAX_HELD_BYTES: Final = 8 * 1024 * 1024


async def _sent() -> None:
    """What ``send`` returns for a message held back (nothing to wait for)."""


def _no_store(scope: Scope) -> bool:
    """Whether the request asked that nothing be stored (``Cache-Control: no-store``)."""
    request_cc = _cache_headers(scope)[0]
    return request_cc is not None and "no-store" in cache_control(request_cc.decode("latin-1"))


_CACHE_STATUS_PREFIX: Final = CACHE_STATUS_NAME.encode("latin-1") + b"; "


def response_cache_from(cache: Store | ResponseCache | bool | None) -> ResponseCache | None:
    """The response cache a ``cache=`` keyword asks for (True: an in-process MemoryStore)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResponseCache(MemoryStore())
    if isinstance(cache, ResponseCache):
        return cache
    if isinstance(cache, Store):
        return ResponseCache(cache)
    raise TypeError(f"cache must be a Store, a ResponseCache, True or None, got {cache!r}")


class StaleIfError:
    """The ``send`` of a request with a stale entry within its ``stale-if-error`` window: an
    endpoint's 5xx (or exception, through :meth:`failed`) is answered with the entry instead."""

    __slots__ = ("_cache", "_downstream", "_entry", "_replaced", "_scope", "_started")

    def __init__(self, cache: ResponseCache, scope: Scope, send: Send, entry: Entry) -> None:
        self._cache = cache
        self._scope = scope
        self._downstream = send
        self._entry = entry
        self._started = False
        self._replaced = False

    async def send(self, message: Message) -> None:
        if self._replaced:
            return  # the rest of the failed answer
        if message["type"] == "http.response.start":
            if message["status"] >= 500:
                await self.failed(message["status"])
                return
            self._started = True
        await self._downstream(message)

    async def failed(self, status: int) -> bool:
        """Answer with the stale entry if nothing was sent yet; whether it was."""
        if self._started or self._replaced:
            return False
        self._replaced = True
        await self._cache.serve_stale(self._scope, self._downstream, self._entry, status)
        return True
