"""``SerdesRoute`` on its own: a router with its own settings and no middleware."""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from fastapi_serdes import SerdesRoute


class Reading(BaseModel):
    sensor: str
    value: float


# Answer JSON (the default format) when nothing in Accept is on offer (strict=False, the
# default, spelled out), and decode at most 64 KiB of a MessagePack body.
IngestRoute = SerdesRoute.with_settings(strict=False, max_body_size=64 * 1024)


def create_app() -> FastAPI:
    router = APIRouter(route_class=IngestRoute)

    @router.post("/readings", status_code=202)
    async def ingest(readings: list[Reading]) -> dict[str, int]:
        return {"accepted": len(readings)}

    app = FastAPI()
    app.include_router(router)
    return app


app = create_app()
