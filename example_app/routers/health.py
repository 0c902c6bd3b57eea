"""Probes for orchestrators: ``/health/live`` (the process answers) and ``/health/ready``."""

import sqlite3
from contextlib import closing

from fastapi import APIRouter, Request

from example_app.database import connect
from example_app.models import Health
from example_app.responses import NOT_MODIFIED
from fastapi_serdes import ProblemError, SerdesRoute
from fastapi_serdes.openapi import problem_response

router = APIRouter(prefix="/health", tags=["health"], route_class=SerdesRoute)


@router.get("/live", responses=NOT_MODIFIED)
async def live() -> Health:
    """Always ok while the process serves requests."""
    return Health()


def database_unavailable() -> ProblemError:
    """The 503 of a readiness probe whose database does not answer."""
    return ProblemError(
        503, title="Database unavailable", detail="The database did not answer SELECT 1."
    )


@router.get("/ready", responses={**NOT_MODIFIED, 503: problem_response(database_unavailable())})
def ready(request: Request) -> Health:
    """Ok when the database answers a query; 503 problem details otherwise."""
    try:
        # Not the per-request dependency: a failure to connect must be a 503 here, not a 500.
        with closing(connect(request.app.state.db_path)) as conn:
            conn.execute("SELECT 1").fetchone()
    except sqlite3.Error:
        raise database_unavailable() from None
    return Health()
