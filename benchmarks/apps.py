"""The contenders: one ASGI app factory each, all serving the same routes and payloads.

A contender is a name, a factory and the MessagePack media type it speaks (if any). To add a
peer (GZipMiddleware, starlette-compress, fastapi-cache2, Litestar...), write a factory that
returns an ASGI app serving the routes below and add a :class:`Contender` to :func:`contenders`;
then list it in the workloads it should run in (``benchmarks/workloads.py``). A contender whose
``requires`` do not import is reported and skipped, so an optional peer never breaks the run.

Routes (identical in every contender):

- ``GET /users/small`` -> ``User``
- ``GET /users/medium`` -> ``list[User]`` (100 users)
- ``GET /users/large`` -> ``list[User]`` (2,000 users)
- ``POST /users`` with a ``list[User]`` body -> ``201 Ack``
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

from benchmarks.payloads import Ack, Payloads, User

JSON = "application/json"
MSGPACK = "application/msgpack"
# msgpack-asgi 3 matches the whole Accept value against its configured type (exact string, not a
# parsed media range) and defaults to the IANA name, so its clients must send exactly this.
VND_MSGPACK = "application/vnd.msgpack"


@dataclass(frozen=True)
class Contender:
    """One app under test.

    Attributes:
        name: Short name used in the table and in ``--contenders``.
        build: Factory returning a fresh ASGI app serving the benchmark routes.
        msgpack_type: Media type the contender reads and writes for MessagePack, or ``None``
            when it does not speak MessagePack.
        description: One line for the report header.
        requires: ``"module:name"`` imports the contender needs. When one fails the contender is
            skipped with a note (a peer not installed, or the library while it is being written);
            any error in ``build`` itself is a failure, never a skip.
    """

    name: str
    build: Callable[[Payloads], ASGIApp]
    msgpack_type: str | None = None
    description: str = ""
    requires: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Why a required import fails, or ``None`` when everything imports."""
        for spec in self.requires:
            module_name, _, attribute = spec.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                return f"{type(exc).__name__}: {exc}"
            if attribute and not hasattr(module, attribute):
                return f"{module_name} has no {attribute!r}"
        return None


def add_routes(router: APIRouter, payloads: Payloads, **route: Any) -> None:
    """Register the benchmark routes on ``router``; return annotations are the response models.

    ``route`` goes to every route decorator (e.g. ``response_class=``).
    """

    @router.get("/users/small", **route)
    async def users_small() -> User:
        return payloads.small

    @router.get("/users/medium", **route)
    async def users_medium() -> list[User]:
        return payloads.medium

    @router.get("/users/large", **route)
    async def users_large() -> list[User]:
        return payloads.large

    @router.post("/users", status_code=201, **route)
    async def create_users(users: list[User]) -> Ack:
        return Ack(count=len(users), follower_total=sum(u.follower_count for u in users))


def _fastapi_app(payloads: Payloads, route_class: type[APIRoute] = APIRoute) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter(route_class=route_class)
    add_routes(router, payloads)
    app.include_router(router)
    return app


def build_stock(payloads: Payloads) -> ASGIApp:
    return _fastapi_app(payloads)


class OrjsonResponse(JSONResponse):
    """FastAPI's ``ORJSONResponse``, without the deprecation warning it now raises when built.

    Many apps still name it on their routes (``response_class=ORJSONResponse``): FastAPI then
    turns the return value into Python data with the response model and renders it with orjson,
    instead of pydantic's direct JSON serialisation. (As an app's ``default_response_class`` it
    no longer changes anything: FastAPI takes its pydantic path for default classes.)
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def build_orjson(payloads: Payloads) -> ASGIApp:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    router = APIRouter()
    add_routes(router, payloads, response_class=OrjsonResponse)
    app.include_router(router)
    return app


def build_msgpack_asgi(payloads: Payloads) -> ASGIApp:
    from msgpack_asgi import MessagePackMiddleware

    app = _fastapi_app(payloads)
    app.add_middleware(MessagePackMiddleware)
    return app


def build_serdes(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import SerdesMiddleware, SerdesRoute

    app = _fastapi_app(payloads, route_class=SerdesRoute)
    app.add_middleware(SerdesMiddleware)
    return app


def build_serdes_plain(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import SerdesMiddleware

    app = _fastapi_app(payloads)
    app.add_middleware(SerdesMiddleware)
    return app


def build_gzip_middleware(payloads: Payloads) -> ASGIApp:
    from starlette.middleware.gzip import GZipMiddleware

    app = _fastapi_app(payloads)
    app.add_middleware(GZipMiddleware)  # its defaults: gzip level 9 above 500 bytes
    return app


def build_starlette_compress(payloads: Payloads) -> ASGIApp:
    from starlette_compress import CompressMiddleware

    app = _fastapi_app(payloads)
    app.add_middleware(CompressMiddleware)  # its defaults: level 4 for zstd, br and gzip
    return app


def build_serdes_level4(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import Compression, SerdesMiddleware, SerdesRoute

    app = _fastapi_app(payloads, route_class=SerdesRoute)
    levels = {"zstd": 4, "br": 4, "gzip": 4}
    app.add_middleware(SerdesMiddleware, compression=Compression(levels=levels))
    return app


def build_serdes_nocompress(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import SerdesMiddleware, SerdesRoute

    app = _fastapi_app(payloads, route_class=SerdesRoute)
    app.add_middleware(SerdesMiddleware, compression=None)
    return app


def build_serdes_route(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import SerdesRoute

    return _fastapi_app(payloads, route_class=SerdesRoute)


def contenders() -> dict[str, Contender]:
    """Every known contender by name, in report order."""
    serdes = ("fastapi_serdes:SerdesMiddleware", "fastapi_serdes:SerdesRoute")
    known = [
        Contender("stock", build_stock, None, "FastAPI, response_model, default JSON"),
        Contender(
            "orjson",
            build_orjson,
            None,
            "stock routes with response_class=ORJSONResponse (its render, no warning)",
        ),
        Contender(
            "msgpack-asgi",
            build_msgpack_asgi,
            VND_MSGPACK,
            "stock app + msgpack_asgi.MessagePackMiddleware (JSON transcoded)",
            ("msgpack_asgi:MessagePackMiddleware",),
        ),
        Contender(
            "serdes",
            build_serdes,
            MSGPACK,
            "SerdesMiddleware (default compression) + SerdesRoute",
            serdes,
        ),
        Contender(
            "serdes-plain",
            build_serdes_plain,
            MSGPACK,
            "stock routes (APIRoute) behind SerdesMiddleware",
            serdes[:1],
        ),
        Contender(
            "gzip-middleware",
            build_gzip_middleware,
            None,
            "stock app + Starlette GZipMiddleware (gzip-9 above 500 B)",
        ),
        Contender(
            "starlette-compress",
            build_starlette_compress,
            None,
            "stock app + starlette_compress.CompressMiddleware (level 4)",
            ("starlette_compress:CompressMiddleware",),
        ),
        Contender(
            "serdes-level4",
            build_serdes_level4,
            MSGPACK,
            "serdes with Compression(levels=4 for zstd, br, gzip)",
            ("fastapi_serdes:Compression",),
        ),
        Contender(
            "serdes-nocompress",
            build_serdes_nocompress,
            MSGPACK,
            "serdes with compression=None",
            serdes,
        ),
        Contender(
            "serdes-route",
            build_serdes_route,
            MSGPACK,
            "SerdesRoute alone, no middleware",
            serdes[1:],
        ),
    ]
    from benchmarks.cache_workloads import CACHE_CONTENDERS

    known.extend(CACHE_CONTENDERS)
    from benchmarks.telemetry_workloads import TELEMETRY_CONTENDERS

    known.extend(TELEMETRY_CONTENDERS)
    return {c.name: c for c in known}
