"""Incremental decoders for request bodies in gzip, brotli and zstd, each read bounded.

A decoder is fed compressed bytes as they arrive and read a bounded amount of decoded bytes at a
time, so a small body that expands to gigabytes is never held whole (see
:mod:`.request_bodies`, which counts the decoded bytes against the limit). Each names the
exception its library raises for a corrupt stream as ``error``.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from .settings import _import

#: Largest zstd window accepted (8 MiB: what ``zstd -19`` uses); the decoder allocates it.
ZSTD_MAX_WINDOW: Final = 1 << 23


class Decoder(Protocol):
    """Decodes one request body incrementally."""

    #: The exception the library raises for input that is not valid in this coding.
    error: type[Exception]

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
    error: type[Exception] = zlib.error

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
    __slots__ = ("_d", "_input", "error")

    def __init__(self) -> None:
        brotli = _import("br")
        self.error: type[Exception] = brotli.error
        self._d = brotli.Decompressor()
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
    128 KiB (RFC 8878 §3.1.1.2.4), so :class:`ZstdFrames` walks the block headers and the
    decoder gets one complete block per call. The same walk tells a complete stream from a
    truncated one.
    """

    __slots__ = ("_d", "_frames", "_input", "_offset", "_zstd", "error")

    def __init__(self) -> None:
        zstd = _import("zstd")
        self.error: type[Exception] = zstd.ZstdError
        self._zstd = zstd.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._d = self._zstd.decompressobj()
        self._frames = ZstdFrames()
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


class ZstdFrames:
    """Walks frame and block headers of a zstd stream (RFC 8878 §3.1).

    ``boundaries`` receives ``(offset, frame_end)`` for the end of every frame header, block and
    skippable frame, as soon as its header is read.
    """

    __slots__ = ("_buf", "_checksum", "_need", "_pos", "_skip", "_state", "boundaries")

    def __init__(self) -> None:
        self._state = "magic"  # the header expected next: a key of _HEADERS, or "invalid"
        self._need = 4  # its size
        self._buf = b""
        self._skip = 0  # bytes to pass over before the next header
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
                _HEADERS[self._state](self, header, self._pos + i)
        self._pos += n

    def _expect(self, state: str, need: int) -> None:
        self._state, self._need = state, need

    def _boundary(self, at: int, frame_end: bool) -> None:
        self.boundaries.append((at + self._skip, frame_end))

    def _magic(self, header: bytes, at: int) -> None:
        if header == _ZSTD_MAGIC:
            self._expect("descriptor", 1)
        elif header[1:] == b"\x2a\x4d\x18" and header[0] & 0xF0 == 0x50:
            self._expect("skippable", 4)  # a skippable frame: its size follows
        else:
            # Not zstd: one last boundary hands everything to the decoder, which says why.
            self._state = "invalid"
            self._boundary(at, True)

    def _skippable(self, header: bytes, at: int) -> None:
        self._skip = int.from_bytes(header, "little")
        self._expect("magic", 4)
        self._boundary(at, True)

    def _descriptor(self, header: bytes, at: int) -> None:
        flags = header[0]
        single_segment = bool(flags & 0x20)
        fcs = _FCS_SIZES[flags >> 6] or (1 if single_segment else 0)
        self._skip = (0 if single_segment else 1) + _DICT_ID_SIZES[flags & 3] + fcs
        self._checksum = bool(flags & 0x04)
        self._expect("block", 3)
        self._boundary(at, False)

    def _block(self, header: bytes, at: int) -> None:
        value = int.from_bytes(header, "little")  # last-block bit, type, size
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        self._skip = 1 if kind == 1 else size  # an RLE block holds one byte
        if last:
            self._skip += 4 if self._checksum else 0
            self._expect("magic", 4)
        self._boundary(at, bool(last))


_HEADERS: Final[dict[str, Callable[[ZstdFrames, bytes, int], None]]] = {
    "magic": ZstdFrames._magic,
    "skippable": ZstdFrames._skippable,
    "descriptor": ZstdFrames._descriptor,
    "block": ZstdFrames._block,
}
_DECODERS: Final[dict[str, Callable[[], Decoder]]] = {
    "gzip": _GzipDecoder,
    "br": _BrotliDecoder,
    "zstd": _ZstdDecoder,
}


def new_decoder(coding: str) -> Decoder:
    """A decoder for ``coding`` (``gzip``, ``br`` or ``zstd``)."""
    return _DECODERS[coding]()


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
    return b"".join(iter(lambda: decoder.read(1 << 20), b""))
