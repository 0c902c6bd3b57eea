"""One computation for concurrent equal requests of a ``@cached`` route: within the process
(``SingleFlight``, in :mod:`.cache`) and, with a shared store, across replicas (a short lock in
the store and a published result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, cast

from starlette.requests import Request
from starlette.responses import Response

from ._types import Scope, Store
from .cache import CachePolicy, Entry, principal_of, request_key
from .memory_store import MemoryStore
from .response_cache import response_cache_of
from .settings import Negotiated


@dataclass(slots=True)
class Produced:
    """An encoded result, shareable between requests that asked for the same thing."""

    status: int
    content: bytes
    headers: list[tuple[bytes, bytes]]
    background: Any = None


def shared_store(scope: Scope) -> Store | None:
    """The response cache's store when replicas share it (not an in-process one)."""
    cache = response_cache_of(scope)
    store = getattr(cache, "store", None)
    if store is None or isinstance(store, MemoryStore):
        return None
    return cast(Store, store)


_LOCK_TTL: Final = 5.0
_POLL_INTERVAL: Final = 0.02


async def once_per_cluster(
    store: Store, key: str, work: Coroutine[Any, Any, Response | Produced]
) -> Response | Produced:
    """Run ``work`` unless another replica holds the lock for ``key``; then wait for its result.

    The leader publishes what it produced under ``flight:<key>`` for a few seconds. A follower
    polls for it and takes over as soon as the lock is free again (the leader failed, or its
    result could not be published). A failing store answers ``acquire`` with True (fail-open):
    every replica computes, as it would without Redis.
    """
    lock, published = f"lock:{key}", f"flight:{key}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LOCK_TTL
    while not await store.acquire(lock, _LOCK_TTL):
        await asyncio.sleep(_POLL_INTERVAL)
        data = await store.get(published)
        theirs = Entry.loads(data) if data is not None else None
        if theirs is not None:
            work.close()  # never started: nothing to clean up
            return Produced(theirs.status, theirs.body, list(theirs.headers))
        if loop.time() > deadline:
            return await work
    try:
        result = await work
        if isinstance(result, Produced):
            entry = Entry(result.status, result.headers, result.content, "", 0.0, _LOCK_TTL)
            await store.set(published, entry.dumps(), ttl=_LOCK_TTL)
        return result
    finally:
        await store.release(lock)


def shareable(result: Response | Produced) -> Response | Produced | None:
    """What followers of a single flight get: the bytes, never the leader's background tasks
    or a Response object the endpoint built (it is sent once)."""
    if isinstance(result, Produced):
        return Produced(result.status, result.content, result.headers)
    return None


def flight_key(policy: CachePolicy | None, request: Request, negotiated: Negotiated) -> str | None:
    """The single-flight key of a cacheable GET: concurrent equal requests compute once."""
    scope = request.scope
    if policy is None or scope["method"] != "GET":
        return None
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
