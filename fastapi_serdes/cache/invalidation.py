"""Invalidating cached responses from an endpoint or a background task, after a write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._types import Scope
from ..state import state_of
from .response_cache import ResponseCache


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
