"""The response cache's part of a request through ``SerdesMiddleware``.

Before the app runs, :meth:`CacheLayer.enter` reads the route table (at the first request),
refuses a conditional write whose ``If-Match`` no longer matches (412), answers from the store,
and otherwise wraps ``send`` to store, fall back on a stale entry, or invalidate. Requests the
layer makes itself (a background refresh, the GET behind an ``If-Match``) go through the whole
middleware again, under the same rules as any request.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Final

from .._types import ASGIApp, Message, Scope, Send, Store
from ..problems import ProblemError
from ..settings import header
from ..state import SCOPE_KEY, RequestState, state_of
from . import UNSAFE_METHODS, Entry
from .capture import StaleIfError
from .conditional import strong_match
from .memory_store import MemoryStore
from .response_cache import ResponseCache

# Left out of the GET behind an If-Match: conditions, the body's headers, and Accept-Encoding
# (ETags are compared on the identity representation).
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
    ``apps`` gives the apps whose route table may be read; ``again`` is the middleware, which
    the layer's own requests go through."""

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
        found = await cache.answer(scope, send, state, codings, uncompressed_ok)
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
        """After the app: read the route table if it could not be read before (Starlette has
        put the app in the scope by now), and again at the next request when the route that
        answered caches but is not in the table (a route added since)."""
        table = self.cache.table
        if not table.read:
            table.load(scope, scope.get("app"), force=True)
            return
        marked = state_of(scope)
        if marked is not None and marked.policy is not None and not table.knows(marked.policy):
            table.read = False

    async def _precondition_failed(self, scope: Scope, state: RequestState) -> bool:
        """Whether ``If-Match`` on an unsafe method of a cached resource fails (RFC 9110 §13.1.1):
        compared with the fresh stored entry's ETag, else with a GET's through the middleware."""
        if_match = header(scope, b"if-match")
        if if_match is None:
            return False
        get = _as_get(scope, _NOT_FOR_GET)
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
        """Refresh a stale entry: the request again, as a ``Cache-Control: no-cache`` GET."""
        dropped = (b"if-none-match", b"if-modified-since", b"cache-control", b"range")
        get = _as_get(scope, dropped, (b"cache-control", b"no-cache"))
        await self.again(get, _no_body, _discard)


def _as_get(scope: Scope, dropped: Collection[bytes], *added: tuple[bytes, bytes]) -> Scope:
    """A copy of ``scope`` as a GET, without the ``dropped`` headers and the request's state."""
    get = {k: v for k, v in scope.items() if k != SCOPE_KEY}
    kept = [(k, v) for k, v in scope["headers"] if k not in dropped]
    get.update(method="GET", headers=[*kept, *added])
    return get


async def _no_body() -> Message:
    """The ``receive`` of a GET the layer makes."""
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
