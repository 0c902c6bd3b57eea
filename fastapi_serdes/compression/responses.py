"""The per-request side of response compression: :class:`CompressingSend` wraps ``send``.

It either passes the messages through or compresses them in the coding the
:class:`~fastapi_serdes.compression.layer.CompressionLayer` chose. The response start is held
back only until the first body message: a single body is compressed whole (``Content-Length``
set to the bytes sent), a streaming one chunk by chunk with a flush after each, so a client can
decode every chunk as it arrives and memory stays per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final

import anyio.to_thread

from .._types import Message, Scope, Send
from ..telemetry import Recorder
from ..telemetry.spans import CompressTrace, route_of
from . import encoded_headers
from .encoders import Encoder, StreamEncoder
from .layer import Choice, CompressionLayer


class CompressingSend:
    """Per-request ``send`` wrapper that compresses the response when the rules allow."""

    __slots__ = (
        "_downstream",
        "_encoder",
        "_head",
        "_identity_ok",
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
        self._encoder = choice.encoder
        self._identity_ok = choice.identity_ok
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
                return _NOTHING
            self._passing = True
            return self._downstream(message)
        if kind != "http.response.body" or (self._start is None and self._stream is None):
            # pathsend, zerocopysend (the server sends a file itself), a body without a start:
            # never compressed; release the held start untouched and step aside.
            return self._pass_from(message)
        if self._stream is not None:
            return self._stream_body(message)
        if message.get("more_body", False):
            return self._start_stream(message)
        return self._send_whole(message)

    def _hold(self, message: Message) -> bool:
        """Adjust the start's headers; True to hold it back until the first body message."""
        could, length = self._layer.mark_vary(message, self._scope)
        encoder = self._encoder
        if not could or encoder is None or message["status"] == 304:
            return False
        if self._identity_ok and length is not None and length.isdigit():  # noqa: SIM102
            if int(length) < self._layer.settings.minimum_size:
                return False
        if self._head:
            # No body to compress: send the headers GET would get. Its compressed length is not
            # known without compressing, and HEAD may leave Content-Length out (RFC 9110 §9.3.2).
            message["headers"] = encoded_headers(message["headers"], encoder.coding, None)
            return False
        return True

    async def _pass_from(self, message: Message) -> None:
        """Send the held start as it is, then ``message`` and everything after it."""
        self._passing = True
        start, self._start = self._start, None
        if start is not None:
            await self._downstream(start)
        await self._downstream(message)

    async def _send_whole(self, message: Message) -> None:
        body: bytes = message.get("body", b"")
        encoder, start = self._encoder, self._start
        assert encoder is not None  # a start is held only with an encoder
        assert start is not None
        if not self._identity_ok or len(body) >= self._layer.settings.minimum_size:
            self._begin_trace(encoder, start, streaming=False)
            compressed = await self._run(encoder.compress, body)
            self._end_trace()
            # Incompressible (the identity bytes are smaller): sent as it is.
            if not self._identity_ok or len(compressed) < len(body):
                length = len(compressed)
                start["headers"] = encoded_headers(start["headers"], encoder.coding, length)
                message = {"type": "http.response.body", "body": compressed}
        self._passing, self._start = True, None
        await self._downstream(start)
        await self._downstream(message)

    async def _start_stream(self, message: Message) -> None:
        encoder = self._encoder
        start, self._start = self._start, None
        assert encoder is not None
        assert start is not None
        self._stream = encoder.stream()
        self._begin_trace(encoder, start, streaming=True)
        start["headers"] = encoded_headers(start["headers"], encoder.coding, None)
        await self._downstream(start)
        await self._stream_body(message)

    async def _stream_body(self, message: Message) -> None:
        stream = self._stream
        assert stream is not None
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            out = await self._run(stream.chunk, body)
            await self._downstream({"type": "http.response.body", "body": out, "more_body": True})
            return
        out = await self._run(stream.finish, body)
        self._end_trace()
        self._passing = True  # trailers, if any, follow untouched
        await self._downstream({"type": "http.response.body", "body": out})

    async def _run(self, compress: Callable[[bytes], bytes], data: bytes) -> bytes:
        trace = self._trace
        started = time.perf_counter() if trace is not None else 0.0
        try:
            if len(data) >= self._layer.settings.thread_minimum_size:
                # Compressing half a megabyte with brotli takes milliseconds: do it off the
                # event loop so concurrent requests are not held up (the codecs release the GIL).
                out = await anyio.to_thread.run_sync(compress, data)
            else:
                out = compress(data)
        except BaseException as exc:
            if trace is not None:
                self._trace = None
                trace.fail(exc)
            raise
        if trace is not None:
            trace.add(time.perf_counter() - started, len(data), len(out))
        return out

    def _begin_trace(self, encoder: Encoder, start: Message, *, streaming: bool) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        headers = start.get("headers", ())
        self._trace = CompressTrace(
            recorder,
            coding=encoder.coding,
            level=encoder.level,
            content_type=next((v for n, v in headers if n == b"content-type"), None),
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
    """An awaitable already done: what a held start awaits (nothing is sent yet)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield from ()


_NOTHING: Final = _Done()
