"""Reading request bodies: size limits, the codec a ``Content-Type`` names, decoding.

Shared by ``SerdesRoute`` (which hands FastAPI the decoded value of a MessagePack body) and
``SerdesMiddleware`` (which hands plain routes the JSON equivalent of a MessagePack body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import anyio.to_thread
import orjson
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from . import _compat
from ._types import Codec, Receive
from .codecs import JSON_MEDIA_TYPE
from .negotiation import is_json_family
from .problems import DecodeError, ProblemError
from .settings import SerdesSettings
from .state import state_of
from .telemetry import Recorder
from .telemetry.spans import decode_span

_T = TypeVar("_T")

#: Bodies at least this large are decoded on a worker thread, not on the event loop: a large
#: MessagePack body can take long enough to delay every other request of the process.
OFF_LOOP_BYTES: Final = 64 * 1024
#: What :func:`parse_json_as_stdlib` returns for bytes it leaves to ``json.loads``.
NOT_PARSED: Final = object()
# orjson reads an integer literal past 64 bits as a float where json.loads keeps it exact: any
# run of 19 digits (in a number or a string alike) sends the body to json.loads. Found by
# mapping digits to "0" and the rest to " " (bytes.translate, ~14x faster than a regex here).
_DIGITS_AS_ZERO: Final = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_DIGITS: Final = b"0" * 19


async def off_loop(work: Callable[[bytes], _T], data: bytes) -> _T:
    """``work(data)``, on a worker thread when ``data`` holds at least :data:`OFF_LOOP_BYTES`."""
    if len(data) < OFF_LOOP_BYTES:
        return work(data)
    return await anyio.to_thread.run_sync(work, data)


def decode_traced(
    decode: Callable[[bytes], _T],
    data: bytes,
    recorder: Recorder | None,
    codec: Codec,
    content_type: str | None,
    route: str | None = None,
    model: str | None = None,
) -> _T:
    """``decode(data)``, in a decode span labelled with the rest when ``recorder`` listens."""
    if recorder is None:
        return decode(data)
    return decode_span(
        recorder,
        lambda: decode(data),
        content_type=content_type,
        codec=codec,
        model=model,
        size=len(data),
        route=route,
    )


async def read_body(receive: Receive, limit: int, content_length: str | None) -> bytes:
    """Read a whole request body, stopping with 413 as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def body_too_large(limit: int, what: str = "The request body") -> ProblemError:
    """The 413 for a body over ``limit`` bytes."""
    return ProblemError.of(
        "body-too-large", f"{what} is larger than the {limit} bytes this server reads."
    )


def parse_json_as_stdlib(body: bytes) -> Any:
    """``json.loads(body)``'s value, computed by orjson, or :data:`NOT_PARSED` when orjson
    would not give exactly that value (it refuses the body, or it may hold a long integer)."""
    if _LONG_DIGITS in body.translate(_DIGITS_AS_ZERO):
        return NOT_PARSED
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return NOT_PARSED


async def decode_request_body(
    request: Request,
    settings: SerdesSettings,
    recorder: Recorder | None,
    route: str | None,
    body_name: str | None,
) -> None:
    """A ``SerdesRoute``'s body that FastAPI would not read (MessagePack), decoded and handed to
    FastAPI as the parsed value of a JSON body.

    JSON bodies, bodies without ``Content-Type`` and those of a type no codec reads are
    FastAPI's (strict settings answer 415 for the last). A malformed body is FastAPI's 422,
    located at the body; ``route`` and ``body_name`` (the body's type) label the decode span.
    """
    state = state_of(request.scope)
    transcoder = state.transcoder if state is not None else None
    content_type: str | None
    if transcoder is not None:
        # The middleware hands plain routes JSON; this route reads what the client sent.
        receive, content_type = transcoder.raw_receive, transcoder.content_type
        content_length = transcoder.content_length
    else:
        # Not list headers: the first line, as FastAPI reads them (request.headers.get).
        content_type = request.headers.get("content-type")
        if content_type is None:
            return
        receive, content_length = request.receive, request.headers.get("content-length")
    codec = settings.codec_for(content_type)
    if codec is None:
        if settings.strict and not is_json_family(content_type.encode("latin-1")):
            offers = ", ".join(settings.offers)
            raise ProblemError.of(
                "unsupported-media-type",
                f"Content-Type {content_type!r} is not supported; send one of {offers}.",
                headers={"Accept": offers},
                supported=list(settings.offers),
            )
        return
    if JSON_MEDIA_TYPE in codec.media_types:
        await _parse_json_first(request)
        return
    data = await read_body(receive, settings.max_body_size, content_length)
    value = None
    if data:

        def decode(raw: bytes) -> Any:
            return decode_traced(codec.decode, raw, recorder, codec, content_type, route, body_name)

        try:
            value = await off_loop(decode, data)
        except DecodeError as exc:
            error = {"type": "value_error", "loc": ("body",), "msg": f"Body decode error: {exc}"}
            raise RequestValidationError([{**error, "input": {}}]) from None
    _compat.preset_body(request, data, value)


async def _parse_json_first(request: Request) -> None:
    """FastAPI's parse of a JSON body (the standard library's ``json.loads``), done by orjson
    when it gives the same value (about 2.5x faster on a 27 KB body); anything else is left to
    FastAPI's own parse, so its result and its errors are FastAPI's."""
    if _compat.body_limited(request.scope):
        return  # the limit's errors are FastAPI's to raise, from its own read
    body = await request.body()
    value = parse_json_as_stdlib(body) if body else NOT_PARSED
    if value is not NOT_PARSED:
        _compat.preset_json(request, value)
