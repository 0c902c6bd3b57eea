"""Response compression and compressed request bodies.

:class:`Compression` (in :mod:`.settings`) is the one value ``SerdesMiddleware(compression=...)``
takes; this module holds the media-type rules. The encoders are in :mod:`.encoders`, the
decisions in :mod:`.layer`, the response side in :mod:`.responses`; request bodies are decoded
by :mod:`.decoders` and :mod:`.request_bodies`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ..negotiation import parse_media_type, split_list
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


def is_compressible(content_type: str | None, media_types: Iterable[str]) -> bool:
    """Whether a response of ``content_type`` is worth compressing under ``media_types``.

    ``media_types`` holds lowercased ``type/subtype``, ``type/*`` or ``type/*+suffix`` patterns.
    A missing or malformed ``Content-Type`` is not compressed, nor is already-compressed media.
    """
    parsed = parse_media_type(content_type) if content_type else None
    if parsed is None:
        return False
    media_type = parsed[0]
    main, _, sub = media_type.partition("/")
    if media_type in ALREADY_COMPRESSED or main in ("audio", "video"):
        return False
    for pattern in media_types:
        p_main, _, p_sub = pattern.partition("/")
        if p_main == main and (
            p_sub in ("*", sub) or (p_sub.startswith("*+") and sub.endswith(p_sub[1:]))
        ):
            return True
    return False


def has_no_transform(cache_control: str) -> bool:
    """Whether a ``Cache-Control`` value carries the ``no-transform`` directive (RFC 9111)."""
    return any(
        d.partition("=")[0].strip().lower() == "no-transform" for d in split_list(cache_control)
    )
