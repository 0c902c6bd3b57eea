"""Which requests the response cache may answer: the templates of the routes that cache.

``SerdesMiddleware`` reads its app's route table once, at the first request: every
``SerdesRoute`` whose endpoint is decorated with :func:`~fastapi_serdes.cached` (in included
routers, before or after, and in mounted apps), with its full path template (prefixes and mount
paths joined) compiled as Starlette compiles it. A GET or HEAD is then looked up in the store
only when its path matches one of those few patterns, so a replica serves a shared entry from
its first request, and memory does not grow with the number of distinct URLs.

A matching template does not prove that this route answers the path (an earlier route may take
it): the lookup is then a miss, never a wrong answer, since only the route that answers a path
stores entries for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.routing import compile_path, replace_params

from .. import _compat
from .._types import Scope
from . import CachePolicy, path_tag

# The walk gives up past this many routes (mounts included): the table is then unknown.
_MAX_ROUTES_READ: Final = 100_000
# How many middleware around an app load() looks through.
_MAX_WRAPPERS: Final = 32


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """A route that caches: its full template, compiled, and its policy."""

    template: str
    pattern: re.Pattern[str]
    policy: CachePolicy
    endpoint: Any = None


class RouteTable:
    """The cached routes of one app, read from its route table (again when it changed)."""

    __slots__ = ("_policies", "_tag_prefix", "read", "routes")

    def __init__(self) -> None:
        self.routes: tuple[CachedRoute, ...] = ()
        self._policies: frozenset[int] = frozenset()
        # What path_tag() puts before a route's path (the server's root_path).
        self._tag_prefix = "path:"
        #: Whether the table has been read (at the first request).
        self.read = False

    def path_tag(self, endpoint: Any, params: Mapping[str, Any]) -> str:
        """The path tag of the entries ``endpoint`` (a ``@cached`` route's) stores for these
        path parameters."""
        for route in self.routes:
            if route.endpoint is endpoint:
                path, unused = replace_params(*compile_path(route.template)[1:], dict(params))
                if unused or "{" in path:
                    raise ValueError(
                        f"invalidate(route={_name(endpoint)}): the path parameters "
                        f"{sorted(params)} do not fill {route.template!r}"
                    )
                return self._tag_prefix + path
        raise ValueError(
            f"invalidate(route={_name(endpoint)}): not a @cached route of this app "
            "(the route table read at the first request has no such endpoint)"
        )

    def load(self, scope: Scope, *apps: Any, force: bool = False) -> None:
        """Read the cached routes of the first of ``apps`` with a route table (looking through
        the middleware around it, which keep the app they wrap as ``app``). With none, the
        table stays unread, unless ``force``: then it is read as empty. ``scope`` (a request's)
        tells what a path tag puts before a route's path (the server's ``root_path``)."""
        tag = path_tag(scope)
        self._tag_prefix = tag[: len(tag) - len(_route_path(scope))]
        for app in apps:
            for _ in range(_MAX_WRAPPERS):
                found = cached_routes(app)
                if found is not None:
                    self.routes = tuple(found)
                    self._policies = frozenset(id(route.policy) for route in found)
                    self.read = True
                    return
                app = getattr(app, "app", None)
                if app is None:
                    break
        self.read = force

    def knows(self, policy: CachePolicy) -> bool:
        """Whether ``policy`` is one of the table's (a route added since it was read is not)."""
        return id(policy) in self._policies

    def match(self, scope: Scope) -> CachedRoute | None:
        """The cached route whose template matches a GET or HEAD of this path, if any."""
        method = scope["method"]
        if (method != "GET" and method != "HEAD") or not self.routes:
            return None
        path = _route_path(scope)
        for route in self.routes:
            if route.pattern.match(path):
                return route
        return None


def cached_routes(app: Any) -> list[CachedRoute] | None:
    """The routes of ``app`` that cache, or None when ``app`` has no route table to read."""
    routes = getattr(app, "routes", None)
    if routes is None:
        return None
    found: list[CachedRoute] = []
    pending: list[tuple[Any, str]] = [(routes, "")]
    read = 0
    while pending:
        current, prefix = pending.pop()
        for route in current:
            read += 1
            if read > _MAX_ROUTES_READ:
                return found
            policy = getattr(route, "serdes_cache", None)
            if isinstance(policy, CachePolicy) and "GET" in (getattr(route, "methods", ()) or ()):
                template = prefix + route.path
                pattern = compile_path(template)[0]
                found.append(CachedRoute(template, pattern, policy, route.endpoint))
            elif (included := _compat.inclusion(route)) is not None:
                pending.append((included[0].routes, prefix + included[1]))
            else:  # Mount: its path; Host: no path of its own
                nested = getattr(route, "routes", None)
                if nested:
                    pending.append((nested, prefix + getattr(route, "path", "")))
    return found


def _route_path(scope: Scope) -> str:
    """The path routing matches: ``path`` without the app's ``root_path`` (ASGI: ``path``
    includes it), as Starlette's router does."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        if path == root_path:
            return ""
        if path[len(root_path)] == "/":
            return path[len(root_path) :]
    return path


def _name(endpoint: Any) -> str:
    return getattr(endpoint, "__qualname__", None) or repr(endpoint)
