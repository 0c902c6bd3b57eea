"""The per-request side of response compression: :class:`CompressingSend` wraps ``send``.

The response start is held back only until the first body message: a single body is compressed
whole (``Content-Length`` set to the bytes sent), a streaming one chunk by chunk with a flush after
each, so a client can decode every chunk as it arrives and memory stays per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio.to_thread

from .._types import Message, Scope, Send
from ..cache.conditional import variant_etag
from ..telemetry import Recorder
from ..telemetry.spans import CompressTrace, route_of
from .encoders import StreamEncoder
from .layer import Choice, CompressionLayer


def encoded_headers(
    headers: list[tuple[bytes, bytes]], coding: str, length: int | None
) -> list[tuple[bytes, bytes]]:
    """Headers of the ``coding`` variant: Content-Encoding, a distinct ETag, the new length."""
    out = []
    for name, value in headers:
        if name != b"content-length":
            out.append((name, variant_etag(value, coding) if name == b"etag" else value))
    out.append((b"content-encoding", coding.encode("ascii")))
    if length is not None:
        out.append((b"content-length", str(length).encode("ascii")))
    return out


class CompressingSend:
    """Per-request ``send`` wrapper that compresses the response when the rules allow."""

    def __init__(
        self,
        send: Send,
        scope: Scope,
        choice: Choice,
        layer: CompressionLayer,
        recorder: Recorder | None = None,
    ) -> None:
        assert choice.encoder is not None  # identity only needs vary.vary_marking
        self._encoder = choice.encoder
        self._identity_ok = choice.identity_ok
        self._downstream = send
        self._recorder = recorder
        self._trace: CompressTrace | None = None
        self._scope = scope
        # Read now: SerdesRoute answers HEAD as GET (it sets the method while it runs).
        self._head = scope["method"] == "HEAD"
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
                self._start = message
                return _sent_nothing()
            self._passing = True
            return self._downstream(message)
        if kind == "http.response.body":
            if self._stream is not None:
                return self._stream_body(message)
            if self._start is not None:
                if message.get("more_body", False):
                    return self._start_stream(self._start, message)
                return self._send_whole(self._start, message)
        # pathsend, zerocopysend (the server sends a file itself), a body without a start:
        # never compressed; release the held start untouched and step aside.
        return self._pass_from(message)

    def _hold(self, message: Message) -> bool:
        """Adjust the start's headers; True to hold it back until the first body message."""
        could, length = self._layer.mark_vary(message, self._scope)
        if not could or message["status"] == 304:
            return False
        if self._identity_ok and length is not None and length.isdigit():  # noqa: SIM102
            if int(length) < self._layer.settings.minimum_size:
                return False
        if self._head:
            # No body to compress: send the headers GET would get. Its compressed length is not
            # known without compressing, and HEAD may leave Content-Length out (RFC 9110 §9.3.2).
            message["headers"] = encoded_headers(message["headers"], self._encoder.coding, None)
            return False
        return True

    async def _pass_from(self, message: Message) -> None:
        """Send the held start as it is, then ``message`` and everything after it."""
        self._passing = True
        start, self._start = self._start, None
        if start is not None:
            await self._downstream(start)
        await self._downstream(message)

    async def _send_whole(self, start: Message, message: Message) -> None:
        body: bytes = message.get("body", b"")
        encoder = self._encoder
        if not self._identity_ok or len(body) >= self._layer.settings.minimum_size:
            self._begin_trace(start, streaming=False)
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

    async def _start_stream(self, start: Message, message: Message) -> None:
        self._start = None
        self._stream = self._encoder.stream()
        self._begin_trace(start, streaming=True)
        start["headers"] = encoded_headers(start["headers"], self._encoder.coding, None)
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
                # Off the event loop, so concurrent requests are not held up by a big body
                # (the codecs release the GIL).
                out = await anyio.to_thread.run_sync(compress, data)
            else:
                out = compress(data)
        except BaseException as exc:
            self.close(exc)
            raise
        if trace is not None:
            trace.add(time.perf_counter() - started, len(data), len(out))
        return out

    def _begin_trace(self, start: Message, *, streaming: bool) -> None:
        if self._recorder is None:
            return
        self._trace = CompressTrace(
            self._recorder,
            coding=self._encoder.coding,
            level=self._encoder.level,
            content_type=next((v for n, v in start["headers"] if n == b"content-type"), None),
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


async def _sent_nothing() -> None:
    """What a held start awaits: nothing is sent yet."""
