"""ETags, conditional requests and the pieces of the response cache (cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from fastapi_serdes.cache import (
    ENTRY_FORMAT,
    Entry,
    cache_control,
    cached,
    path_tag,
    request_key,
    storable_response,
)
from fastapi_serdes.cache.conditional import etag_for, matching_tag
from tests.conftest import build_app


def test_etag_is_a_quoted_content_hash() -> None:
    tag = etag_for(b"hello")
    assert tag.startswith('"') and tag.endswith('"')  # noqa: PT018
    assert len(tag) == 34
    assert etag_for(b"hello") == tag
    assert etag_for(b"hello!") != tag


def test_etag_is_the_same_in_every_process() -> None:
    code = "from fastapi_serdes.cache.conditional import etag_for; print(etag_for(b'same bytes'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "random")
    }
    assert outputs == {etag_for(b"same bytes") + "\n"}


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),  # weak comparison
        ('"x", "abc"', True),
        ('"x", W/"y"', False),
        ("*", True),
        ('"ab"', False),
        ("abc", False),  # unquoted is not our tag
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert (matching_tag(header, '"abc"') is not None) is matches


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no-cache", {"no-cache": None}),
        ("Max-Age=60, PUBLIC", {"max-age": "60", "public": None}),
        ('private="set-cookie", no-store', {"private": "set-cookie", "no-store": None}),
        ("", {}),
        (None, {}),
    ],
)
def test_cache_control(value: str | None, expected: dict[str, str | None]) -> None:
    assert cache_control(value) == expected


@pytest.mark.parametrize(
    ("status", "headers", "storable"),
    [
        (200, [], True),
        (200, [(b"cache-control", b"public, max-age=5")], True),
        (404, [], False),
        (206, [(b"content-range", b"bytes 0-1/2")], False),
        (200, [(b"set-cookie", b"a=1")], False),
        (200, [(b"cache-control", b"private")], False),
        (200, [(b"cache-control", b"no-store")], False),
        (200, [(b"vary", b"Accept, *")], False),
        (500, [], False),
    ],
)
def test_storable_response(status: int, headers: list[tuple[bytes, bytes]], storable: bool) -> None:
    assert storable_response(status, headers) is storable


def _scope(path: str = "/a", query: bytes = b"", **headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"path": path, "query_string": query, "headers": raw, "root_path": ""}


def test_request_key_holds_everything_that_changes_the_bytes() -> None:
    base = {"media_type": "application/json", "coding": "identity", "vary": (), "principal": None}
    key = request_key(_scope(), **base)  # type: ignore[arg-type]
    assert key == request_key(_scope(), **base)  # type: ignore[arg-type]
    assert key != request_key(_scope("/b"), **base)  # type: ignore[arg-type]
    assert key != request_key(_scope(query=b"view=minimal"), **base)  # type: ignore[arg-type]
    assert key != request_key(_scope(host="other"), **base)  # type: ignore[arg-type]
    for change in (
        {"media_type": "application/msgpack"},
        {"coding": "br"},
        {"principal": "user-1"},
    ):
        assert key != request_key(_scope(), **{**base, **change})  # type: ignore[arg-type]
    with_vary = {**base, "vary": ("accept-language",)}
    assert request_key(_scope(accept_language="fr"), **with_vary) != request_key(  # type: ignore[arg-type]
        _scope(accept_language="de"),
        **with_vary,  # type: ignore[arg-type]
    )
    # Query order does not matter; the query's content does.
    assert request_key(_scope(query=b"a=1&b=2"), **base) == request_key(  # type: ignore[arg-type]
        _scope(query=b"b=2&a=1"),
        **base,  # type: ignore[arg-type]
    )


def test_path_tag() -> None:
    assert path_tag(_scope("/users/42")) == "path:/users/42"


@pytest.mark.parametrize(
    ("root_path", "path", "tag"),
    [
        ("/api", "/api/users/42", "path:/api/users/42"),  # ASGI: path includes root_path
        ("/api", "/users/42", "path:/api/users/42"),  # an older server: it does not
        ("/api", "/api", "path:/api"),
        ("/api", "/apiary", "path:/api/apiary"),  # a prefix of the name is not the root
        ("/api/", "/api/users", "path:/api/users"),
    ],
)
def test_path_tag_names_the_whole_path_once(root_path: str, path: str, tag: str) -> None:
    assert path_tag({**_scope(path), "root_path": root_path}) == tag


def test_entry_round_trip_and_format_version() -> None:
    entry = Entry(200, [(b"content-type", b"application/json")], b"{}", '"e"', 10.0, 60.0, ["t"])
    data = entry.dumps()
    assert data.startswith(ENTRY_FORMAT)
    assert Entry.loads(data) == entry
    assert Entry.loads(b"FSE0" + data[4:]) is None  # another format version: a miss
    assert Entry.loads(data[:-3]) is None  # corrupt: a miss
    assert Entry.loads(b"\x80\x04pickle") is None  # never unpickled
    assert entry.fresh(69.0)
    assert not entry.fresh(70.0)
    assert entry.age(25.5) == 15


@pytest.mark.parametrize("ttl", [0, -1, True, "60", float("nan")])
def test_cached_validates_ttl(ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        cached(ttl)  # type: ignore[arg-type]


def test_cached_cache_control_default() -> None:
    def endpoint() -> None: ...

    assert cached(60)(endpoint).__serdes_cache__.cache_control == "public, max-age=60"  # type: ignore[attr-defined]
    policy = cached(5, key=lambda r: "u")(endpoint).__serdes_cache__  # type: ignore[attr-defined]
    assert policy.cache_control == "private, max-age=5"


pytestmark_anyio = pytest.mark.anyio


@pytest.mark.anyio
@pytest.mark.parametrize("accept", ["application/json", "application/msgpack"])
async def test_etag_and_304_on_get_and_head(accept: str) -> None:
    transport = httpx.ASGITransport(app=build_app(answer_head=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await _etag_and_304_on_get_and_head(client, accept)


async def _etag_and_304_on_get_and_head(client: httpx.AsyncClient, accept: str) -> None:
    res = await client.get("/api/items/1", headers={"accept": accept})
    etag = res.headers["etag"]
    assert etag == etag_for(res.content)
    for method in ("GET", "HEAD"):
        for inm in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            again = await client.request(
                method, "/api/items/1", headers={"accept": accept, "if-none-match": inm}
            )
            assert again.status_code == 304, (method, inm)
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["vary"] == res.headers["vary"]  # as the 200 had it
            assert "content-type" not in again.headers
    changed = await client.get("/api/items/1", headers={"accept": accept, "if-none-match": '"x"'})
    assert changed.status_code == 200


@pytest.mark.anyio
async def test_etag_differs_per_representation(client: httpx.AsyncClient) -> None:
    as_json = await client.get("/api/items/1")
    as_msgpack = await client.get("/api/items/1", headers={"accept": "application/msgpack"})
    assert as_json.headers["etag"] != as_msgpack.headers["etag"]
    res = await client.get(
        "/api/items/1",
        headers={"accept": "application/msgpack", "if-none-match": as_json.headers["etag"]},
    )
    assert res.status_code == 200


@pytest.mark.anyio
async def test_no_etag_on_unsafe_methods_and_non_200(client: httpx.AsyncClient) -> None:
    res = await client.post("/api/items", json={"id": 1, "name": "n"})
    assert res.status_code == 201
    assert "etag" not in res.headers
    res = await client.get("/api/items/404")
    assert "etag" not in res.headers


def test_build_app_still_builds() -> None:
    assert build_app() is not None


def test_the_route_table_reads_routers_mounts_and_hosts() -> None:
    from fastapi import APIRouter, FastAPI
    from starlette.routing import Host, Mount, Router

    from fastapi_serdes import SerdesRoute, cached
    from fastapi_serdes.cache.route_table import cached_routes

    def app_with(cached_route: bool) -> FastAPI:
        app = FastAPI()
        router = APIRouter(route_class=SerdesRoute)
        inner = APIRouter(route_class=SerdesRoute)

        async def endpoint(item_id: int) -> dict[str, int]:
            return {"a": item_id}

        inner.get("/x/{item_id:int}")(cached(60)(endpoint) if cached_route else endpoint)
        router.include_router(inner, prefix="/inner")  # nested included routers
        app.include_router(router, prefix="/api")
        return app

    def templates(app: object) -> list[str] | None:
        found = cached_routes(app)
        return None if found is None else [route.template for route in found]

    assert templates(app_with(True)) == ["/api/inner/x/{item_id:int}"]
    assert templates(app_with(False)) == []
    assert templates(Router([Mount("/m", app=app_with(True))])) == ["/m/api/inner/x/{item_id:int}"]
    assert templates(Router([Host("h", app=app_with(False))])) == []
    (route,) = cached_routes(Router([Mount("/m", app=app_with(True))])) or []
    assert route.pattern.match("/m/api/inner/x/7")
    assert not route.pattern.match("/m/api/inner/x/seven")  # the int convertor
    assert not route.pattern.match("/api/inner/x/7")

    async def raw_asgi(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never called")

    # No route table at all, or a mounted app that shows none.
    assert cached_routes(raw_asgi) is None
    assert templates(Router([Mount("/raw", app=raw_asgi)])) == []


@pytest.mark.anyio
async def test_an_app_whose_routes_cannot_be_read_is_cached_as_before() -> None:
    # SerdesMiddleware around an app it cannot see into assumes a route may cache.
    from fastapi import APIRouter, FastAPI

    from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached

    inner = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/x")
    @cached(60)
    async def endpoint() -> dict[str, int]:
        return {"a": 1}

    inner.include_router(router)

    async def opaque(scope: dict[str, object], receive: object, send: object) -> None:
        await inner(scope, receive, send)  # type: ignore[arg-type]

    app = SerdesMiddleware(opaque)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        statuses = [(await c.get("/x")).headers.get("cache-status", "") for _ in range(2)]
    assert "stored" in statuses[0]
    assert "hit" in statuses[1]
