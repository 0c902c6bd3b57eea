"""The ``send`` wrappers of the response cache: storing what a cached route answers, and
answering with a stale entry instead of an endpoint's failure (``stale-if-error``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from .._types import Message, Scope, Send
from ..state import RequestState, state_of
from . import (
    CACHE_STATUS_PREFIX,
    CachePolicy,
    Entry,
    cache_control,
    request_cache_headers,
    storable_response,
)

if TYPE_CHECKING:
    from .response_cache import ResponseCache

# The most a streamed cacheable response is held for storing when the store states no limit.
_MAX_HELD_BYTES: Final = 8 * 1024 * 1024


class Capture:
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
        "preferred",
        "scope",
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
        preferred: str = "identity",
    ) -> None:
        self.cache = cache
        self.preferred = preferred
        self.scope = scope
        self.downstream = send
        self.state = state
        self.marked = state
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
            return self._begin(message)
        if kind == "http.response.body" and self.start is not None:
            chunk = message.get("body", b"")
            self.chunks.append(chunk)
            self.size += len(chunk)
            if not message.get("more_body", False):
                return self._last()
            if self.size > getattr(self.cache.store, "max_item_bytes", _MAX_HELD_BYTES):
                return self._give_up()  # too large to store: stream it from here on
            return _sent()
        return self.downstream(message)

    def _begin(self, message: Message) -> Awaitable[None]:
        """The response's start: held while the answer is to be stored; otherwise passed on,
        with its ``Cache-Status`` when the route caches, and every later message after it."""
        # The state the route marked: an inner SerdesMiddleware (a mounted app's) puts its
        # own in the scope, and the route marks that one.
        marked = state_of(self.scope) or self.state
        policy = marked.policy
        if policy is None:
            self.passing = True
            return self.downstream(message)
        headers = list(message.get("headers", ()))
        # A borrowed answer is another request's (the single flight shared it): that one stores it.
        if not marked.borrowed and self._storable(policy, message["status"], headers):
            # Held until the body is stored: Cache-Status then says what happened.
            message["headers"] = headers
            self.start = message
            self.marked = marked
            return _sent()
        self.passing = True
        outcome = b"fwd=miss; detail=coalesced" if marked.borrowed else b"fwd=miss"
        headers.append((b"cache-status", CACHE_STATUS_PREFIX + outcome))
        message["headers"] = headers
        return self.downstream(message)

    def _storable(
        self, policy: CachePolicy, status: int, headers: list[tuple[bytes, bytes]]
    ) -> bool:
        """Whether this answer goes into the cache: to a GET (a HEAD has no body), not asked
        ``no-store``, storable by RFC 9111, and for a request that may use the cache."""
        scope = self.scope
        return (
            self.is_get
            and not _no_store(scope)
            and storable_response(status, headers, per_principal=policy.key is not None)
            and self.cache._principal(scope, policy)[0]
        )

    async def _last(self) -> None:
        start, self.start = self.start, None
        self.passing = True
        assert start is not None
        body = b"".join(self.chunks)
        self.chunks = []
        stored = await self.cache._store(
            self.scope, self.marked, self.state, start, body, self.preferred
        )
        outcome = b"fwd=miss; stored" if stored else b"fwd=miss; detail=not-stored"
        start["headers"].append((b"cache-status", CACHE_STATUS_PREFIX + outcome))
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    async def _give_up(self) -> None:
        start, self.start = self.start, None
        self.passing = True
        assert start is not None
        outcome = b"fwd=miss; detail=too-large"
        start["headers"].append((b"cache-status", CACHE_STATUS_PREFIX + outcome))
        await self.downstream(start)
        body, self.chunks = b"".join(self.chunks), []
        await self.downstream({"type": "http.response.body", "body": body, "more_body": True})


async def _sent() -> None:
    """What ``send`` returns for a message held back (nothing to wait for)."""


def _no_store(scope: Scope) -> bool:
    """Whether the request asked that nothing be stored (``Cache-Control: no-store``)."""
    request_cc = request_cache_headers(scope)[0]
    return request_cc is not None and "no-store" in cache_control(request_cc.decode("latin-1"))


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
