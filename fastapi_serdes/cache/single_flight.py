"""One computation for concurrent equal requests of a ``@cached`` route: within the process
(``SingleFlight``, in :mod:`.cache`) and, with a shared store, across replicas (a short lock in
the store and a published result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from .._types import Scope, Store
from ..settings import Negotiated
from . import CachePolicy, Entry, cache_control, principal_of, request_key, requested
from .invalidation import response_cache_of
from .memory_store import MemoryStore
from .response_cache import ResponseCache


@dataclass(slots=True)
class Produced:
    """An encoded result, shareable between requests that asked for the same thing."""

    status: int
    content: bytes
    headers: list[tuple[bytes, bytes]]
    #: The response cache's clock when its computation began (None: unknown).
    since: int | None = None

    def to_response(self) -> Response:
        """A new response with these bytes and headers (each request sends its own)."""
        response = Response(self.content, status_code=self.status)
        response.raw_headers = list(self.headers)
        return response


def shared_cache(scope: Scope) -> ResponseCache | None:
    """The response cache when its store is shared by replicas (not an in-process one)."""
    cache = response_cache_of(scope)
    return None if cache is None or isinstance(cache.store, MemoryStore) else cache


_LOCK_TTL: Final = 5.0
_POLL_INTERVAL: Final = 0.02


async def once_per_cluster(
    cache: ResponseCache,
    key: str,
    work: Coroutine[Any, Any, Response],
    share: Callable[[Response | Produced], Produced | None],
    tags: list[str],
    since: int | None,
) -> Response | Produced:
    """Run ``work`` unless another replica holds the lock for ``key`` or has just published
    its result; then take that result.

    The leader publishes under ``flight:<key>`` for a few seconds, with the entry's tags, and
    refused when one was invalidated after ``since`` (the clock before it computed). A follower
    polls for it and takes over once the lock is free again (the leader failed, or could not
    publish). A failing store answers ``acquire`` with True: every replica computes.
    """
    store = cache.store
    lock, published = f"lock:{key}", f"flight:{key}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LOCK_TTL
    while not await store.acquire(lock, _LOCK_TTL):
        await asyncio.sleep(_POLL_INTERVAL)
        if (theirs := await _published(store, published, work)) is not None:
            return theirs
        if loop.time() > deadline:
            return await work
    try:  # published meanwhile? (our lookup missed just before another replica stored)
        if (theirs := await _published(store, published, work)) is not None:
            return theirs
        result = await work
        shared = share(result)
        if shared is not None:
            entry = Entry(shared.status, shared.headers, shared.content, "", 0.0, _LOCK_TTL)
            await cache.put(published, entry.dumps(), ttl=_LOCK_TTL, tags=tags, since=since)
        return result
    finally:
        await store.release(lock)


async def _published(
    store: Store, published: str, work: Coroutine[Any, Any, Any]
) -> Produced | None:
    """The result another replica published, if any; then ``work``, never started, is closed."""
    data = await store.get(published)
    theirs = Entry.loads(data) if data is not None else None
    if theirs is None:
        return None
    work.close()
    return Produced(theirs.status, theirs.body, list(theirs.headers))


def shareable(response: Response) -> Produced | None:
    """What followers of a single flight get (never the leader's background tasks): a copy of a
    complete 200 without ``Set-Cookie`` (one user's session is never handed to another) and
    without ``Cache-Control: private`` or ``no-store``; None for anything else (each follower
    then computes its own answer)."""
    body = getattr(response, "body", None)
    if response.status_code != 200 or not isinstance(body, bytes):
        return None
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            return None
        if name == b"cache-control":
            directives = cache_control(value.decode("latin-1"))
            if "private" in directives or "no-store" in directives:
                return None
    return Produced(response.status_code, body, list(response.raw_headers))


def flight_key(policy: CachePolicy | None, request: Request, negotiated: Negotiated) -> str | None:
    """The single-flight key of a cacheable GET: concurrent equal requests compute once."""
    scope = request.scope
    if policy is None or scope["method"] != "GET":
        return None
    if "no-cache" in requested(scope):
        return None  # it wants its own answer, not one computed before it began
    usable, principal = principal_of(policy, request)
    if not usable:
        return None
    return request_key(
        scope,
        media_type=negotiated.media_type,
        coding="identity",
        vary=policy.vary,
        principal=principal,
    )
