"""The slow path for plain routes behind ``SerdesMiddleware``: their MessagePack request bodies
handed over as JSON (:class:`BodyTranscoder`), their JSON responses re-encoded in the negotiated
codec (:class:`Responder`).

``SerdesRoute`` needs neither: it reads the client's bytes through the transcoder's
``raw_receive`` and encodes natively; the responder lets its responses pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from ._types import Codec, Message, Receive, Scope, Send, no_receive
from .codecs import JSON_MEDIA_TYPE, JSONCodec
from .compression.decoders import decode_whole
from .compression.request_bodies import request_coding
from .compression.settings import coding_available
from .negotiation import is_json_content_type
from .problems import DecodeError, EncodeError, ProblemError
from .request_body import body_too_large, decode_traced, off_loop, read_body
from .response_encoding import encode_failed
from .settings import Negotiated
from .state import RequestState
from .telemetry import Recorder
from .telemetry.spans import encode_span
from .vary import ACCEPT, add_vary

logger = logging.getLogger("fastapi_serdes")
_NO_BODY_STATUSES = frozenset({204, 205, 206, 304})  # 206: its Content-Range is of the bytes
_REPLACED_HEADERS = (b"content-type", b"content-length", b"content-encoding")


def _transcodes(codec: Codec | None) -> TypeGuard[Codec]:
    """Whether a plain route's JSON is transcoded from or to ``codec`` (any codec but JSON)."""
    return codec is not None and JSON_MEDIA_TYPE not in codec.media_types


@dataclass(slots=True, eq=False)
class BodyTranscoder:
    """Hands a plain route the JSON equivalent of a MessagePack request body."""

    raw_receive: Receive
    content_type: str
    content_length: str | None
    codec: Codec
    limit: int
    recorder: Recorder | None = None  # telemetry of the transcoding decode
    problem: ProblemError | None = None  # answered by the responder instead of the route
    done: bool = False

    async def receive(self) -> Message:
        if self.done:
            return await self.raw_receive()
        self.done = True
        body = b""
        try:
            data = await read_body(self.raw_receive, self.limit, self.content_length)
            transcoded = await off_loop(self._transcode, data) if data else b""
            if len(transcoded) > self.limit:
                # A small MessagePack body can stand for far more JSON (a million empty arrays:
                # 1 MiB becomes 3 MB): the route gets no more than a JSON client could send.
                raise body_too_large(self.limit, "The request body, as JSON for this route,")
            body = transcoded
        except ProblemError as exc:
            self.problem = exc
        return {"type": "http.request", "body": body, "more_body": False}

    def _transcode(self, data: bytes) -> bytes:
        value = decode_traced(self._decode, data, self.recorder, self.codec, self.content_type)
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise ProblemError.of(
                "malformed-body",
                f"The body holds a value this route cannot take as JSON ({exc}); "
                "binary values need a route that accepts MessagePack natively (SerdesRoute).",
            ) from None

    def _decode(self, data: bytes) -> Any:
        try:
            return self.codec.decode(data)
        except DecodeError as exc:
            raise ProblemError.of("malformed-body", str(exc)) from None


@dataclass(slots=True, eq=False)
class Responder:
    """Per-request state for a response that may need transcoding or replacing."""

    downstream: Send
    negotiated: Negotiated
    transcoder: BodyTranscoder | None
    json: JSONCodec
    recorder: Recorder | None  # telemetry of the transcoding encode
    start: Message | None = None  # a JSON response's start, held until its body comes
    coding: str | None = None  # the content coding of an app's encoded JSON

    async def send(self, message: Message) -> None:
        kind = message["type"]
        problem = None if self.transcoder is None else self.transcoder.problem
        if problem is not None:
            if kind == "http.response.start":
                await self._send_problem(problem)
        elif kind == "http.response.start":
            if self._wants_transcoding(message):
                self.start = message
            else:
                await self.downstream(_json_varies(message))
        elif kind == "http.response.body" and self.start is not None:
            start, self.start = self.start, None
            if message.get("more_body", False):
                # A streaming response: never buffered; from here on it passes as it is.
                await self._send_untouched(start, message.get("body", b""), more_body=True)
            else:
                await self._send_transcoded(start, message.get("body", b""))
        else:
            await self.downstream(message)

    def _wants_transcoding(self, message: Message) -> bool:
        if not _transcodes(self.negotiated.codec):
            return False
        if message.get("status", 200) in _NO_BODY_STATUSES:
            return False  # and partial content is never transformed (RFC 9110 §15.3.7)
        content_type = b""  # none: not JSON
        coding: str | None = None
        for name, value in message.get("headers", ()):
            if name == b"content-type":
                content_type = value
            elif name == b"content-range":
                return False
            elif name == b"content-encoding":
                # JSON the app compressed itself (GZipMiddleware inside): seen through when the
                # coding is one this library decodes; otherwise left alone.
                coding = request_coding(value)
                if coding not in ("gzip", "br", "zstd") or not coding_available(coding):
                    return False
        self.coding = coding
        return is_json_content_type(content_type)

    async def _send_untouched(
        self, start: Message, body: bytes, *, more_body: bool = False
    ) -> None:
        """The app's response as it was (its own headers and bytes), with ``Vary: Accept``."""
        start["headers"] = add_vary(list(start.get("headers", ())), ACCEPT)
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _send_problem(self, problem: ProblemError) -> None:
        response = problem.render(self.negotiated.settings.problem_details)
        await response({"type": "http"}, no_receive, self.downstream)

    async def _send_transcoded(self, start: Message, raw: bytes) -> None:
        try:
            # The coding is one _wants_transcoding() accepted (gzip, br or zstd), or None.
            data = raw if self.coding is None else decode_whole(self.coding, raw)
        except Exception as exc:  # the app's own bytes are not what they say: pass them
            logger.warning("fastapi-serdes: cannot decode the app's %s body: %s", self.coding, exc)
            await self._send_untouched(start, raw)
            return
        try:
            body = self._transcode(data) if data else b""
        except (DecodeError, EncodeError) as exc:
            if start["status"] >= 400:
                # An error document (FastAPI's 422 echoes the input, an integer past 64 bits
                # included) that MessagePack cannot carry: sent as the JSON it is, not a 500.
                await self._send_untouched(start, raw)
                return
            logger.error("fastapi-serdes: cannot transcode a plain route's response: %s", exc)
            await self._send_problem(encode_failed(str(exc)))
            return
        headers = [(n, v) for n, v in start.get("headers", ()) if n not in _REPLACED_HEADERS]
        headers.append((b"content-type", str(self.negotiated.media_type).encode("latin-1")))
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        start["headers"] = add_vary(headers, ACCEPT)
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})

    def _transcode(self, data: bytes) -> bytes:
        codec = self.negotiated.codec
        assert codec is not None
        # Read with the JSON codec, not orjson alone: it keeps integers past 64 bits exact
        # (then refused by MessagePack with a located message) instead of making floats.
        value = self.json.decode(data)
        if self.recorder is None:
            return codec.encode(value)
        return encode_span(
            self.recorder,
            lambda: codec.encode(value),
            media_type=self.negotiated.media_type,
            codec=codec,
            model=None,
            selection=None,
            route=None,
        )


def _json_varies(message: Message) -> Message:
    """A response start passed as it is, with ``Vary: Accept`` when its body is JSON."""
    headers = message.get("headers", ())
    for name, value in headers:  # a loop: cheaper than any() over a generator
        if name == b"content-type" and is_json_content_type(value):
            message["headers"] = add_vary(list(headers), ACCEPT)
            break
    return message


def transcoding(
    scope: Scope,
    receive: Receive,
    send: Send,
    content_type: bytes | None,
    state: RequestState,
    json: JSONCodec,
) -> tuple[Receive, Send]:
    """For plain routes: a MessagePack body handed over as JSON, a JSON answer transcoded
    to the negotiated codec (not for HEAD: no body, and GET's JSON headers)."""
    transcoder = None
    # Only a non-JSON body can need transcoding; the prefix test is a fast path, the
    # decision is the settings' codec_for().
    if content_type is not None and not content_type.startswith(b"application/json"):
        transcoder = _install_transcoder(scope, state, receive, content_type.decode("latin-1"))
        if transcoder is not None:
            receive = transcoder.receive
    negotiated = state.negotiated
    if scope["method"] == "HEAD":
        negotiated = Negotiated(None, None, negotiated.settings)
    if transcoder is None and not _transcodes(negotiated.codec):
        return receive, send
    return receive, Responder(send, negotiated, transcoder, json, state.recorder).send


def _install_transcoder(
    scope: Scope, state: RequestState, receive: Receive, content_type: str
) -> BodyTranscoder | None:
    """For a body in a codec other than JSON, the transcoder that hands it over as JSON
    (``Content-Type`` and ``Content-Length`` rewritten in the scope); None for others."""
    settings = state.negotiated.settings
    codec = settings.codec_for(content_type)
    if not _transcodes(codec):
        return None
    content_length = None
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if name == b"content-length":
            content_length = value.decode("latin-1")
        elif name != b"content-type":
            headers.append((name, value))
    headers.append((b"content-type", b"application/json"))
    scope["headers"] = headers
    transcoder = BodyTranscoder(
        receive, content_type, content_length, codec, settings.max_body_size, state.recorder
    )
    state.transcoder = transcoder
    return transcoder
