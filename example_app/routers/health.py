"""Probes for orchestrators: ``/health/live`` (the process answers) and ``/health/ready``."""

import sqlite3
from contextlib import closing

from fastapi import APIRouter, Request

from example_app.database import connect
from example_app.models import Health
from fastapi_serdes import ProblemError, SerdesRoute

router = APIRouter(prefix="/health", tags=["health"], route_class=SerdesRoute)


@router.get("/live")
async def live() -> Health:
    """Always ok while the process serves requests."""
    return Health()


@router.get("/ready")
def ready(request: Request) -> Health:
    """Ok when the database answers a query; 503 problem details otherwise."""
    try:
        # Not the per-request dependency: a failure to connect must be a 503 here, not a 500.
        with closing(connect(request.app.state.db_path)) as conn:
            conn.execute("SELECT 1").fetchone()
    except sqlite3.Error:
        raise ProblemError(
            503, title="Database unavailable", detail="The database did not answer SELECT 1."
        ) from None
    return Health()
