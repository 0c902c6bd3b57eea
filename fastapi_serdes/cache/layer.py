"""The response cache's part of a request through ``SerdesMiddleware``: one layer, one job.

Before the app runs, :meth:`CacheLayer.enter` reads the route table (at the first request),
refuses a conditional write whose ``If-Match`` no longer matches (412), answers from the store
(a hit, or a stale entry within ``stale-while-revalidate``, whose refresh it starts), and
otherwise wraps ``send``: to store what a cached route answers, to fall back on a stale entry
within ``stale-if-error``, and to invalidate a path after an unsafe method succeeded. After the
app, :meth:`CacheLayer.leave` reads the route table again when it must.

Requests the layer makes itself (a background refresh, the GET behind an ``If-Match``) go
through the whole middleware again, as any request: the same rules, no second copy of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._types import ASGIApp, Message, Scope, Send, Store
from ..problems import ProblemError
from ..settings import header
from ..state import SCOPE_KEY, RequestState, state_of
from . import UNSAFE_METHODS, Entry
from .capture import StaleIfError
from .conditional import strong_match
from .freshness import Lookup
from .memory_store import MemoryStore
from .response_cache import ResponseCache

# Request headers left out of a GET the layer makes for a request: its conditions, its body's,
# and Accept-Encoding (ETags are compared on the identity representation).
_NOT_FOR_GET: Final = frozenset(
    {b"if-match", b"if-none-match", b"accept-encoding", b"cache-control", b"range"}
    | {b"content-type", b"content-length", b"content-encoding"}
)


def precondition_failed() -> ProblemError:
    """412: ``If-Match`` names none of the current representation's entity tags."""
    return ProblemError.of(
        "precondition-failed",
        "If-Match names none of the current representation's entity tags: it changed since "
        "you read it; GET it again.",
    )


class CacheLayer:
    """The response cache around one app: built once per middleware, entered per request.

    Args:
        cache: the response cache.
        apps: the apps whose route table says which routes cache (the first that has one).
        again: the middleware itself, which the layer's own requests go through.
    """

    __slots__ = ("again", "apps", "cache")

    def __init__(
        self, cache: ResponseCache, apps: Callable[[Scope], tuple[object, ...]], again: ASGIApp
    ):
        self.cache = cache
        self.apps = apps
        self.again = again

    @property
    def consulted(self) -> bool:
        """Whether requests must go through the layer: a route caches, or it is not known yet."""
        return self.cache.active or not self.cache.table.read

    async def enter(
        self,
        scope: Scope,
        send: Send,
        state: RequestState,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None,
    ) -> tuple[Send | ProblemError | None, StaleIfError | None]:
        """Before the app: the ``send`` to run it with and the stale fallback, if any; None
        when the request was answered from the store; a problem to answer with (412)."""
        cache = self.cache
        table = cache.table
        if not table.read:
            table.load(scope, *self.apps(scope))
            if not table.read:  # unknown yet: store what routes mark
                state.since = await cache.clock()
                return cache.wrap(scope, send, state, codings[0]), None
        if not cache.active:
            return send, None
        if scope["method"] in UNSAFE_METHODS and await self._precondition_failed(scope, state):
            return precondition_failed(), None
        found = await self._lookup(scope, send, state, codings, uncompressed_ok)
        if found.served:
            if found.refresh is not None:
                cache.refresh(found.refresh, lambda: self._refresh(scope))
            return None, None
        fallback = None
        if found.fallback is not None:
            fallback = StaleIfError(cache, scope, send, found.fallback)
            send = fallback.send
        state.since = found.since
        return cache.wrap(scope, send, state, codings[0]), fallback

    def leave(self, scope: Scope) -> None:
        """After the app: read the route table when it could not be read before the app ran
        (an app the middleware cannot see into: Starlette has named itself in the scope by
        now), and again at the next request when the route that answered caches but the table
        does not know it (a route added since it was read)."""
        table = self.cache.table
        if not table.read:
            table.load(scope, scope.get("app"), force=True)
            return
        marked = state_of(scope)
        if marked is not None and marked.policy is not None and not table.knows(marked.policy):
            table.read = False

    async def _lookup(
        self,
        scope: Scope,
        send: Send,
        state: RequestState,
        codings: tuple[str, ...],
        uncompressed_ok: Callable[[Entry], bool] | None,
    ) -> Lookup:
        route = self.cache.table.match(scope)
        if route is None or (
            scope["method"] == "HEAD" and not state.negotiated.settings.answer_head
        ):
            return Lookup()  # (without answer_head, a HEAD is FastAPI's: 405 on a GET route)
        return await self.cache.answer(
            scope,
            send,
            route,
            media_type=state.negotiated.media_type,
            codings=codings,
            uncompressed_ok=uncompressed_ok,
            recorder=state.recorder,
        )

    async def _precondition_failed(self, scope: Scope, state: RequestState) -> bool:
        """``If-Match`` on an unsafe method of a cached resource (RFC 9110 §13.1.1): whether it
        fails, compared with the ETag of the representation a GET gets now — the stored entry's
        when a fresh one is stored, else a GET through the middleware (which stores it)."""
        if_match = header(scope, b"if-match")
        if if_match is None:
            return False
        get = _as_get(scope, [(k, v) for k, v in scope["headers"] if k not in _NOT_FOR_GET])
        route = self.cache.table.match(get)
        if route is None:
            return False  # not a cached resource: the endpoint decides
        etag = await self.cache.current_etag(get, route, state.negotiated.media_type)
        if etag is None:
            start: Message = {}

            async def keep_start(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)

            try:
                await self.again(get, _no_body, keep_start)
            except Exception:  # no representation to compare with: the condition fails
                return True
            if start.get("status") != 200:
                return True  # no current representation: nothing matches, not even "*"
            etag = next((v.decode("latin-1") for k, v in start["headers"] if k == b"etag"), "")
        return not strong_match(if_match, etag)

    async def _refresh(self, scope: Scope) -> None:
        """Refresh a stale entry: the same request again, through the middleware, as a
        ``Cache-Control: no-cache`` GET whose answer the response cache stores."""
        keep = (b"if-none-match", b"if-modified-since", b"cache-control", b"range")
        headers = [(k, v) for k, v in scope["headers"] if k not in keep]
        headers.append((b"cache-control", b"no-cache"))
        await self.again(_as_get(scope, headers), _no_body, _discard)


def _as_get(scope: Scope, headers: list[tuple[bytes, bytes]]) -> Scope:
    """A copy of ``scope`` as a GET with these headers, without the request's state."""
    get = {k: v for k, v in scope.items() if k != SCOPE_KEY}
    get.update(method="GET", headers=headers)
    return get


async def _no_body() -> Message:
    """The ``receive`` of a request the layer makes: a GET without a body."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    """The ``send`` of a background refresh: the response cache keeps what matters."""


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
