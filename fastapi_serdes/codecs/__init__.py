"""JSON and MessagePack codecs behind one small interface (:class:`fastapi_serdes.Codec`).

Both follow one value policy (``docs/explanation/value-policy.md``): pydantic decides how a model
becomes data, both codecs write what it gives JSON (but ``bytes``, which MessagePack carries as
``bin``), and non-finite floats and integers past 64 bits are refused (the latter only when
decoding, and when encoding MessagePack).
"""

from __future__ import annotations

from .json_codec import JSON_MAX_DEPTH, JSON_MEDIA_TYPE, JSONCodec
from .msgpack_codec import (
    DEFAULT_MAX_CONTAINER_LENGTH,
    MSGPACK_MAX_DEPTH,
    MSGPACK_MEDIA_TYPES,
    MsgPackCodec,
)

__all__ = [
    "DEFAULT_MAX_CONTAINER_LENGTH",
    "JSON_MAX_DEPTH",
    "JSON_MEDIA_TYPE",
    "MSGPACK_MAX_DEPTH",
    "MSGPACK_MEDIA_TYPES",
    "JSONCodec",
    "MsgPackCodec",
    "default_codecs",
]


# Documented (and shown in error messages) where users import them from.
JSONCodec.__module__ = MsgPackCodec.__module__ = __name__


def default_codecs() -> tuple[JSONCodec, MsgPackCodec]:
    """New instances of the built-in codecs, JSON first (the default)."""
    return JSONCodec(), MsgPackCodec()
