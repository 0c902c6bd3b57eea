"""JSON and MessagePack codecs behind one small interface (:class:`fastapi_serdes.Codec`).

Both follow one value policy (``docs/explanation/value-policy.md``, :mod:`.value_policy`):

- pydantic decides how a model becomes data (aliases, serializers, ``exclude``...), once;
- datetimes, dates and times are RFC 3339 strings, UUIDs and Decimals strings, enums their
  values, sets arrays, in both codecs (the representation pydantic gives JSON);
- ``bytes`` are the documented difference: MessagePack carries them natively as ``bin``, JSON
  as pydantic renders them (UTF-8 text by default; ``ser_json_bytes="base64"`` for binary data).
  When MessagePack has to go through pydantic's JSON form (a type with JSON-only settings, or a
  value ormsgpack refuses natively, such as a non-string dict key), bytes are JSON text there too;
- non-finite floats are refused in both directions; integers outside 64 bits are refused when
  decoding, and when encoding MessagePack (JSON writes them exactly).

A codec is usable outside HTTP, e.g. to put a model on a queue::

    codec = MsgPackCodec()
    data = codec.encode(user, TypeAdapter(User))
    user = codec.decode(data, TypeAdapter(User))
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
