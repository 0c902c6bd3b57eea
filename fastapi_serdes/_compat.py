"""Every use of a private name of FastAPI or Starlette, in one place.

Each use has a test in ``tests/test_compat.py`` that fails when the dependency changes it, and a
fallback that keeps the library working (more slowly, or without the feature) when it is gone.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - a release without it
        return None


# FastAPI >= 0.160 builds an included route as an "effective context" of the original route
# (its own dependant, response field, response class...) while calling the original route's
# get_route_handler(); older releases copy the route instead and have no such variable.
# Fallback: the route itself, which is right for those releases.
_effective_route_context_var: Any = getattr(
    _module("fastapi.routing"), "_effective_route_context_var", None
)
# Starlette's request body limit (FastAPI's max_body_size) marks the scope with this key;
# releases without the limit have none (nothing is limited).
_BODY_LIMIT_KEY: str | None = getattr(
    _module("starlette.middleware.body_limit"), "MAX_BODY_SIZE_SCOPE_KEY", None
)


def effective_route(route: Any) -> Any:
    """The route (or FastAPI's inclusion context of it) whose handler is being built."""
    if _effective_route_context_var is not None:
        context = _effective_route_context_var.get()
        if context is not None and getattr(context, "original_route", None) is route:
            return context
    return route


@contextmanager
def swapped(target: Any, **values: Any) -> Iterator[None]:
    """Set attributes of ``target`` for the duration of the block, then restore them.

    ``SerdesRoute`` builds FastAPI's own handler (so integrations that wrap
    ``fastapi.routing.get_request_handler`` still see it) with its own response field and class.
    """
    saved = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


def preset_body(request: Request, raw: bytes, value: Any) -> None:
    """Hand FastAPI's handler a body the library decoded (MessagePack) as parsed JSON: Starlette
    caches the body in ``_body`` and the JSON in ``_json``, and the headers say
    ``application/json`` from here on (``request.body()`` stays the client's bytes)."""
    request._body = raw
    request._json = value
    raw_headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    raw_headers.append((b"content-type", b"application/json"))
    request._headers = Headers(raw=raw_headers)


def body_limited(scope: Any) -> bool:
    """Whether Starlette's request body limit applies to this request: reading the body is then
    FastAPI's alone, so its limit errors stay its own."""
    return _BODY_LIMIT_KEY is not None and _BODY_LIMIT_KEY in scope


def preset_json(request: Request, value: Any) -> None:
    """Hand FastAPI's handler the parsed JSON of a body ``request.body()`` already cached."""
    request._json = value


def rebuild_route_app(route: Any) -> None:
    """Build ``route.app`` again as ``APIRoute.__init__`` does (FastAPI >= 0.160 wraps it with
    the route's body size limit; older releases do not)."""
    from fastapi.routing import request_response

    app: Any = request_response(route.get_route_handler())
    try:
        from fastapi._body_limit import wrap_app_with_body_limit
    except ImportError:  # FastAPI without per-route body limits
        route.app = app
        return
    route.app = wrap_app_with_body_limit(app, getattr(route, "max_body_size", None))


def included_routers(router: Any) -> list[Any]:
    """The routers ``router`` includes (FastAPI >= 0.160 keeps them; older releases copied
    their routes, so there is nothing more to visit)."""
    return [found[0] for route in router.routes if (found := inclusion(route)) is not None]


def inclusion(route: Any) -> tuple[Any, str] | None:
    """For a router entry that includes another router (FastAPI >= 0.160), that router and its
    path prefix; None for any other entry (older releases copy included routes)."""
    router = getattr(route, "original_router", None)
    if router is None:
        return None
    return router, getattr(getattr(route, "include_context", None), "prefix", "")
