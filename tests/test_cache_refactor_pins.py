"""Pins for the cases of ``cached``, ``storable_response`` and ``Capture.send`` (issue 15: they
were split into smaller functions; every case they handle is pinned here or elsewhere)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes._types import ASGIApp, Message, Receive, Scope, Send
from fastapi_serdes.cache import CachePolicy, storable_response

# --- cached(): argument validation ----------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, -1, -0.5, True, False, "60", None, float("nan")])
def test_cached_names_a_bad_ttl_and_quotes_it(ttl: object) -> None:
    expected = f"cached(ttl=...) must be a positive number of seconds, got {ttl!r}"
    with pytest.raises(ValueError) as raised:
        cached(ttl)  # type: ignore[arg-type]
    assert str(raised.value) == expected


@pytest.mark.parametrize("name", ["stale_while_revalidate", "stale_if_error"])
@pytest.mark.parametrize("window", [-1, -0.5, True, False, "5", None, float("nan")])
def test_cached_names_a_bad_stale_window_and_quotes_it(name: str, window: object) -> None:
    expected = f"cached({name}=...) must be a number of seconds >= 0, got {window!r}"
    with pytest.raises(ValueError) as raised:
        cached(60, **{name: window})  # type: ignore[arg-type]
    assert str(raised.value) == expected


def test_cached_checks_ttl_before_the_windows_and_revalidate_before_error() -> None:
    with pytest.raises(ValueError, match=r"^cached\(ttl="):
        cached(0, stale_while_revalidate=-1, stale_if_error=-1)
    with pytest.raises(ValueError, match=r"^cached\(stale_while_revalidate="):
        cached(1, stale_while_revalidate=-1, stale_if_error=-1)


def _policy(*args: Any, **kwargs: Any) -> CachePolicy:
    def endpoint() -> None: ...

    decorated = cached(*args, **kwargs)(endpoint)
    assert decorated is endpoint  # the decorator marks the endpoint, it does not wrap it
    policy: CachePolicy = endpoint.__serdes_cache__  # type: ignore[attr-defined]
    return policy


def _user(request: Request) -> str | None:
    return "u"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((60,), {}, "public, max-age=60"),
        ((5,), {"key": _user}, "private, max-age=5"),
        ((1.9,), {}, "public, max-age=1"),  # whole seconds, truncated
        ((0.5,), {}, "public, max-age=0"),
        (
            (60,),
            {"stale_while_revalidate": 30},
            "public, max-age=60, stale-while-revalidate=30",
        ),
        ((60,), {"stale_if_error": 7.9}, "public, max-age=60, stale-if-error=7"),
        (
            (60,),
            {"key": _user, "stale_while_revalidate": 30, "stale_if_error": 600},
            "private, max-age=60, stale-while-revalidate=30, stale-if-error=600",
        ),
        ((60,), {"stale_while_revalidate": 0, "stale_if_error": 0}, "public, max-age=60"),
        # A window under a second is kept, but says nothing in whole seconds.
        ((60,), {"stale_if_error": 0.5}, "public, max-age=60, stale-if-error=0"),
        ((60,), {"cache_control": None}, None),
        ((60,), {"cache_control": "no-cache", "stale_if_error": 5}, "no-cache"),
    ],
)
def test_cached_cache_control(args: Any, kwargs: Any, expected: str | None) -> None:
    assert _policy(*args, **kwargs).cache_control == expected


def test_cached_builds_the_policy() -> None:
    def tags(request: Request) -> list[str]:
        return []

    policy = _policy(
        7,
        vary=["Accept-Language", "X-Tenant"],
        key=_user,
        tags=tags,
        stale_while_revalidate=2,
        stale_if_error=3,
    )
    assert policy == CachePolicy(
        ttl=7.0,
        vary=("accept-language", "x-tenant"),
        key=_user,
        tags=tags,
        cache_control="private, max-age=7, stale-while-revalidate=2, stale-if-error=3",
        stale_while_revalidate=2.0,
        stale_if_error=3.0,
    )
    assert type(policy.ttl) is float
    assert type(policy.stale_while_revalidate) is type(policy.stale_if_error) is float


# --- storable_response ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "per_principal", "storable"),
    [
        (200, [], False, True),
        (200, [], True, True),
        (201, [], False, False),
        (304, [], False, False),
        (206, [], False, False),
        (200, [(b"content-range", b"bytes 0-9/10")], True, False),
        (200, [(b"set-cookie", b"a=1")], True, False),
        (200, [(b"cache-control", b"private")], False, False),
        (200, [(b"cache-control", b"Private, max-age=5")], False, False),
        (200, [(b"cache-control", b'private="set-cookie"')], False, False),
        (200, [(b"cache-control", b"private")], True, True),  # an entry per principal
        (200, [(b"cache-control", b"no-store")], True, False),
        (200, [(b"cache-control", b"public, NO-STORE")], False, False),
        (200, [(b"cache-control", b"public, max-age=5")], True, True),
        (200, [(b"cache-control", b"no-cache")], False, True),
        (200, [(b"vary", b"*")], False, False),
        (200, [(b"vary", b"Accept,*")], True, False),
        (200, [(b"vary", b" * ")], False, False),
        (200, [(b"vary", b"Accept, Accept-Language")], False, True),
        (200, [(b"vary", b"x*")], False, True),
        # Names are compared as they come (ASGI headers are lowercase).
        (200, [(b"Set-Cookie", b"a=1")], False, True),
        # A forbidding header anywhere in the list, after harmless ones.
        (
            200,
            [
                (b"content-type", b"application/json"),
                (b"cache-control", b"public"),
                (b"vary", b"accept"),
                (b"set-cookie", b"a=1"),
            ],
            False,
            False,
        ),
        (200, [(b"cache-control", b"public"), (b"cache-control", b"private")], False, False),
    ],
)
def test_storable_response_cases(
    status: int, headers: list[tuple[bytes, bytes]], per_principal: bool, storable: bool
) -> None:
    assert storable_response(status, headers, per_principal=per_principal) is storable


# --- Capture.send, through an app ------------------------------------------------------------


class Record:
    """A pure ASGI middleware that records the type of every message sent through it."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording(message: Message) -> None:
            self.seen.append(message["type"])
            await send(message)

        await self.app(scope, receive, recording)


class Announce:
    """A pure ASGI middleware that sends a message of another type before the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.announce"})
        await self.app(scope, receive, send)


def build(calls: dict[str, int]) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    def count(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]

    @router.get("/items")
    @cached(60)
    async def items() -> dict[str, int]:
        return {"n": count("items")}

    @router.get("/cookie")
    @cached(60)
    async def cookie(response: Response) -> dict[str, int]:
        response.set_cookie("session", "secret")
        return {"n": count("cookie")}

    @router.get("/me")
    @cached(60, key=lambda request: request.headers.get("x-user"))
    async def me() -> dict[str, int]:
        return {"n": count("me")}

    @router.get("/plain")
    async def plain() -> dict[str, int]:
        return {"n": count("plain")}

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, cache=MemoryStore(), compression=False, answer_head=True)
    return app


async def _get(
    app: ASGIApp, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, headers=headers)


@pytest.mark.anyio
async def test_an_uncached_route_passes_untouched() -> None:
    calls: dict[str, int] = {}
    app = build(calls)
    for n in (1, 2):
        response = await _get(app, "/plain")
        assert response.json() == {"n": n}
        assert "cache-status" not in response.headers


@pytest.mark.anyio
async def test_a_head_miss_is_passed_on_and_not_stored() -> None:
    calls: dict[str, int] = {}
    app = build(calls)
    head = await _get(app, "/items", method="HEAD")
    assert head.status_code == 200
    assert head.headers["cache-status"] == "fastapi-serdes; fwd=miss"
    first = await _get(app, "/items")
    assert first.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert first.json() == {"n": 2}


@pytest.mark.anyio
async def test_a_no_store_request_is_passed_on_and_not_stored() -> None:
    calls: dict[str, int] = {}
    app = build(calls)
    response = await _get(app, "/items", headers={"cache-control": "no-store"})
    assert response.headers["cache-status"] == "fastapi-serdes; fwd=miss"
    assert response.json() == {"n": 1}
    again = await _get(app, "/items")
    assert again.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert again.json() == {"n": 2}


@pytest.mark.anyio
async def test_an_unstorable_answer_is_passed_on_with_its_headers() -> None:
    calls: dict[str, int] = {}
    app = build(calls)
    for n in (1, 2):
        response = await _get(app, "/cookie")
        assert response.headers["cache-status"] == "fastapi-serdes; fwd=miss"
        assert response.headers["set-cookie"].startswith("session=secret")
        assert response.json() == {"n": n}


@pytest.mark.anyio
async def test_a_request_the_key_function_turns_away_is_passed_on() -> None:
    calls: dict[str, int] = {}
    app = build(calls)
    for n in (1, 2):
        response = await _get(app, "/me")  # no X-User: the key function answers None
        assert response.headers["cache-status"] == "fastapi-serdes; fwd=miss"
        assert response.json() == {"n": n}
    stored = await _get(app, "/me", headers={"x-user": "alice"})
    assert stored.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    hit = await _get(app, "/me", headers={"x-user": "alice"})
    assert hit.headers["cache-status"] == "fastapi-serdes; hit"
    assert hit.json() == stored.json() == {"n": 3}


@pytest.mark.anyio
async def test_a_message_of_another_type_before_the_answer_passes_and_storing_goes_on() -> None:
    calls: dict[str, int] = {}
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items")
    @cached(60)
    async def items() -> dict[str, int]:
        calls["items"] = calls.get("items", 0) + 1
        return {"n": calls["items"]}

    app.include_router(router)
    app.add_middleware(Announce)  # added first: inside SerdesMiddleware
    app.add_middleware(SerdesMiddleware, cache=MemoryStore(), compression=False)
    seen: list[str] = []
    recorded = Record(app, seen)
    first = await _get(recorded, "/items")
    assert seen == ["http.response.announce", "http.response.start", "http.response.body"]
    assert first.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    hit = await _get(recorded, "/items")
    assert hit.headers["cache-status"] == "fastapi-serdes; hit"
    assert hit.json() == first.json() == {"n": 1}
