"""``use_serdes_routes``: every route of an existing app becomes a ``SerdesRoute``, in one line.

``APIRouter(route_class=SerdesRoute)`` changes the routes that router declares, not those of
the routers it includes (FastAPI keeps each route's own class). Mounted sub-applications are left
as they are.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter

from . import _compat
from .route import SerdesRoute

logger = logging.getLogger("fastapi_serdes")


def use_serdes_routes(
    app: FastAPI | APIRouter, route_class: type[SerdesRoute] = SerdesRoute
) -> int:
    """Make every ``APIRoute`` of ``app`` (its own and those of the routers it includes, before
    or after this call) a ``route_class``; returns how many routes were converted.

    Routes of another custom route class cannot take effect as ``SerdesRoute`` (their class
    builds its own handler): they are left alone with a ``RuntimeWarning`` naming them.
    """
    router = app.router if isinstance(app, FastAPI) else app
    count = _convert(router, route_class)
    router.route_class = route_class  # for routes declared later (app.get)
    original = router.include_router

    def include_router(included: APIRouter, *args: Any, **kwargs: Any) -> None:
        _convert(included, route_class)
        original(included, *args, **kwargs)

    router.include_router = include_router  # type: ignore[method-assign,assignment]
    return count


def _routes(router: APIRouter) -> Iterator[tuple[Any, bool]]:
    """Every route of ``router`` and of the routers it includes (each router once), with whether
    a ``route_class=SerdesRoute`` set on a router above fails to reach its router (a router whose
    own ``route_class`` is a ``SerdesRoute`` made its plain routes on purpose)."""
    seen: set[int] = set()
    pending = [(router, False)]
    while pending:
        current, inherited = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        own = issubclass(current.route_class, SerdesRoute)
        for route in current.routes:
            yield route, inherited and not own
        pending.extend(
            (included, inherited or own) for included in _compat.included_routers(current)
        )


def document_problem_responses(app: Any) -> None:
    """List the problem responses in OpenAPI for every ``SerdesRoute`` of ``app``: called by
    ``SerdesMiddleware(problem_details=True)`` at the app's first request (the schema, if it
    was generated already, is generated again)."""
    router = getattr(app, "router", None)
    if not isinstance(router, APIRouter):
        return
    for route, _ in _routes(router):
        if isinstance(route, SerdesRoute):
            route._add_problem_responses(problem_details=True)
    app.openapi_schema = None


def warn_unreached_routes(app: Any) -> None:
    """Log a warning (once, at the app's first request) when ``route_class=SerdesRoute`` on a
    router does not reach the plain routes of the routers it includes. A log, not a Python
    warning: an app whose tests turn warnings into errors must keep working as on stock FastAPI."""
    router = getattr(app, "router", None)
    if not isinstance(router, APIRouter):
        return
    paths = [
        route.path for route, unreached in _routes(router) if unreached and type(route) is APIRoute
    ]
    if paths:
        shown = ", ".join(repr(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
        logger.warning(
            "route_class=SerdesRoute does not reach %d route(s) of included routers (%s): "
            "FastAPI keeps each route's own class; call use_serdes_routes(app) to make every "
            "route a SerdesRoute",
            len(paths),
            shown,
        )


def _convert(router: APIRouter, route_class: type[SerdesRoute]) -> int:
    count = 0
    for route, _ in _routes(router):
        if type(route) is APIRoute:  # made a route_class, as if declared with it
            route.__class__ = route_class
            adopted: Any = route
            adopted._user_openapi_extra = route.openapi_extra
            adopted._serdes_views = None
            adopted._add_problem_responses()
            _compat.rebuild_route_app(route)
            count += 1
        elif isinstance(route, APIRoute) and not isinstance(route, SerdesRoute):
            warnings.warn(
                f"route {route.path!r} has its own route class {type(route).__name__}: "
                "use_serdes_routes() leaves it as it is",
                RuntimeWarning,
                stacklevel=3,
            )
    return count
