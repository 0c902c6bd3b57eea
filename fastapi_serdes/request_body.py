"""Reading request bodies: size limits, the codec a ``Content-Type`` names, decoding.

Shared by ``SerdesRoute`` (which validates a single body straight from the bytes) and
``SerdesMiddleware`` (which hands plain routes the JSON equivalent of a MessagePack body).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined
from starlette.requests import Request

from . import young_gc
from ._types import Codec, Receive
from .cache import ValidatedBodies
from .problems import DecodeError, ProblemError, validation_problem
from .settings import SerdesSettings, header
from .spans import decode_span
from .telemetry import Recorder

#: Scope key of the body transcoder ``SerdesMiddleware`` installs for MessagePack request
#: bodies (plain routes read JSON through it; ``SerdesRoute`` reads the raw bytes).
TRANSCODER_SCOPE_KEY = "fastapi_serdes.transcoder"


def find_codec(settings: SerdesSettings, content_type: str | None) -> Codec:
    """The codec for a request ``Content-Type``, or a 415 problem listing what is supported."""
    codec = settings.codec_for(content_type) if content_type is not None else None
    if codec is None:
        detail = (
            f"Content-Type {content_type!r} is not supported"
            if content_type
            else "A request body needs a Content-Type"
        )
        raise ProblemError.of(
            "unsupported-media-type",
            f"{detail}; send one of 'supported'.",
            headers={"Accept": ", ".join(settings.offers)},
            supported=list(settings.offers),
        )
    return codec


async def read_body(receive: Receive, limit: int, content_length: str | None) -> bytes:
    """Read a whole request body, stopping with 413 as soon as it passes ``limit`` bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _too_large(limit: int) -> ProblemError:
    return ProblemError.of(
        "body-too-large", f"The request body is larger than the {limit} bytes this server reads."
    )


def decode_body(codec: Codec, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
    """Decode request bytes with ``codec`` (validating into ``adapter``'s type when given).

    Malformed input is a 400 problem, a validation failure a 422 problem located under
    ``/body``; neither echoes the input back.
    """
    paused = young_gc.pause(len(data))
    try:
        return codec.decode(data, adapter)
    except DecodeError as exc:
        raise ProblemError.of("malformed-body", str(exc)) from None
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        raise validation_problem(errors) from None
    finally:
        if paused:
            young_gc.resume()


async def read_request_body(
    request: Request,
    settings: SerdesSettings,
    adapter: TypeAdapter[Any] | None,
    recorder: Recorder | None = None,
    *,
    bodies: ValidatedBodies | None = None,
    body_name: str | None = None,
    route: str | None = None,
) -> Any:
    """A ``SerdesRoute``'s request body, decoded (and validated into ``adapter``'s type when
    given); ``PydanticUndefined`` when there is none.

    ``bodies`` is the route's cache of validated bodies, when it opted in; ``body_name`` and
    ``route`` label the decode span.
    """
    scope = request.scope
    transcoder = scope.get(TRANSCODER_SCOPE_KEY)
    if transcoder is not None:
        # The middleware rewrote the headers for plain routes; read what the client sent.
        receive, content_type = transcoder.raw_receive, transcoder.content_type
        content_length = transcoder.content_length
    else:
        receive = request.receive
        content_type = header(scope, b"content-type")
        content_length = header(scope, b"content-length")
    data = await read_body(receive, settings.max_body_size, content_length)
    if not data:
        return PydanticUndefined
    codec = find_codec(settings, content_type)
    reuse_key = ValidatedBodies.key(content_type, data) if bodies is not None else None
    if reuse_key is not None:
        assert bodies is not None
        known = bodies.get(reuse_key)
        if known is not None:
            return known
    if recorder is None:
        value = decode_body(codec, data, adapter)
    else:
        value = decode_span(
            recorder,
            lambda: decode_body(codec, data, adapter),
            content_type=content_type,
            codec=codec,
            model=body_name,
            size=len(data),
            route=route,
        )
    if reuse_key is not None:
        assert bodies is not None
        bodies.put(reuse_key, value)
    return value
