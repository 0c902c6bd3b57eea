"""The ``send`` wrappers of the response cache: storing what a cached route answers, and
answering with a stale entry instead of an endpoint's failure (``stale-if-error``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from .._types import Message, Scope, Send
from ..state import RequestState, state_of
from . import CACHE_STATUS_PREFIX, Entry, requested, storable_response

if TYPE_CHECKING:
    from .response_cache import ResponseCache

# The most a streamed cacheable response is held for storing when the store states no limit.
_MAX_HELD_BYTES: Final = 8 * 1024 * 1024


class Capture:
    """The ``send`` of a GET/HEAD: stores the response when its route marked it cacheable, and
    passes everything through untouched (one attribute test per message) otherwise."""

    def __init__(
        self, cache: ResponseCache, scope: Scope, send: Send, state: RequestState, preferred: str
    ) -> None:
        self.cache = cache
        self.preferred = preferred
        self.scope = scope
        self.downstream = send
        self.state = self.marked = state
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
                return self._release(complete=True)
            if self.size > getattr(self.cache.store, "max_item_bytes", _MAX_HELD_BYTES):
                return self._release(complete=False)
            return _sent()
        return self.downstream(message)

    def _begin(self, message: Message) -> Awaitable[None]:
        """The start: held while the answer is to be stored, else passed on (with its
        ``Cache-Status`` when the route caches), as every later message."""
        # An inner SerdesMiddleware (a mounted app's) puts its own state in the scope, which the
        # route marks.
        marked = state_of(self.scope) or self.state
        policy = marked.policy
        if policy is None:
            self.passing = True
            return self.downstream(message)
        headers = message["headers"] = list(message.get("headers", ()))
        storable = (
            self.is_get
            # A borrowed answer is another request's (a single flight's): that one stores it.
            and not marked.borrowed
            and "no-store" not in requested(self.scope)
            and storable_response(message["status"], headers, per_principal=policy.key is not None)
            and self.cache._principal(self.scope, policy)[0]
        )
        if storable:
            self.start, self.marked = message, marked  # held until the body is stored
            return _sent()
        self.passing = True
        outcome = b"fwd=miss; detail=coalesced" if marked.borrowed else b"fwd=miss"
        headers.append((b"cache-status", CACHE_STATUS_PREFIX + outcome))
        return self.downstream(message)

    async def _release(self, *, complete: bool) -> None:
        """Pass the held response on: stored first when ``complete``; else it is too large to
        store, and the rest of it streams through."""
        start, self.start = self.start, None
        assert start is not None
        self.passing = True
        body, self.chunks = b"".join(self.chunks), []
        outcome = b"fwd=miss; detail=too-large"
        if complete:
            cache, scope = self.cache, self.scope
            stored = await cache._store(scope, self.marked, self.state, start, body, self.preferred)
            outcome = b"fwd=miss; stored" if stored else b"fwd=miss; detail=not-stored"
        start["headers"].append((b"cache-status", CACHE_STATUS_PREFIX + outcome))
        await self.downstream(start)
        await self.downstream(
            {"type": "http.response.body", "body": body, "more_body": not complete}
        )


async def _sent() -> None:
    """What ``send`` returns for a message held back (nothing to wait for)."""


class StaleIfError:
    """The ``send`` of a request with a stale entry within its ``stale-if-error`` window: an
    endpoint's 5xx (or exception, through :meth:`failed`) is answered with the entry instead."""

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
