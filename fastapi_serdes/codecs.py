"""JSON and MessagePack codecs behind one small interface (:class:`fastapi_serdes.Codec`).

Both follow one value policy (see ``docs/explanation/value-policy.md``):

- pydantic decides how a model becomes data (aliases, serializers, ``exclude``...), once;
- datetimes, dates and times are RFC 3339 strings, UUIDs and Decimals strings, enums their
  values, sets arrays, in both codecs (the representation pydantic gives JSON);
- ``bytes`` are the one documented difference: MessagePack carries them natively as ``bin``,
  JSON as pydantic renders them (UTF-8 text by default; ``ser_json_bytes="base64"`` on the model
  for binary data);
- non-finite floats and integers outside 64 bits are refused in both directions
  (:mod:`fastapi_serdes.policy`).

A codec is usable outside HTTP, e.g. to put a model on a queue::

    codec = MsgPackCodec()
    data = codec.encode(user)
    user = codec.decode(data, TypeAdapter(User))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgpack
import orjson
import ormsgpack
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json, to_jsonable_python

from .policy import describe, walk
from .problems import DecodeError, EncodeError

JSON_MEDIA_TYPE: Final = "application/json"
MSGPACK_MEDIA_TYPES: Final = (
    "application/msgpack",
    "application/vnd.msgpack",
    "application/x-msgpack",
)

#: Longest array or map a MessagePack body may declare (per container). A 1 MiB body of tiny
#: containers would otherwise unpack into tens of MiB of Python objects.
DEFAULT_MAX_CONTAINER_LENGTH: Final = 100_000


class JSONCodec:
    """``application/json``: pydantic-core writes it, orjson / pydantic-core read it.

    Decoding rejects invalid UTF-8, a BOM, NaN / Infinity literals, numbers that overflow a
    double, integers past 64 bits and nesting deeper than 1024 levels; duplicate keys keep the
    last value.
    """

    media_types: tuple[str, ...] = (JSON_MEDIA_TYPE,)
    name = "json"

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as JSON, through ``adapter`` when its type is known.

        ``options`` are pydantic dump options (``exclude_none``, ``by_alias``, ``include``...),
        applied with an adapter.
        """
        try:
            if adapter is not None:
                return adapter.dump_json(value, **(options or {}))
            return to_json(value)
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{self.name}: cannot encode the value: {exc}") from exc

    @staticmethod
    def may_hide_non_finite(data: bytes) -> bool:
        """Whether encoded ``data`` may hold a NaN or Infinity pydantic wrote as ``null``."""
        return b"null" in data

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode JSON bytes into plain objects, or validate them into ``adapter``'s type.

        Raises:
            DecodeError: malformed JSON or a number outside the value policy.
            pydantic.ValidationError: the data does not fit the type.
        """
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"Invalid JSON: {exc}") from None
        # orjson reads integers past 64 bits as floats: catch that before it alters a value.
        if b"0000000000000000000" in data.translate(_DIGITS_TO_ZERO):
            _check_exact_integers(data)
        return obj if adapter is None else adapter.validate_python(obj)


_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")


def _check_exact_integers(data: bytes) -> None:
    """Reject an integer literal outside 64 bits (the slow path, only for long digit runs)."""
    import json

    try:
        exact = json.loads(data)
    except ValueError:  # pragma: no cover - orjson accepted it already
        return
    found = walk(exact)
    if found is not None:
        raise DecodeError(f"Invalid JSON number at {describe(found)}")


class MsgPackCodec:
    """MessagePack: ``application/msgpack``, ``application/vnd.msgpack``, ``application/x-msgpack``.

    Encodes with ormsgpack straight from pydantic's Python output (no JSON detour); decodes
    with msgpack, which enforces limits: UTF-8 strings, string map keys, no extension types but
    the timestamp (read as a ``datetime``), no trailing bytes, at most ``max_container_length``
    items per array or map, nesting at most 1024 levels.
    """

    media_types: tuple[str, ...] = MSGPACK_MEDIA_TYPES
    name = "msgpack"

    def __init__(self, *, max_container_length: int = DEFAULT_MAX_CONTAINER_LENGTH) -> None:
        if not isinstance(max_container_length, int) or max_container_length < 1:
            raise ValueError(
                f"max_container_length must be a positive int, got {max_container_length!r}"
            )
        self.max_container_length = max_container_length

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as MessagePack, through ``adapter`` when its type is known.

        ``options`` are pydantic dump options (``exclude_none``, ``by_alias``, ``include``...),
        applied with an adapter.
        """
        try:
            obj = adapter.dump_python(value, **(options or {})) if adapter is not None else value
            return ormsgpack.packb(obj, default=_jsonable, option=_PACK_OPTIONS)
        except (ValueError, TypeError, ormsgpack.MsgpackEncodeError) as exc:
            raise EncodeError(f"{self.name}: cannot encode the value: {exc}") from exc

    @staticmethod
    def may_hide_non_finite(data: bytes) -> bool:
        """Whether encoded ``data`` may hold a NaN or Infinity float."""
        return _may_hold_non_finite(data)

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode MessagePack bytes into plain objects, or validate them into ``adapter``'s type.

        Raises:
            DecodeError: malformed MessagePack, a limit exceeded, or a non-finite float.
            pydantic.ValidationError: the data does not fit the type.
        """
        limit = min(self.max_container_length, len(data))
        try:
            obj = msgpack.unpackb(
                data,
                raw=False,
                strict_map_key=True,
                timestamp=3,
                ext_hook=_refuse_ext,
                max_array_len=limit,
                max_map_len=limit,
                max_str_len=len(data),
                max_bin_len=len(data),
                max_ext_len=len(data),
            )
        except DecodeError:
            raise
        except msgpack.ExtraData:
            raise DecodeError("Invalid MessagePack: trailing bytes after the value") from None
        except msgpack.StackError:
            raise DecodeError("Invalid MessagePack: nested deeper than 1024 levels") from None
        except UnicodeDecodeError:
            raise DecodeError("Invalid MessagePack: a string is not valid UTF-8") from None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise DecodeError(f"Invalid MessagePack: {_msgpack_reason(exc)}") from None
        found = walk(obj) if _may_hold_non_finite(data) else None
        if found is not None:
            raise DecodeError(f"Invalid MessagePack number at {describe(found)}")
        return obj if adapter is None else adapter.validate_python(obj)


_PACK_OPTIONS: Final = ormsgpack.OPT_UTC_Z | ormsgpack.OPT_NON_STR_KEYS


def _jsonable(value: Any) -> Any:
    """ormsgpack's fallback: pydantic's JSON form of types msgpack lacks (Decimal, timedelta)."""
    if isinstance(value, set | frozenset):
        return list(value)
    return to_jsonable_python(value)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"Invalid MessagePack: extension type {code} is not accepted")


def _may_hold_non_finite(data: bytes) -> bool:
    # A float64 with all exponent bits set (NaN, ±Infinity) starts 0xcb 0x7f/0xff 0xf?; a
    # float32 one 0xca 0x7f/0xff 0x8?-0xf?. Cheap pre-test; the walk confirms.
    return b"\xcb\x7f" in data or b"\xcb\xff" in data or b"\xca\x7f" in data or b"\xca\xff" in data


def _msgpack_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "incomplete" in text or "Unpack failed: error = -1" in text:
        return "the body is truncated"
    if isinstance(exc, msgpack.FormatError):
        return "the bytes are not MessagePack (a reserved format byte)"
    if "exceeds max" in text:
        return f"a container or string is longer than allowed ({text})"
    return text[:200]


def default_codecs() -> tuple[JSONCodec, MsgPackCodec]:
    """New instances of the built-in codecs, JSON first (the default)."""
    return JSONCodec(), MsgPackCodec()


__all__ = [
    "JSON_MEDIA_TYPE",
    "MSGPACK_MEDIA_TYPES",
    "JSONCodec",
    "MsgPackCodec",
    "ValidationError",
    "default_codecs",
]
