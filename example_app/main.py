"""The application: ``uvicorn example_app.main:app``.

Two lines make this service speak JSON and MessagePack: ``SerdesMiddleware`` around the app, and
``route_class=SerdesRoute`` on each router (see ``example_app/routers/``). Everything else is a
plain FastAPI app. The middleware opts in to ``problem_details=True`` (every error is RFC 9457
``application/problem+json``), ``strict=True`` (406 / 415 for formats no codec speaks) and
``answer_head=True`` (HEAD on every GET route); without them errors keep FastAPI's
``{"detail": ...}`` shape, unknown formats fall back to JSON and HEAD gets FastAPI's 405.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from example_app import telemetry
from example_app.database import prepare_database, resolve_db_path
from example_app.routers import health, users, videos
from fastapi_serdes import SerdesMiddleware, Store


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create and seed the database on first start; later starts find it ready."""
    # Seeding blocks for a fraction of a second; keep it off the event loop anyway.
    await run_in_threadpool(prepare_database, app.state.db_path)
    yield
    app.state.observability.shutdown()  # flush the exporters


def response_store() -> Store | bool:
    """Where cached responses live: Redis when ``$REDIS_URL`` is set (every replica shares it),
    else in this process (the embedded default: nothing to install)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return True
    from fastapi_serdes.cache.redis_store import RedisStore

    return RedisStore(url)


def create_app(db_path: str | None = None) -> FastAPI:
    """Build an independent instance of the example service.

    Each call returns a new app with its own settings, so tests (or two apps in one process)
    never share a database by accident.

    Args:
        db_path: the SQLite file; defaults to ``$EXAMPLE_DB_PATH``, else a file in the system
            temp directory.

    Returns:
        The ASGI application.
    """
    observability = telemetry.setup()  # $EXAMPLE_OTEL: none, console or otlp
    app = FastAPI(
        title="fastapi-serdes example: video platform",
        version="1.0",
        lifespan=lifespan,
        telemetry=observability.fastapi,  # FastAPI's server span; the library's spans nest in it
    )
    app.state.db_path = resolve_db_path(db_path)
    app.state.observability = observability
    # The example shows every feature, so it opts in to the switches stock FastAPI lacks:
    # RFC 9457 problem+json for every error, 406 / 415 for formats no codec speaks, and HEAD
    # answered by every GET route (and from the response cache).
    app.add_middleware(
        SerdesMiddleware,
        problem_details=True,
        strict=True,
        answer_head=True,
        cache=response_store(),
        telemetry=observability.telemetry,
    )
    app.include_router(users.router)
    app.include_router(videos.router)
    app.include_router(health.router)
    app.include_router(telemetry.router)
    return app


app = create_app()
