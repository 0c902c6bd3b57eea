"""The content codings behind response compression: gzip, brotli and zstd, whole or streamed.

An :class:`Encoder` compresses a whole body at once or hands out a :class:`StreamEncoder` for one
streaming response, which flushes after every chunk so the client can decode it as it arrives.
``brotli`` and ``zstandard`` are imported when their encoder is built, never before.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from .settings import Compression, _import

_Codec = Callable[[bytes], bytes]


@dataclass(slots=True)
class StreamEncoder:
    """Compresses one streaming response, chunk by chunk."""

    process: _Codec
    flush: Callable[[], bytes]
    end: Callable[[], bytes]

    def chunk(self, data: bytes) -> bytes:
        """Compress ``data`` and flush, so the client can decode everything sent so far."""
        return self.process(data) + self.flush()

    def finish(self, data: bytes) -> bytes:
        """Compress the last ``data`` and end the stream."""
        return self.process(data) + self.end()


@dataclass(frozen=True, slots=True)
class Encoder:
    """One content coding at one level: ``compress`` a whole body, or ``stream`` one."""

    coding: str
    level: int
    compress: _Codec
    stream: Callable[[], StreamEncoder]


def gzip_encoder(level: int) -> Encoder:
    """gzip through zlib; the header carries no timestamp."""

    def stream() -> StreamEncoder:
        z = zlib.compressobj(level, zlib.DEFLATED, 31)
        return StreamEncoder(z.compress, partial(z.flush, zlib.Z_SYNC_FLUSH), z.flush)

    return Encoder("gzip", level, partial(zlib.compress, level=level, wbits=31), stream)


def brotli_encoder(level: int) -> Encoder:
    """brotli through the ``brotli`` package."""
    brotli = _import("br")

    def stream() -> StreamEncoder:
        c = brotli.Compressor(quality=level)
        return StreamEncoder(c.process, c.flush, c.finish)

    return Encoder("br", level, partial(brotli.compress, quality=level), stream)


def zstd_encoder(level: int) -> Encoder:
    """zstd through ``zstandard``.

    Whole bodies reuse a compression context: allocating one costs about a quarter of compressing
    a 27 KB body. A context is never shared between threads, hence one per thread; a stream has
    its own (two streams of one thread interleave).
    """
    zstd = _import("zstd")
    local = threading.local()

    def compress(data: bytes) -> bytes:
        compressor = getattr(local, "compressor", None)
        if compressor is None:
            compressor = local.compressor = zstd.ZstdCompressor(level=level)
        out: bytes = compressor.compress(data)
        return out

    def stream() -> StreamEncoder:
        c: Any = zstd.ZstdCompressor(level=level).compressobj()
        flush = partial(c.flush, zstd.COMPRESSOBJ_FLUSH_BLOCK)
        return StreamEncoder(c.compress, flush, partial(c.flush, zstd.COMPRESSOBJ_FLUSH_FINISH))

    return Encoder("zstd", level, compress, stream)


_BUILDERS: Final = {"gzip": gzip_encoder, "br": brotli_encoder, "zstd": zstd_encoder}


def build_encoders(compression: Compression) -> dict[str, Encoder]:
    """One encoder per offered coding, in server order."""
    return {c: _BUILDERS[c](compression.levels[c]) for c in compression.codings}
