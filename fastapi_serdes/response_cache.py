"""The response cache: serves stored responses before the app runs (used by SerdesMiddleware).

``SerdesRoute`` marks a response cacheable (``scope["fastapi_serdes.cache"]``, from the
:func:`~fastapi_serdes.cache.cached` decorator); the middleware then stores what it sends —
after compression, so every content coding is its own stored variant, compressed once — and
learns the path. Later requests for that path are answered from the store without calling the
app. Unsafe methods on a path invalidate its entries. A store that fails is skipped: the request
is served uncached.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from starlette.requests import Request

from ._types import ASGIApp, Message, Receive, Scope, Send, Store
from .cache import (
    CACHE_SCOPE_KEY,
    NOT_MODIFIED_HEADERS,
    TAGS_SCOPE_KEY,
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
from .spans import route_of
from .telemetry import CACHE_HIT, CACHE_MISS, CACHE_STALE, Recorder

logger = logging.getLogger("fastapi_serdes")

DEFAULT_MAX_PATHS: Final = 10_000
_UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CACHE_STATUS_NAME: Final = "fastapi-serdes"
_HIT: Final = (b"cache-status", CACHE_STATUS_NAME.encode("latin-1") + b"; hit")


class ResponseCache:
    """Stored responses for the routes that opted in, served before the app runs.

    Args:
        store: where entries live (a :class:`~fastapi_serdes.memory_store.MemoryStore` by
            default, or a ``RedisStore`` shared by every replica).
        max_paths: how many distinct cacheable paths are remembered (least recently used out).
    """

    def __init__(self, store: Store, *, max_paths: int = DEFAULT_MAX_PATHS) -> None:
        if isinstance(max_paths, bool) or not isinstance(max_paths, int) or max_paths < 1:
            raise ValueError(f"max_paths must be a positive int, got {max_paths!r}")
        self.store = store
        self.max_paths = max_paths
        # (root_path, path) -> the policy its route declared. Learned from responses.
        self._paths: OrderedDict[tuple[str, str], CachePolicy] = OrderedDict()
        # id(policy) -> its route's template, for telemetry; policies live as long as the app.
        self._routes: dict[int, str] = {}

    def policy_for(self, scope: Scope) -> CachePolicy | None:
        """The cache policy of the route that answered this path before, if any."""
        return self._paths.get((scope.get("root_path", ""), scope["path"]))

    def learn(self, scope: Scope, policy: CachePolicy) -> None:
        """Remember that this path's route caches with ``policy`` (SerdesRoute tells us)."""
        route = route_of(scope)
        if route is not None and len(self._routes) < self.max_paths:
            # The route template labels lookups of later requests (the app has not run yet).
            self._routes[id(policy)] = route
        key = (scope.get("root_path", ""), scope["path"])
        self._paths[key] = policy
        self._paths.move_to_end(key)
        if len(self._paths) > self.max_paths:
            self._paths.popitem(last=False)

    def _principal(self, scope: Scope, policy: CachePolicy) -> tuple[bool, str | None]:
        return principal_of(policy, Request(scope))

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        *,
        media_type: str | None,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] = lambda entry: True,
        recorder: Recorder | None = None,
    ) -> None:
        """Serve a GET/HEAD from the store, or run ``app`` and store what it sends.

        ``codings`` are the content codings this request could be answered with, the preferred
        first (what the compression layer would choose, then identity when acceptable).
        ``uncompressed_ok`` says whether a stored identity entry may answer a client that
        prefers a coding: only when compression would have left it alone (a small body).
        ``recorder`` traces and counts the lookup (None: telemetry off).
        """
        method = scope["method"]
        if method in _UNSAFE_METHODS:
            await app(scope, receive, self._invalidating(scope, send))
            return
        if method not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        policy = self.policy_for(scope)
        # One pass over the headers for everything the lookup needs.
        request_cc: bytes | None = None
        if_none_match: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"cache-control":
                request_cc = value
            elif name == b"if-none-match":
                if_none_match = value
        directives = cache_control(request_cc.decode("latin-1")) if request_cc else {}
        if policy is not None:
            usable, principal = self._principal(scope, policy)
            if usable and "no-cache" not in directives:
                span, labels, result = None, None, CACHE_MISS
                if recorder is not None:
                    route = self._routes.get(id(policy))
                    span, labels = recorder.start_cache(self.store, media_type, route)
                now = wall_clock()
                for coding in codings:
                    key = request_key(
                        scope,
                        media_type=media_type,
                        coding=coding,
                        vary=policy.vary,
                        principal=principal,
                    )
                    entry = await self._get(key)
                    if coding == "identity" and coding != codings[0] and entry is not None:
                        entry = entry if uncompressed_ok(entry) else None
                    if entry is not None and entry.fresh(now):
                        if recorder is not None and labels is not None:
                            recorder.end_cache(span, CACHE_HIT, labels)
                        inm = if_none_match.decode("latin-1") if if_none_match else None
                        await self._serve(scope, send, entry, now, inm)
                        return
                    if entry is not None:
                        result = CACHE_STALE
                if recorder is not None and labels is not None:
                    recorder.end_cache(span, result, labels)
        store = "no-store" not in directives
        await app(scope, receive, self._capturing(scope, send, media_type, store))

    async def _get(self, key: str) -> Entry | None:
        try:
            data = await self.store.get(key)
        except Exception:  # a store must not fail a request
            logger.exception("fastapi-serdes: cache store get failed; serving uncached")
            return None
        return Entry.loads(data) if data is not None else None

    async def _serve(
        self, scope: Scope, send: Send, entry: Entry, now: float, if_none_match: str | None
    ) -> None:
        headers = list(entry.headers)
        headers.append((b"age", str(entry.age(now)).encode("latin-1")))
        headers.append(_HIT)
        if if_none_match is not None and none_match(if_none_match, entry.etag):
            keep = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS]
            keep.append(_HIT)
            await send({"type": "http.response.start", "status": 304, "headers": keep})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    def _capturing(self, scope: Scope, send: Send, media_type: str | None, store: bool) -> Send:
        """A send that stores the response when its route marked it cacheable."""
        start: Message | None = None
        chunks: list[bytes] = []
        # Read now: SerdesRoute answers HEAD as GET and sets the method while it runs; a HEAD
        # response has no body and must never be stored as the GET one.
        is_get = scope["method"] == "GET"

        async def capture(message: Message) -> None:
            nonlocal start
            kind = message["type"]
            if kind == "http.response.start":
                policy = scope.get(CACHE_SCOPE_KEY)
                if isinstance(policy, CachePolicy):
                    self.learn(scope, policy)
                    headers = list(message.get("headers", ()))
                    status = message["status"]
                    per_principal = policy.key is not None
                    if (
                        store
                        and is_get
                        and storable_response(status, headers, per_principal=per_principal)
                        and self._principal(scope, policy)[0]
                    ):
                        start = message
                        outcome = b"fwd=miss; stored"
                    else:
                        outcome = b"fwd=miss"
                    headers.append((b"cache-status", CACHE_STATUS_NAME.encode() + b"; " + outcome))
                    message["headers"] = headers
            elif kind == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    await self._store(scope, start, b"".join(chunks), media_type)
                    return
            await send(message)

        return capture

    async def _store(
        self, scope: Scope, start: Message, body: bytes, media_type: str | None
    ) -> None:
        policy: CachePolicy = scope[CACHE_SCOPE_KEY]
        headers = [(k, v) for k, v in start.get("headers", ()) if k != b"cache-status"]
        coding = next((v.decode("latin-1") for k, v in headers if k == b"content-encoding"), None)
        etag = next((v.decode("latin-1") for k, v in headers if k == b"etag"), "")
        usable, principal = self._principal(scope, policy)
        if not usable:
            return
        key = request_key(
            scope,
            media_type=media_type,
            coding=coding or "identity",
            vary=policy.vary,
            principal=principal,
        )
        tags = [path_tag(scope), *scope.get(TAGS_SCOPE_KEY, ())]
        entry = Entry(start["status"], headers, body, etag, wall_clock(), policy.ttl, tags)
        try:
            await self.store.set(key, entry.dumps(), ttl=policy.ttl, tags=tags)
        except Exception:
            logger.exception("fastapi-serdes: cache store set failed; response not stored")

    def _invalidating(self, scope: Scope, send: Send) -> Send:
        """A send that drops a path's entries once an unsafe method on it succeeded."""

        async def invalidate_after(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                await self.invalidate([path_tag(scope)])

        return invalidate_after

    async def invalidate(self, tags: list[str]) -> int:
        """Delete every entry stored with any of ``tags``; 0 when the store fails."""
        try:
            return await self.store.invalidate(tags)
        except Exception:
            logger.exception("fastapi-serdes: cache invalidation failed")
            return 0


async def invalidate(request: object, *, tags: list[str]) -> int:
    """Invalidate cached responses by tag from an endpoint: ``await invalidate(request, ...)``.

    Returns how many entries were deleted (0 without ``SerdesMiddleware`` or a store).
    """
    scope = getattr(request, "scope", None)
    cache = scope.get(RESPONSE_CACHE_SCOPE_KEY) if isinstance(scope, dict) else None
    if not isinstance(cache, ResponseCache):
        return 0
    return await cache.invalidate(tags)


#: Where SerdesMiddleware leaves its ResponseCache, for :func:`invalidate`.
RESPONSE_CACHE_SCOPE_KEY: Final = "fastapi_serdes.response_cache"
