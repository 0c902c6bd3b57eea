"""Which requests the response cache may answer: the templates of the routes that cache.

Read once from the app's route table (included routers and mounts joined, compiled as Starlette
does), so a GET or HEAD is looked up only when its path matches one of a few patterns. A match
does not prove that this route answers the path, but the lookup is then a miss, never a wrong
answer: only the route that answers a path stores entries for it.
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

_MAX_ROUTES_READ: Final = 100_000  # the walk stops there (mounts included), with what it found
_MAX_WRAPPERS: Final = 32  # how many middleware around an app load() looks through


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """A route that caches: its full template, compiled, and its policy."""

    template: str
    pattern: re.Pattern[str]
    policy: CachePolicy
    endpoint: Any


class RouteTable:
    """The cached routes of one app, read from its route table (again when it changed)."""

    def __init__(self) -> None:
        self.routes: tuple[CachedRoute, ...] = ()
        self._policies: frozenset[int] = frozenset()
        self._tag_prefix = "path:"  # what path_tag() puts before a route's path (root_path)
        self.read = False

    def path_tag(self, endpoint: Any, params: Mapping[str, Any]) -> str:
        """The path tag of the entries a ``@cached`` endpoint stores for these path parameters."""
        name = getattr(endpoint, "__qualname__", None) or repr(endpoint)
        for route in self.routes:
            if route.endpoint is endpoint:
                path, unused = replace_params(*compile_path(route.template)[1:], dict(params))
                if unused or "{" in path:
                    raise ValueError(
                        f"invalidate(route={name}): the path parameters "
                        f"{sorted(params)} do not fill {route.template!r}"
                    )
                return self._tag_prefix + path
        raise ValueError(
            f"invalidate(route={name}): not a @cached route of this app "
            "(the route table read at the first request has no such endpoint)"
        )

    def load(self, scope: Scope, *apps: Any, force: bool = False) -> None:
        """Read the cached routes of the first of ``apps`` with a route table, looking through
        the middleware around each (``app.app``). With none, the table stays unread, unless
        ``force``: then it is read as empty."""
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
        """Whether ``policy`` is one of the table's (not a route added since it was read)."""
        return id(policy) in self._policies

    def match(self, scope: Scope) -> CachedRoute | None:
        """The cached route whose template matches a GET or HEAD of this path, if any."""
        if scope["method"] not in ("GET", "HEAD"):
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
    """The path routing matches: ``path`` without ``root_path``, as Starlette's router does."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    rest = path[len(root_path) :]
    if root_path and path.startswith(root_path) and rest[:1] in ("", "/"):
        return rest
    return path
