"""Response compression and compressed request bodies: the settings and the rules.

:class:`Compression` (in :mod:`.settings`) is the one value ``SerdesMiddleware(compression=...)``
takes. This module holds the rules every part applies: which responses are worth compressing,
and the headers of a compressed variant. The encoders are in :mod:`.encoders`, the response
layer in :mod:`.responses`; request bodies are decoded by :mod:`.decoders` and
:mod:`.request_bodies`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ..cache.conditional import variant_etag
from ..negotiation import parse_media_type, split_list

# Re-exported: the settings value and what the tests and the package read from here.
from .settings import DEFAULT_MEDIA_TYPES as DEFAULT_MEDIA_TYPES
from .settings import Compression as Compression
from .settings import installed_codings as installed_codings

#: Never compressed, whatever ``media_types`` says: their bytes are compressed already.
ALREADY_COMPRESSED: Final = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/zstd",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "application/x-brotli",
        "font/woff",
        "font/woff2",
        "image/avif",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/webp",
    }
)
_ALREADY_COMPRESSED_TYPES: Final = ("audio", "video")
_NO_BODY_STATUSES: Final = frozenset({204, 205, 304})


def is_compressible(content_type: str | None, media_types: Iterable[str]) -> bool:
    """Whether a response of ``content_type`` is worth compressing under ``media_types``.

    ``media_types`` holds lowercased ``type/subtype``, ``type/*`` or ``type/*+suffix`` patterns.
    A missing or malformed ``Content-Type`` is not compressed, nor is already-compressed media.
    """
    parsed = parse_media_type(content_type) if content_type else None
    if parsed is None:
        return False
    media_type = parsed[0]
    main = media_type.partition("/")[0]
    if media_type in ALREADY_COMPRESSED or main in _ALREADY_COMPRESSED_TYPES:
        return False
    return any(_matches(pattern, media_type) for pattern in media_types)


def _matches(pattern: str, media_type: str) -> bool:
    """Whether a ``type/subtype``, ``type/*`` or ``type/*+suffix`` pattern covers a media type."""
    p_main, _, p_sub = pattern.partition("/")
    main, _, sub = media_type.partition("/")
    if p_main != main:
        return False
    return p_sub in ("*", sub) or (p_sub.startswith("*+") and sub.endswith(p_sub[1:]))


def has_no_transform(cache_control: str) -> bool:
    """Whether a ``Cache-Control`` value carries the ``no-transform`` directive (RFC 9111)."""
    return any(
        d.partition("=")[0].strip().lower() == "no-transform" for d in split_list(cache_control)
    )


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


def scan_start(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, bytes | None, bytes | None, bool]:
    """Content-Type, Content-Length, Vary, and whether the response must not be touched: it is
    encoded already, a range, or its ``Cache-Control`` says ``no-transform``."""
    content_type = content_length = vary = None
    untouchable = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            content_length = value
        elif name == b"vary":
            vary = value
        elif name in (b"content-encoding", b"content-range"):
            untouchable = True
        elif name == b"cache-control":
            untouchable = untouchable or has_no_transform(value.decode("latin-1"))
    return content_type, content_length, vary, untouchable


def could_compress(status: int, content_type: bytes | None, compressible: bool) -> bool:
    """Whether a response of this status and type could be compressed: then it gets ``Vary:
    Accept-Encoding``, compressed or not, the 304 included (its 200 had it)."""
    if status in _NO_BODY_STATUSES:
        return status == 304 and (content_type is None or compressible)
    return status != 206 and compressible
