"""Incremental decoders for request bodies in gzip, brotli and zstd, each read bounded.

A decoder is ``feed`` compressed bytes as they arrive and ``read`` about ``size`` decoded bytes at
most at a time (b"": it needs more input), so a small body that expands to gigabytes is never
held whole; :mod:`.request_bodies` counts the decoded bytes against the limit. ``finished()``
says whether the input is complete (no truncated stream, no trailing bytes); ``error`` is the
exception the library raises for a corrupt stream.
"""

from __future__ import annotations

import zlib
from typing import Final

from .settings import _import

#: Largest zstd window accepted (8 MiB: what ``zstd -19`` uses); the decoder allocates it.
ZSTD_MAX_WINDOW: Final = 1 << 23


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
    128 KiB (RFC 8878 §3.1.1.2.4), so the decoder reads the frame and block headers (§3.1) and
    hands the library one whole frame header, block or skippable frame per call. The same walk
    tells a complete stream from a truncated one.
    """

    __slots__ = ("_checksum", "_d", "_input", "_state", "_zstd", "error")

    def __init__(self) -> None:
        zstd = _import("zstd")
        self.error: type[Exception] = zstd.ZstdError
        self._zstd = zstd.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._d = self._zstd.decompressobj()
        self._input = b""
        self._state = "frame"  # what the input starts with: "frame", "block", or "invalid"
        self._checksum = False  # whether the frame ends with one

    def feed(self, data: bytes) -> None:
        self._input += data

    def read(self, size: int) -> bytes:
        while (unit := self._next_unit()) is not None:
            length, frame_end = unit
            piece, self._input = self._input[:length], self._input[length:]
            out = self._d.decompress(piece)
            if frame_end:
                self._d = self._zstd.decompressobj()
            if out:
                return bytes(out)
        return b""

    def finished(self) -> bool:
        return self._state == "frame" and not self._input

    def _next_unit(self) -> tuple[int, bool] | None:
        """The length of the frame header, block or skippable frame the input starts with, and
        whether it ends a frame; None until all of it has arrived."""
        data = self._input
        if self._state == "block":
            return self._block(data)
        if self._state == "invalid" or len(data) < 4:
            return None
        if data[:4] == b"\x28\xb5\x2f\xfd":
            return self._frame_header(data)
        if data[1:4] == b"\x2a\x4d\x18" and data[0] & 0xF0 == 0x50:  # a skippable frame
            length = 8 + int.from_bytes(data[4:8], "little")  # (at least 8: the size is read)
            return (length, True) if len(data) >= length else None
        # Not zstd: the library, handed the first bytes, says why.
        self._state = "invalid"
        return 4, True

    def _frame_header(self, data: bytes) -> tuple[int, bool] | None:
        if len(data) < 5:
            return None
        flags = data[4]
        single_segment = bool(flags & 0x20)
        fcs = _FCS_SIZES[flags >> 6] or (1 if single_segment else 0)
        length = 5 + (0 if single_segment else 1) + _DICT_ID_SIZES[flags & 3] + fcs
        if len(data) < length:
            return None
        self._checksum = bool(flags & 0x04)
        self._state = "block"
        return length, False

    def _block(self, data: bytes) -> tuple[int, bool] | None:
        if len(data) < 3:
            return None
        value = int.from_bytes(data[:3], "little")  # last-block bit, type, size
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        # An RLE block holds one byte; the last one of a frame is followed by its checksum.
        length = 3 + (1 if kind == 1 else size) + (4 if last and self._checksum else 0)
        if len(data) < length:
            return None
        if last:
            self._state = "frame"
        return length, bool(last)


Decoder = _GzipDecoder | _BrotliDecoder | _ZstdDecoder
_DECODERS: Final[dict[str, type[Decoder]]] = {
    "gzip": _GzipDecoder,
    "br": _BrotliDecoder,
    "zstd": _ZstdDecoder,
}
_FCS_SIZES: Final = (0, 2, 4, 8)
_DICT_ID_SIZES: Final = (0, 1, 2, 4)


def new_decoder(coding: str) -> Decoder:
    """A decoder for ``coding`` (``gzip``, ``br`` or ``zstd``)."""
    return _DECODERS[coding]()


def decode_whole(coding: str, data: bytes) -> bytes:
    """A whole body the app itself encoded with ``coding`` (trusted: no limit), decoded."""
    decoder = new_decoder(coding)
    decoder.feed(data)
    return b"".join(iter(lambda: decoder.read(1 << 20), b""))
