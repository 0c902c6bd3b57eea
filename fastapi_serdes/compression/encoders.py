"""The content codings behind response compression: gzip, brotli and zstd, whole or streamed.

Each encoder compresses a whole body at once or hands out a :class:`StreamEncoder` for one
streaming response, which flushes after every chunk so the client can decode it as it arrives.
``brotli`` and ``zstandard`` are imported when their encoder is built, never before.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any, Protocol

from . import Compression, _import


class StreamEncoder(Protocol):
    """Compresses one streaming response, chunk by chunk."""

    def chunk(self, data: bytes) -> bytes:
        """Compress ``data`` and flush, so the client can decode everything sent so far."""
        ...

    def finish(self, data: bytes) -> bytes:
        """Compress the last ``data`` and end the stream."""
        ...


class Encoder(Protocol):
    """One content coding: whole bodies at once, or a stream."""

    coding: str

    def compress(self, data: bytes) -> bytes:
        """Compress a whole body."""
        ...

    def stream(self) -> StreamEncoder:
        """A new encoder for one streaming response."""
        ...


class GzipEncoder:
    """gzip through zlib (standard library); the header carries no timestamp."""

    coding = "gzip"

    def __init__(self, level: int) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level, wbits=31)

    def stream(self) -> StreamEncoder:
        return _GzipStream(self.level)


class _GzipStream:
    __slots__ = ("_z",)

    def __init__(self, level: int) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush()


class BrotliEncoder:
    """brotli through the ``brotli`` package (the ``brotli`` extra)."""

    coding = "br"

    def __init__(self, level: int) -> None:
        self._brotli = _import("br")
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return bytes(self._brotli.compress(data, quality=self.level))

    def stream(self) -> StreamEncoder:
        return _BrotliStream(self._brotli.Compressor(quality=self.level))


class _BrotliStream:
    __slots__ = ("_c",)

    def __init__(self, compressor: Any) -> None:
        self._c = compressor

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.flush())

    def finish(self, data: bytes) -> bytes:
        return bytes(self._c.process(data) + self._c.finish())


class ZstdEncoder:
    """zstd through ``zstandard`` (the ``zstd`` extra).

    A compressor's context is reused across requests (allocating one costs as much as compressing
    a small body) but never shared between threads, hence one per thread.
    """

    coding = "zstd"

    def __init__(self, level: int) -> None:
        self._zstd = _import("zstd")
        self.level = level
        self._local = threading.local()

    def compress(self, data: bytes) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = self._zstd.ZstdCompressor(level=self.level)
        return bytes(compressor.compress(data))

    def stream(self) -> StreamEncoder:
        compressor = self._zstd.ZstdCompressor(level=self.level).compressobj()
        return _ZstdStream(compressor, self._zstd)


class _ZstdStream:
    __slots__ = ("_c", "_zstd")

    def __init__(self, compressor: Any, zstd: Any) -> None:
        self._c = compressor
        self._zstd = zstd

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(self._zstd.COMPRESSOBJ_FLUSH_BLOCK))

    def finish(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data) + self._c.flush(self._zstd.COMPRESSOBJ_FLUSH_FINISH))


def build_encoders(compression: Compression) -> dict[str, Encoder]:
    """One encoder per offered coding, in server order."""
    classes: dict[str, type[GzipEncoder] | type[BrotliEncoder] | type[ZstdEncoder]] = {
        "gzip": GzipEncoder,
        "br": BrotliEncoder,
        "zstd": ZstdEncoder,
    }
    return {c: classes[c](compression.level(c)) for c in compression.codings or ()}
