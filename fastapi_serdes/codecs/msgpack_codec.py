"""MessagePack: ormsgpack writes it, msgpack's unpacker reads it, under the number policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

import msgpack
import ormsgpack
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from .._types import check_positive
from ..problems import DecodeError, EncodeError
from .core_schemas import has_json_only_serialization, memoised
from .plain_models import plain_hook
from .value_policy import describe, find_bad_number, packed_may_hold_non_finite, validated, walk

MSGPACK_MEDIA_TYPES: Final = (
    "application/msgpack",
    "application/vnd.msgpack",
    "application/x-msgpack",
)
#: Longest array or map a MessagePack body may declare (per container). A 1 MiB body of tiny
#: containers would otherwise unpack into tens of MiB of Python objects.
DEFAULT_MAX_CONTAINER_LENGTH: Final = 100_000
#: Deepest nesting a MessagePack body may have (the msgpack unpacker's limit).
MSGPACK_MAX_DEPTH: Final = 1024

_PACK_OPTIONS: Final = ormsgpack.OPT_UTC_Z
_PACK_ERRORS: Final = (ValueError, TypeError, ormsgpack.MsgpackEncodeError)


class MsgPackCodec:
    """MessagePack: ``application/msgpack``, ``application/vnd.msgpack``, ``application/x-msgpack``.

    Encodes with ormsgpack straight from pydantic's Python output (pydantic's JSON form only for
    types with JSON-only settings and values ormsgpack refuses natively); decodes with msgpack,
    which enforces limits: UTF-8 strings, string (or binary) map keys, no extension types but the
    timestamp (read as a ``datetime``), no trailing bytes, at most ``max_container_length`` items
    per array or map, nesting at most :data:`MSGPACK_MAX_DEPTH` levels.
    """

    media_types: tuple[str, ...] = MSGPACK_MEDIA_TYPES
    name = "msgpack"

    def __init__(self, *, max_container_length: int = DEFAULT_MAX_CONTAINER_LENGTH) -> None:
        check_positive("max_container_length", max_container_length)
        self.max_container_length = max_container_length
        # adapter -> whether its type has JSON-only serialisation settings, and ormsgpack's
        # default hook for it when it is plain (see plain_models), else None.
        self._plans: dict[TypeAdapter[Any], tuple[bool, Callable[[Any], Any] | None]] = {}

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as MessagePack, through ``adapter`` and pydantic dump ``options``
        (``exclude_none``, ``include``...) when given.

        Raises:
            EncodeError: the value holds a non-finite float or an integer past 64 bits (the
                message locates it), or a type that cannot be serialised.
        """
        opts = options or {}
        json_only, hook = (False, None)
        if adapter is not None:
            json_only, hook = memoised(self._plans, adapter, lambda: _plan(adapter))
        if hook is not None and opts.keys() <= {"by_alias"}:
            packed = _pack_plain(value, hook)
            if packed is not None:
                return packed
        # What ormsgpack refuses natively (non-str keys, a time with a timezone) goes again
        # through pydantic's JSON representation, like the JSON codec.
        for json_mode in (True,) if json_only else (False, True):
            try:
                return _pack(value, adapter, opts, json_mode=json_mode)
            except EncodeError:
                raise
            except _PACK_ERRORS as exc:
                error = exc
        raise EncodeError(f"{MSGPACK_MEDIA_TYPES[0]}: cannot encode the value: {error}") from error

    @staticmethod
    def may_hide_non_finite(data: bytes) -> bool:
        """Whether MessagePack ``data`` this codec wrote may hold a NaN or an infinity (the
        float64 encodings of Python's ``nan``, ``-nan``, ``inf`` and ``-inf``)."""
        return packed_may_hold_non_finite(data)

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode MessagePack bytes into plain objects, or validate them into ``adapter``'s type.

        With an adapter, a non-finite float under a key the type ignores is dropped with the key,
        unread (MessagePack holds no integer past 64 bits).

        Raises:
            DecodeError: malformed MessagePack, a limit exceeded, or a non-finite float.
            pydantic.ValidationError: the data does not fit the type.
        """
        # msgpack's unpacker, never ormsgpack's: ormsgpack reads the declared length of a
        # container before its limits apply (a 5-byte body crashed ormsgpack 1.5 to 1.12), and
        # it ignores trailing bytes.
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
        except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
            raise DecodeError(f"Invalid MessagePack: {_msgpack_reason(exc)}") from None
        validate = None if adapter is None else partial(adapter.validate_python, obj)
        found = find_bad_number(obj, packed=data)
        return validated(obj, found, validate, "Invalid MessagePack value")


def _plan(adapter: TypeAdapter[Any]) -> tuple[bool, Callable[[Any], Any] | None]:
    if has_json_only_serialization(adapter.core_schema):
        return True, None
    return False, plain_hook(getattr(adapter, "_type", Any), _jsonable)


def _pack_plain(value: Any, hook: Callable[[Any], Any]) -> bytes | None:
    """``value`` packed straight from its models' fields; None to take pydantic's path (a
    subclass instance, a value ormsgpack refuses, a bad number to locate...)."""
    try:
        data: bytes = ormsgpack.packb(value, default=hook, option=_PACK_OPTIONS)
    except _PACK_ERRORS:
        return None
    return None if packed_may_hold_non_finite(data) else data


def _pack(
    value: Any, adapter: TypeAdapter[Any] | None, opts: Mapping[str, Any], *, json_mode: bool
) -> bytes:
    """``value`` dumped by pydantic and packed, or an :class:`EncodeError` locating a number
    outside the policy."""
    if adapter is None:
        obj = to_jsonable_python(value) if json_mode else value
    else:
        obj = adapter.dump_python(value, mode="json" if json_mode else "python", **opts)
    try:
        data: bytes = ormsgpack.packb(obj, default=_jsonable, option=_PACK_OPTIONS)
    except _PACK_ERRORS:
        found = walk(obj)  # an integer past 64 bits, located; else the caller tries JSON form
        if found is None:
            raise
    else:
        found = walk(obj, ints=False) if packed_may_hold_non_finite(data) else None
        if found is None:
            return data
    raise EncodeError(f"{MSGPACK_MEDIA_TYPES[0]}: {describe(found)}")


def _jsonable(value: Any) -> Any:
    """ormsgpack's fallback: pydantic's JSON form of types msgpack lacks (Decimal, timedelta)."""
    if isinstance(value, set | frozenset):
        return list(value)
    return to_jsonable_python(value)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"Invalid MessagePack: extension type {code} is not accepted")


_REASONS: Final = (
    (msgpack.ExtraData, "trailing bytes after the value"),
    (msgpack.StackError, f"nested deeper than {MSGPACK_MAX_DEPTH} levels"),
    (UnicodeDecodeError, "a string is not valid UTF-8"),
    (OverflowError, "a timestamp out of range"),  # outside the years datetime holds
    (msgpack.FormatError, "the bytes are not MessagePack (a reserved format byte)"),
)


def _msgpack_reason(exc: BaseException) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    text = str(exc) or type(exc).__name__
    if "incomplete" in text or "Unpack failed: error = -1" in text:
        return "the body is truncated"
    if "exceeds max" in text:
        return f"a container or string is longer than allowed ({text})"
    return text[:200]
