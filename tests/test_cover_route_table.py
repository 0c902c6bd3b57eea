"""The route table at its edges: path parameters that do not fill a template, apps behind
middleware (or nothing to read at all), huge tables, and the server's ``root_path``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import SerdesRoute, cached
from fastapi_serdes.cache import path_tag, route_table
from fastapi_serdes.cache.route_table import RouteTable, cached_routes


async def get_item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


def build() -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)
    router.get("/items/{item_id}")(cached(60)(get_item))
    app.include_router(router, prefix="/api")
    return app


def scope(path: str, root_path: str = "", method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


class Wrapper:
    """A middleware that keeps the app it wraps as ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app


@pytest.mark.parametrize(
    "params",
    [{}, {"other": 1}, {"item_id": 1, "extra": 2}],
    ids=["missing", "wrong name", "one too many"],
)
def test_path_parameters_must_fill_the_template_exactly(params: dict[str, Any]) -> None:
    table = RouteTable()
    table.load(scope("/api/items/1"), build())
    with pytest.raises(ValueError, match=r"do not fill '/api/items/\{item_id\}'"):
        table.path_tag(get_item, params)
    assert table.path_tag(get_item, {"item_id": 7}) == "path:/api/items/7"


def test_the_table_is_found_through_middleware() -> None:
    table = RouteTable()
    table.load(scope("/api/items/1"), Wrapper(Wrapper(build())))
    assert table.read
    assert [route.template for route in table.routes] == ["/api/items/{item_id}"]


def test_an_app_with_nothing_to_read_is_passed_over_for_the_next() -> None:
    table = RouteTable()
    table.load(scope("/api/items/1"), object(), build())
    assert table.read
    assert len(table.routes) == 1


def test_too_many_wrappers_leave_the_table_unread_unless_forced() -> None:
    app: Any = build()
    for _ in range(route_table._MAX_WRAPPERS + 1):
        app = Wrapper(app)
    table = RouteTable()
    table.load(scope("/"), app)
    assert not table.read
    table.load(scope("/"), app, force=True)
    assert table.read
    assert table.routes == ()


def test_the_walk_gives_up_on_a_huge_table(monkeypatch: pytest.MonkeyPatch) -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)
    for i in range(5):
        router.get(f"/r{i}")(cached(60)(get_item))
    app.include_router(router)
    assert len(cached_routes(app) or []) == 5
    monkeypatch.setattr(route_table, "_MAX_ROUTES_READ", 3)
    assert len(cached_routes(app) or []) < 5


@pytest.mark.parametrize(
    ("path", "root_path", "matches"),
    [
        ("/srv/api/items/1", "/srv", True),  # root_path stripped, as Starlette's router does
        ("/api/items/1", "/srv", True),  # a server that does not put root_path in path
        ("/srvx/api/items/1", "/srv", False),  # only a whole segment is the root path
        ("/srv", "/srv", False),  # the root itself: the empty route path
    ],
)
def test_matching_under_a_root_path(path: str, root_path: str, matches: bool) -> None:
    table = RouteTable()
    table.load(scope(path, root_path), build())
    assert (table.match(scope(path, root_path)) is not None) is matches
    assert table.match(scope(path, root_path, method="POST")) is None


@pytest.mark.parametrize(
    "first", [scope("/srv/api/items/1", "/srv"), scope("/srv", "/srv")], ids=["route", "root"]
)
def test_route_path_tags_are_the_tags_requests_store_under(first: dict[str, Any]) -> None:
    # Whatever request read the table, invalidate(route=..., item_id=3) must name the tag
    # that a request for item 3 stores its entries under.
    table = RouteTable()
    table.load(first, build())
    assert table.path_tag(get_item, {"item_id": 3}) == path_tag(scope("/srv/api/items/3", "/srv"))
