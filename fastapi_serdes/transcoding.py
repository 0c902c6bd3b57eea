"""The slow path for plain routes behind ``SerdesMiddleware``: their MessagePack request bodies
handed over as JSON (:class:`BodyTranscoder`), their JSON responses re-encoded in the negotiated
codec (:class:`Responder`).

``SerdesRoute`` needs neither: it reads the client's bytes through the transcoder's
``raw_receive`` and encodes natively; the responder lets its responses pass.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ._types import Codec, Message, Receive, Scope, Send, no_receive
from .codecs import JSON_MEDIA_TYPE, JSONCodec
from .compression.request_bodies import coding_available, decode_whole, request_coding
from .negotiation import is_json_content_type
from .problems import DecodeError, EncodeError, ProblemError
from .request_body import decode_body, off_loop, read_body
from .response_encoding import encode_failed
from .settings import Negotiated, SerdesSettings
from .state import RequestState
from .telemetry import Recorder
from .telemetry.spans import decode_span, encode_span
from .vary import ACCEPT, add_vary

logger = logging.getLogger("fastapi_serdes")
_NO_BODY_STATUSES = frozenset({204, 205, 206, 304})  # 206: its Content-Range is of the bytes


class BodyTranscoder:
    """Hands a plain route the JSON equivalent of a MessagePack request body."""

    __slots__ = (
        "_done",
        "_limit",
        "codec",
        "content_length",
        "content_type",
        "problem",
        "raw_receive",
        "recorder",
    )

    def __init__(
        self,
        raw_receive: Receive,
        content_type: str,
        content_length: str | None,
        codec: Codec,
        settings: SerdesSettings,
    ) -> None:
        self.raw_receive = raw_receive
        self.content_type = content_type
        self.content_length = content_length
        self.codec = codec
        self.problem: ProblemError | None = None
        self.recorder: Recorder | None = None  # telemetry of the transcoding decode
        self._done = False
        self._limit = settings.max_body_size

    async def receive(self) -> Message:
        if self._done:
            return await self.raw_receive()
        self._done = True
        body = b""
        try:
            data = await read_body(self.raw_receive, self._limit, self.content_length)
            if data:
                body = await off_loop(self._transcode, data)
                if len(body) > self._limit:
                    # A small MessagePack body can stand for far more JSON (a million empty
                    # arrays: 1 MiB becomes 3 MB): the route gets no more than a JSON client
                    # could send.
                    raise _too_large_as_json(self._limit)
        except ProblemError as exc:
            # The route sees an empty body; the responder answers with this problem instead.
            self.problem = exc
        return {"type": "http.request", "body": body, "more_body": False}

    def _transcode(self, data: bytes) -> bytes:
        recorder = self.recorder
        if recorder is None:
            return _to_json(decode_body(self.codec, data))
        decoded = decode_span(
            recorder,
            lambda: decode_body(self.codec, data),
            content_type=self.content_type,
            codec=self.codec,
            model=None,
            size=len(data),
            route=None,
        )
        return _to_json(decoded)


def _too_large_as_json(limit: int) -> ProblemError:
    return ProblemError.of(
        "body-too-large",
        f"The request body, as JSON for this route, is larger than the {limit} bytes this "
        "server reads.",
    )


def _to_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise ProblemError.of(
            "malformed-body",
            f"The body holds a value this route cannot take as JSON ({exc}); "
            "binary values need a route that accepts MessagePack natively (SerdesRoute).",
        ) from None


class Responder:
    """Per-request state for a response that may need transcoding or replacing."""

    __slots__ = (
        "_downstream",
        "_json",
        "buffered",
        "coding",
        "negotiated",
        "recorder",
        "start",
        "transcoder",
        "transcoding",
    )

    def __init__(
        self,
        send: Send,
        negotiated: Negotiated,
        transcoder: BodyTranscoder | None,
        json_codec: JSONCodec,
    ) -> None:
        self._json = json_codec
        self._downstream = send
        self.negotiated = negotiated
        self.transcoder = transcoder
        self.start: Message | None = None
        self.transcoding = False
        self.coding: str | None = None  # the content coding of an app's encoded JSON
        self.buffered: list[bytes] = []
        self.recorder: Recorder | None = None  # telemetry of the transcoding encode

    async def send(self, message: Message) -> None:
        kind = message["type"]
        transcoder = self.transcoder
        if transcoder is not None and transcoder.problem is not None:
            if kind == "http.response.start":
                await self._send_problem(transcoder.problem)
            return
        if kind == "http.response.start":
            if self._wants_transcoding(message):
                self.start = message
                self.transcoding = True
                return
            await self._downstream(_json_varies(message))
            return
        if kind == "http.response.body" and self.transcoding:
            self.buffered.append(message.get("body", b""))
            if message.get("more_body", False):
                # A streaming response: never buffer it; from here on it passes as it is.
                await self._flush_untouched()
                return
            await self._flush_transcoded()
            return
        await self._downstream(message)

    def _wants_transcoding(self, message: Message) -> bool:
        codec = self.negotiated.codec
        if codec is None or JSON_MEDIA_TYPE in codec.media_types:
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

    async def _flush_untouched(self) -> None:
        start, self.start = self.start, None
        self.transcoding = False
        assert start is not None
        body, self.buffered = b"".join(self.buffered), []
        await self._send_untouched(start, body, more_body=True)

    async def _send_untouched(
        self, start: Message, body: bytes, *, more_body: bool = False
    ) -> None:
        """The app's response as it was (its own headers and bytes), with ``Vary: Accept``."""
        start["headers"] = add_vary(list(start.get("headers", ())), ACCEPT)
        await self._downstream(start)
        await self._downstream({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _send_problem(self, problem: ProblemError) -> None:
        response = problem.render(self.negotiated.settings.problem_details)
        await response({"type": "http"}, no_receive, self._downstream)

    async def _flush_transcoded(self) -> None:
        start, self.start = self.start, None
        assert start is not None
        raw, self.buffered = b"".join(self.buffered), []
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
        headers = [
            (n, v)
            for n, v in start.get("headers", ())
            if n not in (b"content-type", b"content-length", b"content-encoding")
        ]
        headers.append((b"content-type", str(self.negotiated.media_type).encode("latin-1")))
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        start["headers"] = add_vary(headers, ACCEPT)
        await self._downstream(start)
        await self._downstream({"type": "http.response.body", "body": body, "more_body": False})

    def _transcode(self, data: bytes) -> bytes:
        codec = self.negotiated.codec
        assert codec is not None
        # Read with the JSON codec, not orjson alone: it keeps integers past 64 bits exact
        # (then refused by MessagePack with a located message) instead of making floats.
        value = self._json.decode(data)
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


def install_transcoder(
    scope: Scope, state: RequestState, receive: Receive, content_type: bytes
) -> BodyTranscoder | None:
    """For a plain route, a body in a codec other than JSON: the transcoder that hands it over
    as JSON (``Content-Type`` and ``Content-Length`` rewritten in the scope), or None."""
    settings = state.negotiated.settings
    codec = settings.codec_for(content_type.decode("latin-1"))
    if codec is None or JSON_MEDIA_TYPE in codec.media_types:
        return None
    content_length = None
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if name == b"content-length":
            content_length = value.decode("latin-1")
        elif name != b"content-type":
            headers.append((name, value))
    headers.append((b"content-type", b"application/json"))
    transcoder = BodyTranscoder(
        receive, content_type.decode("latin-1"), content_length, codec, settings
    )
    scope["headers"] = headers
    state.transcoder = transcoder
    return transcoder


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
    transcoder: BodyTranscoder | None = None
    # Only a non-JSON body can need transcoding; the prefix test is a fast path, the
    # decision is the settings' codec_for().
    if content_type is not None and not content_type.startswith(b"application/json"):
        transcoder = install_transcoder(scope, state, receive, content_type)
        if transcoder is not None:
            transcoder.recorder = state.recorder
            receive = transcoder.receive
    negotiated = state.negotiated
    codec = negotiated.codec
    head = scope["method"] == "HEAD"
    if transcoder is None and (codec is None or JSON_MEDIA_TYPE in codec.media_types or head):
        return receive, send
    if head:
        negotiated = Negotiated(None, None, negotiated.settings)
    responder = Responder(send, negotiated, transcoder, json)
    responder.recorder = state.recorder
    return receive, responder.send
