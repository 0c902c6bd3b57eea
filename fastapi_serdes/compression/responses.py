"""The per-request side of response compression: choose a coding, wrap ``send``.

:class:`CompressionLayer` is built once per middleware from a
:class:`~fastapi_serdes.compression.Compression`; per request it picks a content coding from
``Accept-Encoding`` (memoised per header value) and, per response, either passes the messages
through or compresses them. The response start is held back only until the first body message:
a single body is compressed whole (``Content-Length`` set to the bytes sent), a streaming one is
compressed chunk by chunk with a flush after each, so a client can decode every chunk as it
arrives and memory stays per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
from starlette.requests import Request

from .._types import Message, Scope, Send
from ..negotiation import choose_encoding, is_json_content_type, parse_accept_encoding
from ..problems import ProblemError
from ..state import state_of
from ..telemetry import Recorder
from ..telemetry.spans import CompressTrace, route_of
from ..vary import VaryJoiner
from . import Compression, has_no_transform, is_compressible, variant_etag
from .encoders import Encoder, StreamEncoder, build_encoders

_MEMO_SIZE: Final = 256
_NO_BODY_STATUSES: Final = frozenset({204, 205, 304})
_Compress = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Choice:
    """What one ``Accept-Encoding`` value allows.

    Attributes:
        encoder: the encoder to use, or None to answer with identity.
        identity_ok: whether identity is acceptable (if not, small bodies are compressed too).
        codings: the codings a response may carry, preferred first (for the response cache).
    """

    encoder: Encoder | None
    identity_ok: bool
    codings: tuple[str, ...]

    @classmethod
    def of(cls, encoder: Encoder | None, identity_ok: bool) -> Choice:
        if encoder is None:
            codings: tuple[str, ...] = ("identity",)
        elif identity_ok:
            codings = (encoder.coding, "identity")
        else:
            codings = (encoder.coding,)
        return cls(encoder, identity_ok, codings)


def no_compression(request: Request) -> None:
    """FastAPI dependency that keeps a route's responses uncompressed.

    Use it per route (``dependencies=[Depends(no_compression)]``) or per router, for responses
    that mix secrets with attacker-controlled input (BREACH, RFC 9110 §17.6). Request bodies are
    still decompressed.
    """
    state = state_of(request.scope)
    if state is not None:  # no middleware: nothing compresses
        state.no_compression = True


def not_acceptable_encoding(offers: str) -> ProblemError:
    """406 for an ``Accept-Encoding`` that refuses identity and every coding on offer."""
    return ProblemError.of(
        "not-acceptable-encoding",
        "Accept-Encoding refuses identity and every coding on offer; accept one of "
        f"{offers} or identity.",
        available=[c.strip() for c in offers.split(",") if c.strip()],
    )


class CompressionLayer:
    """Response compression for one middleware: settings, encoders and memo tables."""

    __slots__ = (
        "_kinds",
        "_shapes",
        "_vary",
        "choices",
        "encoders",
        "minimum_size",
        "settings",
    )

    def __init__(self, settings: Compression) -> None:
        self.settings = settings
        self.minimum_size = settings.minimum_size
        self.encoders = build_encoders(settings)
        self.choices: dict[bytes | None, Choice | None] = {}
        self._vary = VaryJoiner()
        self._kinds: dict[bytes, tuple[bool, bool]] = {}
        self._shapes: dict[tuple[int, bytes], tuple[bool, tuple[bytes, bytes] | None]] = {}

    @property
    def offers(self) -> str:
        """The offered codings, for ``Accept-Encoding`` response headers."""
        return ", ".join(self.encoders)

    def choose(self, accept_encoding: bytes | None) -> Choice | None:
        """The coding for an ``Accept-Encoding`` value; None when nothing is acceptable (406)."""
        choices = self.choices
        if accept_encoding in choices:
            return choices[accept_encoding]
        text = accept_encoding.decode("latin-1") if accept_encoding is not None else None
        coding = choose_encoding(text, self.encoders)
        if coding is None:
            choice = None
        else:
            identity_ok = True
            if text is not None:
                weights = parse_accept_encoding(text)
                identity_q = weights.get("identity", weights.get("*", 1.0))
                identity_ok = identity_q > 0
            choice = Choice.of(self.encoders.get(coding), identity_ok)
        if len(choices) >= _MEMO_SIZE:
            choices.clear()
        choices[accept_encoding] = choice
        return choice

    def _shape(self, key: tuple[int, bytes]) -> tuple[bool, tuple[bytes, bytes] | None]:
        """mark_vary's answer for a response of this status and Content-Type alone."""
        start: Message = {"status": key[0], "headers": [(b"content-type", key[1])]}
        could, _ = self.mark_vary(start, {})
        added = start["headers"][1] if len(start["headers"]) > 1 else None
        known = (could, added)
        if len(self._shapes) >= _MEMO_SIZE:
            self._shapes.clear()
        self._shapes[key] = known
        return known

    def _kind(self, content_type: bytes) -> tuple[bool, bool]:
        """(compressible, JSON) for a Content-Type value, memoised per header value."""
        known = self._kinds.get(content_type)
        if known is None:
            text = content_type.decode("latin-1")
            known = (
                is_compressible(text, self.settings.media_types),
                is_json_content_type(content_type),
            )
            if len(self._kinds) >= _MEMO_SIZE:
                self._kinds.clear()
            self._kinds[content_type] = known
        return known

    def compressible(self, content_type: bytes) -> bool:
        """The content-type policy, memoised per header value."""
        return self._kind(content_type)[0]

    def mark_vary(self, start: Message, scope: Scope) -> tuple[bool, bytes | None]:
        """Add ``Vary: Accept-Encoding`` to a response that could be compressed and ``Vary:
        Accept`` to JSON; return whether it could be compressed, and its Content-Length."""
        headers = start.get("headers", ())
        if len(headers) == 2 and type(headers) is list and not _uncompressed(scope):
            # Starlette's usual shape, Content-Length then Content-Type and nothing else: the
            # answer depends on the status and the type only, and is memoised for them.
            (name, content_length), (second, content_type) = headers
            if name == b"content-length" and second == b"content-type":
                key = (start["status"], content_type)
                known = self._shapes.get(key) or self._shape(key)
                if known[1] is not None:
                    headers.append(known[1])
                return known[0], content_length
        status = start["status"]
        content_type = content_length = cache_control = vary = None
        untouchable = status == 206
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
            elif name == b"vary":
                vary = value
            elif name == b"cache-control":
                cache_control = value
            elif name in (b"content-encoding", b"content-range"):
                untouchable = True
        compressible = accept = False
        if content_type is not None:
            compressible, accept = self._kinds.get(content_type) or self._kind(content_type)
        # Whether this response could have been compressed: then Vary: Accept-Encoding on it,
        # the 304 included (its 200 had it), compressed or not.
        could = not (
            untouchable
            or _uncompressed(scope)
            or (cache_control is not None and has_no_transform(cache_control.decode("latin-1")))
        ) and (
            compressible
            if status not in _NO_BODY_STATUSES
            else status == 304 and (content_type is None or compressible)
        )
        # JSON's format was negotiated (a plain route's JSON too): Vary: Accept.
        if could or accept:
            self._vary.mark(start, vary, accept, could)
        return could, content_length


def _uncompressed(scope: Scope) -> bool:
    """Whether the route asked that its answer stay uncompressed."""
    state = state_of(scope)
    return state is not None and state.no_compression


def vary_only(send: Send, scope: Scope, layer: CompressionLayer) -> Send:
    """The ``send`` for a request only identity can answer (no ``Accept-Encoding``, or only
    ``identity``): nothing to compress, the ``Vary`` headers to add all the same."""

    def send_vary(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            layer.mark_vary(message, scope)
        return send(message)

    return send_vary


class CompressingSend:
    """Per-request ``send`` wrapper that compresses the response when the rules allow."""

    __slots__ = (
        "_choice",
        "_downstream",
        "_head",
        "_layer",
        "_passing",
        "_recorder",
        "_scope",
        "_start",
        "_stream",
        "_trace",
    )

    def __init__(
        self,
        send: Send,
        scope: Scope,
        choice: Choice,
        layer: CompressionLayer,
        recorder: Recorder | None = None,
    ) -> None:
        self._downstream = send
        self._recorder = recorder
        self._trace: CompressTrace | None = None
        self._scope = scope
        # Read now: SerdesRoute answers HEAD as GET (it sets the method while it runs).
        self._head = scope["method"] == "HEAD"
        self._choice = choice
        self._layer = layer
        self._passing = False
        self._start: Message | None = None
        self._stream: StreamEncoder | None = None

    # A plain function returning an awaitable: what passes through costs no coroutine of its own.
    def send(self, message: Message) -> Awaitable[None]:
        if self._passing:
            return self._downstream(message)
        kind = message["type"]
        if kind == "http.response.start":
            if self._hold(message):
                # Whether and how to compress depends on the first body message.
                self._start = message
                return _DONE
            self._passing = True
            return self._downstream(message)
        if kind == "http.response.body":
            if self._stream is not None:
                return self._on_stream_body(message)
            return self._on_first_body(message)
        # pathsend, zerocopysend (the server sends a file itself) or anything else: never
        # compressed; release the held start untouched and step aside.
        return self._release_then(message)

    async def _release_then(self, message: Message) -> None:
        await self._release()
        await self._downstream(message)

    async def _release(self) -> None:
        self._passing = True
        start, self._start = self._start, None
        if start is not None:
            await self._downstream(start)

    def _hold(self, message: Message) -> bool:
        """Adjust the start's headers; True to hold it back until the first body message."""
        layer = self._layer
        could, content_length = layer.mark_vary(message, self._scope)
        if not could:
            return False
        status = message["status"]
        choice = self._choice
        encoder = choice.encoder
        if (
            encoder is None
            or status == 304
            or (
                content_length is not None
                and choice.identity_ok
                and content_length.isdigit()
                and int(content_length) < layer.minimum_size
            )
        ):
            return False
        if self._head:
            # No body to compress: send the headers GET would get. Its compressed length is not
            # known without compressing, and HEAD may leave Content-Length out (RFC 9110 §9.3.2).
            message["headers"] = _encoded_headers(message["headers"], encoder.coding, None)
            return False
        return True

    async def _on_first_body(self, message: Message) -> None:
        start = self._start
        if start is None:  # a body without a start: not ours to fix
            await self._release()
            await self._downstream(message)
            return
        body: bytes = message.get("body", b"")
        more_body = message.get("more_body", False)
        encoder = self._choice.encoder
        assert encoder is not None  # a start is held only with an encoder
        layer = self._layer
        if not more_body:
            identity_ok = self._choice.identity_ok
            if identity_ok and len(body) < layer.minimum_size:
                await self._release()
                await self._downstream(message)
                return
            self._begin_trace(encoder, start, streaming=False)
            compressed = await self._run(encoder.compress, body)
            self._end_trace()
            if identity_ok and len(compressed) >= len(body):
                await self._release()  # incompressible: the identity bytes are smaller
                await self._downstream(message)
                return
            start["headers"] = _encoded_headers(start["headers"], encoder.coding, len(compressed))
            await self._release()
            await self._downstream({"type": "http.response.body", "body": compressed})
            return
        self._stream = stream = encoder.stream()
        self._begin_trace(encoder, start, streaming=True)
        start["headers"] = _encoded_headers(start["headers"], encoder.coding, None)
        self._start = None
        await self._downstream(start)
        await self._downstream(
            {
                "type": "http.response.body",
                "body": await self._run(stream.chunk, body),
                "more_body": True,
            }
        )

    async def _on_stream_body(self, message: Message) -> None:
        stream = self._stream
        assert stream is not None
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            out = await self._run(stream.chunk, body)
            await self._downstream({"type": "http.response.body", "body": out, "more_body": True})
        else:
            out = await self._run(stream.finish, body)
            self._end_trace()
            self._passing = True  # trailers, if any, follow untouched
            await self._downstream({"type": "http.response.body", "body": out})

    async def _run(self, compress: _Compress, data: bytes) -> bytes:
        trace = self._trace
        if trace is None:
            return await self._compress(compress, data)
        started = time.perf_counter()
        try:
            out = await self._compress(compress, data)
        except BaseException as exc:
            self._trace = None
            trace.fail(exc)
            raise
        trace.add(time.perf_counter() - started, len(data), len(out))
        return out

    async def _compress(self, compress: _Compress, data: bytes) -> bytes:
        if len(data) >= self._layer.settings.thread_minimum_size:
            # Compressing half a megabyte with brotli takes milliseconds: do it off the event
            # loop so concurrent requests are not held up (the codecs release the GIL).
            return await anyio.to_thread.run_sync(compress, data)
        return compress(data)

    def _begin_trace(self, encoder: Encoder, start: Message, *, streaming: bool) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        content_type = next((v for n, v in start["headers"] if n == b"content-type"), None)
        self._trace = CompressTrace(
            recorder,
            coding=encoder.coding,
            level=getattr(encoder, "level", None),
            content_type=content_type,
            route=route_of(self._scope),
            streaming=streaming,
        )

    def _end_trace(self) -> None:
        trace, self._trace = self._trace, None
        if trace is not None:
            trace.finish()

    def close(self, exc: BaseException | None = None) -> None:
        """End a compression span the response left open: the app raised, or was cancelled (a
        client that went away), or returned before a streaming body's last chunk."""
        trace, self._trace = self._trace, None
        if trace is not None:
            trace.fail(exc if exc is not None else ResponseAbortedError())


class ResponseAbortedError(Exception):
    """The app ended before the last chunk of a compressed streaming response."""

    def __init__(self) -> None:
        super().__init__("the response ended before its last chunk")


class _Done:
    """An awaitable that is already complete (a held message sends nothing yet)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield from ()


_DONE: Final = _Done()


def _encoded_headers(
    headers: list[tuple[bytes, bytes]], coding: str, length: int | None
) -> list[tuple[bytes, bytes]]:
    """Headers of the ``coding`` variant: Content-Encoding, a distinct ETag, the new length."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name == b"content-length":
            continue
        if name == b"etag":
            value = variant_etag(value, coding)
        out.append((name, value))
    out.append((b"content-encoding", coding.encode("ascii")))
    if length is not None:
        out.append((b"content-length", str(length).encode("ascii")))
    return out
