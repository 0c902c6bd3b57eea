"""Cache and views workloads: response-cache hits against fastapi-cache2 and Litestar, views.

Cache hits: every contender caches ``GET /users/{size}`` for an hour in process memory
(fastapi-serdes: ``@cached(3600)`` with ``SerdesMiddleware(cache=MemoryStore())``; Litestar:
``@get(..., cache=3600)`` with its default ``MemoryStore`` named ``response_cache``;
fastapi-cache2: ``@cache(expire=3600)`` on ``InMemoryBackend``). The check request before timing
fills the cache and calibration warms it, so every timed request is a warm hit. Every hit must
answer **the same bytes** as stock FastAPI (compact JSON from pydantic: Litestar's pydantic
plugin dumps ``mode="json"`` and msgspec writes it compactly, byte for byte the same), so no
contender is timed sending a smaller or different body. ``stock`` (no cache) is the baseline,
Litestar the peer. Views: one SerdesRoute serving ``?view=minimal|detailed`` and ``?fields=``
against FastAPI's static ``response_model_include``.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import brotli
import orjson
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.apps import JSON, Contender
from benchmarks.harness import Entry, Response, Workload, WrongResponse, make_request
from benchmarks.payloads import Payloads, User

_PATHS = {"small": "/users/small", "medium": "/users/medium", "large": "/users/large"}
_MINIMAL = ("id", "username")


def _cached_routes(router: APIRouter, payloads: Payloads, decorate: Callable[[Any], Any]) -> None:
    @router.get("/users/small")
    @decorate
    async def users_small() -> User:
        return payloads.small

    @router.get("/users/medium")
    @decorate
    async def users_medium() -> list[User]:
        return payloads.medium

    @router.get("/users/large")
    @decorate
    async def users_large() -> list[User]:
        return payloads.large


def build_serdes_cached(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import Compression, MemoryStore, SerdesMiddleware, SerdesRoute, cached

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(route_class=SerdesRoute)
    _cached_routes(router, payloads, cached(3600))
    app.include_router(router)
    levels = {"zstd": 4, "br": 4, "gzip": 4}  # the peers' level, for the compressed workload
    app.add_middleware(
        SerdesMiddleware, cache=MemoryStore(), compression=Compression(levels=levels)
    )
    return app


def build_serdes_cached_near(payloads: Payloads) -> ASGIApp:
    """@cached on a RedisStore (127.0.0.1:6379) with its in-process tier: a warm hit never
    reaches Redis, so it should cost what a MemoryStore hit costs."""
    import os
    from contextlib import asynccontextmanager

    from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached
    from fastapi_serdes.cache.redis_store import RedisStore

    prefix = f"bench-near-{os.getpid()}:"  # entries expire with their TTL
    store = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix, near_bytes=64 << 20)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await store.aclose()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    router = APIRouter(route_class=SerdesRoute)
    _cached_routes(router, payloads, cached(3600))
    app.include_router(router)
    app.add_middleware(SerdesMiddleware, cache=store)
    return app


def build_serdes_fragments(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached_fragments

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(route_class=SerdesRoute)
    # The payload never changes: every item's version stays the same, only the list is joined.
    fragments = cached_fragments(lambda user: user.id)

    @router.get("/users/medium")
    @fragments
    async def users_medium() -> list[User]:
        return payloads.medium

    @router.get("/users/large")
    @fragments
    async def users_large() -> list[User]:
        return payloads.large

    app.include_router(router)
    app.add_middleware(SerdesMiddleware)
    return app


def build_fastapi_cache2(payloads: Payloads) -> ASGIApp:
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.decorator import cache

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter()
    _cached_routes(router, payloads, cache(expire=3600))
    app.include_router(router)
    FastAPICache.init(InMemoryBackend(), prefix="bench")
    return app


def build_litestar_cached(payloads: Payloads) -> ASGIApp:
    """Litestar's response cache as its docs show it: ``cache=`` seconds on the handler.

    A hit is the default key builder (method + path + sorted query), ``MemoryStore.get`` and the
    stored ASGI messages unpacked from MessagePack and sent; the handler does not run.
    """
    from litestar import Litestar, get

    @get("/users/small", cache=3600)
    async def users_small() -> User:
        return payloads.small

    @get("/users/medium", cache=3600)
    async def users_medium() -> list[User]:
        return payloads.medium

    @get("/users/large", cache=3600)
    async def users_large() -> list[User]:
        return payloads.large

    # Litestar types its ASGI messages more narrowly than Starlette's ASGIApp.
    app = Litestar([users_small, users_medium, users_large], openapi_config=None)
    return cast(ASGIApp, app)


def build_asgi_bytes(payloads: Payloads) -> ASGIApp:
    """The floor of any cache hit: a bare ASGI app sending bytes it already holds."""
    bodies = {
        path: TypeAdapter(User if size == "small" else list[User]).dump_json(payloads.by_size(size))
        for size, path in _PATHS.items()
    }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan: return at once, as uvicorn accepts
        body = bodies[scope["path"]]
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def build_stock_include(payloads: Payloads) -> ASGIApp:
    """What FastAPI users have today for a minimal shape: a static ``response_model_include``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter()  # included like every other contender's routes: same routing cost

    @router.get(
        "/users/medium",
        response_model=list[User],
        response_model_include={"__all__": set(_MINIMAL)},
    )
    async def users_medium() -> list[User]:
        return payloads.medium

    app.include_router(router)
    return app


def build_serdes_views(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import ALL, SerdesMiddleware, SerdesRoute, Views

    views = Views(User, minimal=list(_MINIMAL), detailed=ALL, default="detailed")
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/users/medium")
    @views
    async def users_medium() -> list[User]:
        return payloads.medium

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, compression=None)
    return app


class Batch(BaseModel):
    """A JSON request body of users: FastAPI validates it on every request."""

    users: list[User]


def _batch_app(serdes: bool) -> ASGIApp:
    from fastapi_serdes import SerdesMiddleware, SerdesRoute

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(route_class=SerdesRoute) if serdes else APIRouter()

    @router.post("/batch")
    async def batch(body: Batch) -> dict[str, int]:
        return {"count": len(body.users)}

    app.include_router(router)
    if serdes:
        app.add_middleware(SerdesMiddleware)
    return app


CACHE_CONTENDERS = [
    Contender(
        "serdes-fragments",
        build_serdes_fragments,
        None,
        "SerdesMiddleware + SerdesRoute + @cached_fragments(lambda user: user.id)",
        ("fastapi_serdes:cached_fragments",),
    ),
    Contender("stock-batch", lambda p: _batch_app(False), None, "FastAPI, JSON body"),
    Contender(
        "serdes-batch",
        lambda p: _batch_app(True),
        None,
        "SerdesMiddleware + SerdesRoute, JSON body",
        ("fastapi_serdes:SerdesRoute",),
    ),
    Contender(
        "serdes-cached",
        build_serdes_cached,
        None,
        "SerdesMiddleware + SerdesRoute + @cached(3600), in-process MemoryStore",
        ("fastapi_serdes:cached",),
    ),
    Contender(
        "serdes-cached-near",
        build_serdes_cached_near,
        None,
        "SerdesMiddleware + SerdesRoute + @cached(3600), RedisStore with its in-process tier",
        ("fastapi_serdes.cache.redis_store:RedisStore",),
    ),
    Contender(
        "fastapi-cache2",
        build_fastapi_cache2,
        None,
        "stock app + fastapi-cache2 @cache(expire=3600), InMemoryBackend",
        ("fastapi_cache:FastAPICache",),
    ),
    Contender(
        "litestar-cached",
        build_litestar_cached,
        None,
        "Litestar with cache=3600 on the handlers (its default memory store)",
        ("litestar:Litestar",),
    ),
    Contender("asgi-bytes", build_asgi_bytes, None, "bare ASGI app sending stored bytes (a floor)"),
    Contender("stock-include", build_stock_include, None, "FastAPI response_model_include"),
    Contender(
        "serdes-views",
        build_serdes_views,
        None,
        "SerdesRoute with Views(User, minimal=[id, username], detailed=ALL)",
        ("fastapi_serdes:Views",),
    ),
]


def _decode(coding: str | None, body: bytes) -> bytes:
    if coding is None:
        return body
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding == "gzip":
        return gzip.decompress(body)
    raise WrongResponse(f"unexpected coding {coding!r}")


def _check(
    expected: Any, coding: str | None = None, exact: bytes | None = None
) -> Callable[[Response], None]:
    """Status 200, the coding, a body decoding to ``expected`` (and equal to ``exact``, if given)."""

    def check(response: Response) -> None:
        if response.status != 200:
            raise WrongResponse(f"status {response.status}: {response.body[:200]!r}")
        if response.header("content-encoding") != coding:
            raise WrongResponse(f"content-encoding {response.header('content-encoding')!r}")
        body = _decode(coding, response.body)
        if exact is not None and body != exact:
            raise WrongResponse("the body is not byte for byte stock FastAPI's")
        if orjson.loads(body) != expected:
            raise WrongResponse("the body differs from the expected payload")

    return check


def build_cache_workloads(available: Mapping[str, Contender], payloads: Payloads) -> list[Workload]:
    """Cache hits per size, the compressed hit, and the views workloads."""
    workloads: list[Workload] = []
    for size in ("small", "medium", "large"):
        value = payloads.by_size(size)
        adapter: TypeAdapter[Any] = TypeAdapter(User if size == "small" else list[User])
        exact = adapter.dump_json(value)  # what stock FastAPI sends
        request = make_request("GET", _PATHS[size], {"accept": JSON})
        entries = [
            Entry(name, name, request, _check(orjson.loads(exact), exact=exact))
            for name in (
                "stock",
                "fastapi-cache2",
                "litestar-cached",
                "serdes-cached",
                "serdes-cached-near",
                "asgi-bytes",
            )
            if name in available
        ]
        workloads.append(
            Workload(f"cache hit {size}", tuple(entries), baseline="stock", peer="litestar-cached")
        )
    medium = orjson.loads(TypeAdapter(list[User]).dump_json(payloads.medium))
    br = {"accept": JSON, "accept-encoding": "br"}
    entries = [
        Entry(
            "stock",
            "stock",
            make_request("GET", _PATHS["medium"], {"accept": JSON}),
            _check(medium),
        ),
        Entry(
            "st-compress br-4",
            "starlette-compress",
            make_request("GET", _PATHS["medium"], br),
            _check(medium, "br"),
        ),
        Entry(
            "serdes-cached br-4",
            "serdes-cached",
            make_request("GET", _PATHS["medium"], br),
            _check(medium, "br"),
        ),
    ]
    entries = [e for e in entries if e.contender in available]
    workloads.append(
        Workload("cache hit br-4 medium", tuple(entries), "stock", peer="st-compress br-4")
    )
    for size in ("medium", "large"):
        expected = orjson.loads(TypeAdapter(list[User]).dump_json(getattr(payloads, size)))
        entries = [
            Entry(name, name, make_request("GET", _PATHS[size], {"accept": JSON}), _check(expected))
            for name in ("stock", "serdes", "serdes-fragments")
            if name in available
        ]
        workloads.append(
            Workload(f"fragments {size}", tuple(entries), baseline="stock", peer="serdes")
        )
    body = orjson.dumps({"users": medium})
    entries = [
        Entry(
            name,
            name,
            make_request("POST", "/batch", {"content-type": JSON, "accept": JSON}, body),
            _check({"count": len(medium)}),
        )
        for name in ("stock-batch", "serdes-batch")
        if name in available
    ]
    workloads.append(
        Workload("POST same body medium", tuple(entries), "stock-batch", peer="serdes-batch")
    )
    minimal = [{k: u[k] for k in _MINIMAL} for u in medium]
    ids = [{"id": u["id"]} for u in medium]

    def view(label: str, contender: str, query: str, expected: Any) -> Entry:
        request = make_request("GET", "/users/medium" + query, {"accept": JSON})
        return Entry(label, contender, request, _check(expected))

    entries = [
        view("detailed", "serdes-views", "?view=detailed", medium),
        view("static include", "stock-include", "", minimal),
        view("view=minimal", "serdes-views", "?view=minimal", minimal),
        view("fields=id,username", "serdes-views", "?fields=id,username", minimal),
        view("fields=id", "serdes-views", "?fields=id", ids),
    ]
    entries = [e for e in entries if e.contender in available]
    workloads.append(
        Workload("views medium", tuple(entries), baseline="detailed", peer="static include")
    )
    return workloads
