"""Request bodies sent with ``Content-Encoding: gzip | br | zstd``, decoded within the size limit.

The body is decoded incrementally as it arrives and handed on in chunks of at most
:data:`CHUNK_SIZE` bytes (for zstd, one block: at most 128 KiB), counting the **decoded** bytes
against ``max_body_size`` (RFC 9110 §15.5.14): a few hundred bytes of brotli that expand to
256 MiB are refused with 413 once the limit is passed, having held about the limit in memory,
never the expansion. The compressed bytes read are limited too (a stream of empty blocks would
otherwise be read forever). A corrupt or truncated body is a 400 problem.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Final, Protocol

from opentelemetry.trace import Span

from .._types import Message, Receive, Scope, Send, no_receive
from ..problems import ProblemError
from ..telemetry import ATTR_CODING, SPAN_DECOMPRESS, Recorder
from ..telemetry.spans import coding_sizes
from . import _import

#: Largest chunk of decoded bytes handed on per ``receive()``.
CHUNK_SIZE: Final = 64 * 1024
#: Largest zstd window accepted (8 MiB: what ``zstd -19`` uses); the decoder allocates it.
ZSTD_MAX_WINDOW: Final = 1 << 23


class Decoder(Protocol):
    """Decodes one request body incrementally."""

    def feed(self, data: bytes) -> None:
        """Take more compressed input."""
        ...

    def read(self, size: int) -> bytes:
        """About ``size`` decoded bytes at most (brotli may pass it slightly); b"" = needs input."""
        ...

    def finished(self) -> bool:
        """Whether the input fed so far is complete (no truncated stream, no trailing bytes)."""
        ...


class _GzipDecoder:
    __slots__ = ("_d", "_input")

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self._input = b""

    def feed(self, data: bytes) -> None:
        self._input += data

    def read(self, size: int) -> bytes:
        while self._input:
            if self._d.eof:
                # RFC 1952: a gzip file may hold several members, one after the other.
                self._d = zlib.decompressobj(31)
            d = self._d
            out = d.decompress(self._input, size)
            self._input = d.unused_data if d.eof else d.unconsumed_tail
            if out:
                return out
        return b""

    def finished(self) -> bool:
        return self._d.eof and not self._input


class _BrotliDecoder:
    __slots__ = ("_d", "_input")

    def __init__(self) -> None:
        self._d = _import("br").Decompressor()
        self._input = b""

    def feed(self, data: bytes) -> None:
        self._input += data

    def read(self, size: int) -> bytes:
        d = self._d
        while True:
            if not d.can_accept_more_data():
                # The last call stopped at the output limit: drain before giving more input.
                out = d.process(b"", output_buffer_limit=size)
            elif self._input:
                data, self._input = self._input, b""
                out = d.process(data, output_buffer_limit=size)
            else:
                # Output past the limit of the last call may still be buffered inside.
                return bytes(d.process(b"", output_buffer_limit=size))
            if out:
                return bytes(out)

    def finished(self) -> bool:
        return bool(self._d.is_finished()) and not self._input


class _ZstdDecoder:
    """zstd through ``zstandard``, fed one block at a time.

    ``zstandard`` has no output bound per call, but a zstd block never decodes to more than
    128 KiB (RFC 8878 §3.1.1.2.4), so :class:`_ZstdFrames` walks the block headers and the
    decoder gets one complete block per call. The same walk tells a complete stream from a
    truncated one.
    """

    __slots__ = ("_d", "_frames", "_input", "_offset", "_zstd")

    def __init__(self) -> None:
        self._zstd = _import("zstd").ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._d = self._zstd.decompressobj()
        self._frames = _ZstdFrames()
        self._input = b""
        self._offset = 0  # stream offset of self._input[0]

    def feed(self, data: bytes) -> None:
        self._input += data
        self._frames.feed(data)

    def read(self, size: int) -> bytes:
        boundaries = self._frames.boundaries
        while boundaries and boundaries[0][0] <= self._offset + len(self._input):
            end, frame_end = boundaries.popleft()
            cut = end - self._offset
            piece, self._input = self._input[:cut], self._input[cut:]
            self._offset = end
            out = self._d.decompress(piece) if piece else b""
            if frame_end:
                self._d = self._zstd.decompressobj()
            if out:
                return bytes(out)
        return b""

    def finished(self) -> bool:
        return self._frames.complete() and not self._input


_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_FCS_SIZES: Final = (0, 2, 4, 8)
_DICT_ID_SIZES: Final = (0, 1, 2, 4)


class _ZstdFrames:
    """Walks frame and block headers of a zstd stream (RFC 8878 §3.1).

    ``boundaries`` receives ``(offset, frame_end)`` for the end of every frame header, block and
    skippable frame, as soon as its header is read.
    """

    __slots__ = ("_buf", "_checksum", "_need", "_pos", "_skip", "_state", "boundaries")

    def __init__(self) -> None:
        self._state = "magic"
        self._need = 4
        self._buf = b""
        self._skip = 0
        self._pos = 0  # stream offset of the end of the data fed so far
        self._checksum = False
        self.boundaries: deque[tuple[int, bool]] = deque()

    def complete(self) -> bool:
        return self._state == "magic" and not self._buf and not self._skip

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n and self._state != "invalid":
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            take = min(self._need - len(self._buf), n - i)
            self._buf += data[i : i + take]
            i += take
            if len(self._buf) == self._need:
                header, self._buf = self._buf, b""
                self._advance(header, self._pos + i)
        self._pos += n

    def _advance(self, header: bytes, at: int) -> None:
        state = self._state
        if state == "magic":
            if header == _ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif header[1:] == b"\x2a\x4d\x18" and header[0] & 0xF0 == 0x50:
                self._state, self._need = "skippable", 4  # a skippable frame: its size follows
            else:
                # Not zstd: one last boundary hands everything to the decoder, which says why.
                self._state = "invalid"
                self.boundaries.append((at, True))
        elif state == "skippable":
            self._skip = int.from_bytes(header, "little")
            self._state, self._need = "magic", 4
            self.boundaries.append((at + self._skip, True))
        elif state == "descriptor":
            flags = header[0]
            single_segment = bool(flags & 0x20)
            fcs = _FCS_SIZES[flags >> 6] or (1 if single_segment else 0)
            self._skip = (0 if single_segment else 1) + _DICT_ID_SIZES[flags & 3] + fcs
            self._checksum = bool(flags & 0x04)
            self._state, self._need = "block", 3
            self.boundaries.append((at + self._skip, False))
        else:  # a block header: last-block bit, type, size
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            self._skip = 1 if kind == 1 else size  # an RLE block holds one byte
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
            self.boundaries.append((at + self._skip, bool(last)))


_DECODERS: Final[dict[str, type[Decoder]]] = {
    "gzip": _GzipDecoder,
    "br": _BrotliDecoder,
    "zstd": _ZstdDecoder,
}
_NAMES: Final = {"gzip": "gzip", "br": "brotli", "zstd": "zstd"}


def new_decoder(coding: str) -> Decoder:
    """A decoder for ``coding`` (``gzip``, ``br`` or ``zstd``)."""
    decoder: Decoder = _DECODERS[coding]()
    return decoder


def coding_available(coding: str) -> bool:
    """Whether the library for ``coding`` is installed (gzip always is)."""
    try:
        new_decoder(coding)
    except ImportError:
        return False
    return True


def decode_whole(coding: str, data: bytes) -> bytes:
    """A whole body the app itself encoded with ``coding`` (trusted: no limit), decoded."""
    decoder = new_decoder(coding)
    decoder.feed(data)
    chunks = []
    while chunk := decoder.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [zlib.error]
    for coding, attribute in (("br", "error"), ("zstd", "ZstdError")):
        try:
            errors.append(getattr(_import(coding), attribute))
        except ImportError:
            continue
    return tuple(errors)


class DecompressedBody:
    """Per-request ``receive`` that decodes a compressed body, and the ``send`` guard it needs.

    A problem found while decoding (413, 400) is raised from ``receive`` for the reader to handle
    (``SerdesRoute`` answers it) and kept in :attr:`problem`: whatever response a plain route
    then starts (FastAPI answers its own 400 for a body it could not read) is replaced by it.
    """

    __slots__ = (
        "_coding",
        "_content_length",
        "_decoder",
        "_errors",
        "_input_done",
        "_limit",
        "_problem_details",
        "_raw_size",
        "_receive",
        "_recorder",
        "_size",
        "_span",
        "answered",
        "done",
        "problem",
    )

    def __init__(
        self,
        receive: Receive,
        coding: str,
        limit: int,
        content_length: bytes | None,
        recorder: Recorder | None = None,
        *,
        problem_details: bool = False,
    ) -> None:
        self._receive = receive
        self._problem_details = problem_details
        self._coding = coding
        self._decoder = new_decoder(coding)
        self._errors = _decode_errors()
        self._limit = limit
        self._content_length = content_length
        self._size = 0
        self._raw_size = 0
        self._input_done = False
        self._recorder = recorder
        self._span: Span | None = None
        self.done = False
        self.answered = False
        self.problem: ProblemError | None = None

    async def receive(self) -> Message:
        if self.done:
            return await self._receive()
        if self.problem is not None:
            raise self.problem
        if self._span is None and self._recorder is not None:
            # A serdes.decompress span from the first read to the end of the body.
            self._span = self._recorder.start(SPAN_DECOMPRESS, {ATTR_CODING: self._coding})
        length = self._content_length
        if length is not None and length.isdigit() and int(length) > self._limit:
            raise self._fail(_too_large(self._limit))
        while True:
            try:
                out = self._decoder.read(CHUNK_SIZE)
            except self._errors as exc:
                raise self._fail(self._corrupt(str(exc))) from None
            if out:
                self._size += len(out)
                if self._size > self._limit:
                    raise self._fail(_too_large(self._limit))
                return {"type": "http.request", "body": out, "more_body": True}
            if self._input_done:
                if not self._decoder.finished():
                    raise self._fail(self._corrupt("it ends before the compressed stream does"))
                self.done = True
                self.close()
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self._receive()
            if message["type"] != "http.request":
                return message
            data = message.get("body", b"")
            self._raw_size += len(data)
            if self._raw_size > self._limit:
                raise self._fail(_too_large(self._limit))
            self._decoder.feed(data)
            self._input_done = not message.get("more_body", False)

    def _fail(self, problem: ProblemError) -> ProblemError:
        self.problem = problem
        span, self._span = self._span, None
        if span is not None and self._recorder is not None:
            self._recorder.fail(span, problem)
        return problem

    def close(self) -> None:
        """End the decompression span, if one is open, with the byte counts so far (the whole
        body, or what the app read of it)."""
        span, self._span = self._span, None
        if span is None or self._recorder is None:
            return
        self._recorder.end(span, coding_sizes(self._raw_size, self._size, decoding=True))

    def _corrupt(self, reason: str) -> ProblemError:
        name = _NAMES[self._coding]
        return ProblemError.of(
            "malformed-body",
            f"The request body is not valid {name} (Content-Encoding: {self._coding}): {reason}.",
        )

    def guard(self, send: Send) -> Send:
        """Wrap ``send`` so a decoding problem replaces whatever response the app starts."""

        async def guarded(message: Message) -> None:
            if self.problem is None:
                await send(message)
            elif message["type"] == "http.response.start" and not self.answered:
                await self.answer(send)

        return guarded

    async def answer(self, send: Send) -> None:
        """Send the problem as the response."""
        assert self.problem is not None
        self.answered = True
        response = self.problem.render(self._problem_details)
        await response({"type": "http"}, no_receive, send)


def _too_large(limit: int) -> ProblemError:
    return ProblemError.of(
        "body-too-large",
        f"The request body is larger than the {limit} bytes this server reads (decompressed size).",
    )


def unsupported_encoding(value: str, offers: str) -> ProblemError:
    """415 for a request ``Content-Encoding`` the server cannot decode (RFC 9110 §15.5.16)."""
    return ProblemError.of(
        "unsupported-content-encoding",
        f"Content-Encoding {value!r} is not supported; send the body with one of {offers} "
        "(or uncompressed).",
        headers={"Accept-Encoding": offers},
        supported=[c.strip() for c in offers.split(",") if c.strip()],
    )


def request_coding(value: bytes) -> str | None:
    """The one coding named by a request ``Content-Encoding`` (``x-gzip`` is ``gzip``).

    Returns ``"identity"`` for an identity (or empty) value and None for a list of several
    codings, which is not supported.
    """
    codings = [c.strip().lower() for c in value.decode("latin-1").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        return None
    return "gzip" if codings[0] == "x-gzip" else codings[0]


def strip_encoding_headers(scope: Scope) -> None:
    """Drop ``Content-Encoding`` and ``Content-Length``: they described the compressed bytes."""
    scope["headers"] = [
        (n, v) for n, v in scope["headers"] if n not in (b"content-encoding", b"content-length")
    ]
