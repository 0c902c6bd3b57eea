"""A third codec next to JSON and MessagePack: indented JSON under its own media type."""

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from fastapi_serdes import EncodeError, JSONCodec, MsgPackCodec, SerdesMiddleware, SerdesRoute

PRETTY_JSON = "application/vnd.example+json"


class PrettyJSONCodec:
    """``application/vnd.example+json``: JSON indented by two spaces, for people reading it."""

    media_types: tuple[str, ...] = (PRETTY_JSON,)
    name = "pretty-json"  # optional: names the codec in encode-failed problems

    def __init__(self) -> None:
        # Reading is plain JSON: reuse the built-in codec and its limits.
        self._json = JSONCodec()

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            if adapter is not None:
                return adapter.dump_json(value, indent=2, **(options or {}))
            return to_json(value, indent=2)
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{self.name}: cannot encode the value: {exc}") from exc

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        return self._json.decode(data, adapter)


class Note(BaseModel):
    id: int
    text: str


def create_app() -> FastAPI:
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/notes/{note_id}")
    async def get_note(note_id: int) -> Note:
        return Note(id=note_id, text="Buy milk")

    @router.post("/notes", status_code=201)
    async def create_note(note: Note) -> Note:
        return note

    app = FastAPI()
    # Server order: JSON stays the default; the new codec is chosen only when asked for.
    app.add_middleware(SerdesMiddleware, codecs=[JSONCodec(), MsgPackCodec(), PrettyJSONCodec()])
    app.include_router(router)
    return app


app = create_app()
