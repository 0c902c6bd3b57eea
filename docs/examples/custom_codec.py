"""A third codec next to JSON and MessagePack: indented JSON under its own media type."""

import math
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json, to_jsonable_python

from fastapi_serdes import EncodeError, JSONCodec, MsgPackCodec, SerdesMiddleware, SerdesRoute

PRETTY_JSON = "application/vnd.example+json"


class PrettyJSONCodec:
    """``application/vnd.example+json``: JSON indented by two spaces, for people reading it."""

    media_types: tuple[str, ...] = (PRETTY_JSON,)

    def __init__(self) -> None:
        # Reading is plain JSON: reuse the built-in codec, its limits and its value policy.
        self._json = JSONCodec()

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        opts = options or {}
        try:
            if adapter is not None:
                data = adapter.dump_json(value, indent=2, **opts)
            else:
                data = to_json(value, indent=2, inf_nan_mode="null")
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{PRETTY_JSON}: cannot encode the value: {exc}") from exc
        # The value policy is the codec's job: pydantic writes NaN and Infinity as null, so
        # look at the data only when the bytes hold a null.
        if self.may_hide_non_finite(data):
            if adapter is not None:
                dumped = adapter.dump_python(value, **opts)
            else:
                dumped = to_jsonable_python(value)
            found = find_non_finite(dumped)
            if found is not None:
                pointer, number = found
                raise EncodeError(f"{PRETTY_JSON}: {pointer}: {number} is not a finite number")
        return data

    @staticmethod
    def may_hide_non_finite(data: bytes) -> bool:
        """Optional: whether bytes this codec wrote may stand for a NaN or an infinity."""
        return b"null" in data

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        return self._json.decode(data, adapter)


def find_non_finite(value: Any) -> tuple[str, float] | None:
    """A NaN or infinity in dumped data (dicts, lists) and its JSON Pointer, or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        pointer, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return pointer or "/", item
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list | tuple | set | frozenset):
            children = enumerate(item)
        else:
            continue
        for key, child in children:
            token = str(key).replace("~", "~0").replace("/", "~1")
            stack.append((f"{pointer}/{token}", child))
    return None


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
