"""JSON and MessagePack codecs behind one small interface (:class:`fastapi_serdes.Codec`).

Both follow one value policy (``docs/explanation/value-policy.md``, :mod:`.policy`):

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

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import msgpack
import orjson
import ormsgpack
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json, to_json, to_jsonable_python

from .._types import check_positive
from ..problems import DecodeError, EncodeError
from .number_checks import NumberCheck, number_check
from .plain_models import PlainPlan, plain_plan
from .value_policy import Problem, describe, has_json_only_serialization, json_null_markers, walk

JSON_MEDIA_TYPE: Final = "application/json"
MSGPACK_MEDIA_TYPES: Final = (
    "application/msgpack",
    "application/vnd.msgpack",
    "application/x-msgpack",
)

#: Longest array or map a MessagePack body may declare (per container). A 1 MiB body of tiny
#: containers would otherwise unpack into tens of MiB of Python objects.
DEFAULT_MAX_CONTAINER_LENGTH: Final = 100_000
#: Deepest nesting a JSON body may have (pydantic-core's parser limit): a value inside more than
#: 200 arrays or objects is refused (an empty innermost container is not counted as a value).
JSON_MAX_DEPTH: Final = 200
#: Deepest nesting a MessagePack body may have (the msgpack unpacker's limit).
MSGPACK_MAX_DEPTH: Final = 1024

_MARKER_CACHE_SIZE: Final = 512
_T = TypeVar("_T")


def _memoised(
    table: dict[TypeAdapter[Any], _T],
    adapter: TypeAdapter[Any],
    compute: Callable[[TypeAdapter[Any]], _T],
) -> _T:
    """``compute(adapter)``, once per adapter (the table is bounded)."""
    try:
        return table[adapter]
    except KeyError:
        pass
    value = compute(adapter)
    if len(table) >= _MARKER_CACHE_SIZE:
        table.clear()
    table[adapter] = value
    return value


def _null_markers(adapter: TypeAdapter[Any]) -> tuple[bytes, ...] | None:
    return json_null_markers(getattr(adapter, "_type", Any))


def _has_json_only_serialization(adapter: TypeAdapter[Any]) -> bool:
    return has_json_only_serialization(adapter.core_schema)


def _plan_of(adapter: TypeAdapter[Any]) -> PlainPlan | None:
    return plain_plan(getattr(adapter, "_type", Any))


class JSONCodec:
    """``application/json``: pydantic-core writes and reads it.

    Decoding rejects invalid UTF-8, a BOM, lone surrogates, NaN / Infinity literals, numbers that
    overflow a double, integers past 64 bits, trailing data and nesting deeper than
    :data:`JSON_MAX_DEPTH`; duplicate keys keep the last value.
    """

    media_types: tuple[str, ...] = (JSON_MEDIA_TYPE,)
    name = "json"

    def __init__(self) -> None:
        # adapter -> the byte patterns that may hide a NaN written as null (see value_policy.py).
        self._markers: dict[TypeAdapter[Any], tuple[bytes, ...] | None] = {}
        # adapter -> the number check of its type (see number_checks.py), None if not checkable.
        self._checks: dict[TypeAdapter[Any], NumberCheck | None] = {}
        # adapter -> (its plain plan, orjson's default hook), or None when it is not plain.
        self._plains: dict[TypeAdapter[Any], tuple[PlainPlan, Callable[[Any], Any]] | None] = {}

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as JSON, through ``adapter`` when its type is known.

        ``options`` are pydantic dump options (``exclude_none``, ``include``...), applied with an
        adapter.

        Raises:
            EncodeError: the value holds a non-finite float (the message locates it) or a type
                pydantic cannot serialise.
        """
        opts = options or {}
        if adapter is not None and opts.keys() <= {"by_alias"}:
            data = self._write_plain(value, adapter)
            if data is not None:
                return data
        try:
            if adapter is None:
                data = to_json(value, inf_nan_mode="null")
                suspect = b"null" in data
            else:
                data = adapter.dump_json(value, **opts)
                markers = self._markers_for(adapter, opts)
                suspect = b"null" in data if markers is None else _contains_any(data, markers)
            if suspect:
                # pydantic writes NaN and Infinity as null: look at what was serialised.
                dumped = adapter.dump_python(value, **opts) if adapter is not None else value
                found = walk(dumped, ints=False)
                if found is not None:
                    raise EncodeError(f"{JSON_MEDIA_TYPE}: {describe(found)}")
            return data
        except (ValueError, TypeError) as exc:
            if isinstance(exc, EncodeError):
                raise
            raise EncodeError(f"{JSON_MEDIA_TYPE}: cannot encode the value: {exc}") from exc

    def _write_plain(self, value: Any, adapter: TypeAdapter[Any]) -> bytes | None:
        """orjson straight from the models' fields (see :mod:`.plain_models`); None to take
        pydantic's path (not plain, a subclass instance, a NaN to locate, a 2**64 integer...)."""
        plain = _memoised(self._plains, adapter, _json_plain)
        if plain is None:
            return None
        plan, hook = plain
        try:
            data = orjson.dumps(value, default=hook, option=orjson.OPT_UTC_Z)
        except (TypeError, ValueError):  # JSONEncodeError is a TypeError
            return None
        if plan.loose_floats and b"null" in data and walk(value, ints=False) is not None:
            return None
        return data

    def _markers_for(
        self, adapter: TypeAdapter[Any], options: Mapping[str, Any]
    ) -> tuple[bytes, ...] | None:
        if options.get("by_alias") is False or "include" in options or "exclude" in options:
            return None
        return _memoised(self._markers, adapter, _null_markers)

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode JSON bytes into plain objects, or validate them into ``adapter``'s type.

        Raises:
            DecodeError: malformed JSON or a number outside the value policy.
            pydantic.ValidationError: the data does not fit the type.
        """
        if data.startswith(b"\xef\xbb\xbf"):
            raise DecodeError("Invalid JSON: a UTF-8 byte order mark (BOM) is not allowed")
        if adapter is None:
            obj = _parse(data)
            if _may_hold_bad_numbers(data):
                _refuse_bad_numbers(obj)
            return obj
        check = _memoised(self._checks, adapter, _number_check)
        if check is None:
            # The type lets numbers reach places its declaration does not show: screen the bytes.
            if _may_hold_bad_numbers(data):
                _refuse_bad_numbers(_parse(data))
        elif _holds(data, b"NaN", b"N") or _holds(data, b"Infinity", b"I"):
            # Not JSON anywhere, even in a key the model ignores (the check would not see it).
            _refuse_bad_numbers(_parse(data))
        try:
            value = adapter.validate_json(data)
        except ValidationError as exc:
            _raise_if_malformed(exc)
            if check is not None and _may_hold_bad_numbers(data):
                _refuse_bad_numbers(_parse(data))  # a 400 rather than the 422 it caused
            raise
        if check is not None:
            _check_numbers(data, value, check)
        return value


# Digits and "+" fold to "0", "E" to "e": 1E+400 reads 0e0000.
_FOLD_DIGITS: Final = bytes.maketrans(b"123456789+E", b"0000000000e")
# A 3-digit exponent right after a digit (``1e400``, ``2.5E+308``), a 19-digit run (an integer
# that may pass 64 bits), or a NaN / Infinity literal. Text like "jane1234" does not match.
_SUSPECT_NUMBERS: Final = (b"0" * 19, b"0e000", b"NaN", b"Infinity")


def _number_check(adapter: TypeAdapter[Any]) -> NumberCheck | None:
    return number_check(getattr(adapter, "_type", Any))


def _parse(data: bytes) -> Any:
    """The body as Python objects; ``NaN`` and ``Infinity`` are syntax errors here."""
    try:
        return from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raise DecodeError(f"Invalid JSON: {_json_reason(exc)}") from None


def _may_hold_bad_numbers(data: bytes) -> bool:
    # Folding every digit to 0 makes suspicious numbers findable with a few substring tests:
    # a body with none of _SUSPECT_NUMBERS holds no number outside the policy.
    return _contains_any(data.translate(_FOLD_DIGITS), _SUSPECT_NUMBERS)


def _refuse_bad_numbers(obj: Any) -> None:
    found = walk(obj)
    if found is not None:
        raise DecodeError(f"Invalid JSON number at {describe(found)}")


def _run_check(check: NumberCheck, value: Any, *, big: bool) -> Problem | None:
    try:
        return check(value, big)
    except Exception:  # an after-validator returned something unexpected: nothing to say
        return None


def _check_numbers(data: bytes, value: Any, check: NumberCheck) -> None:
    """Refuse a validated ``value`` that holds a number outside the policy (see
    :mod:`.number_checks`); the bytes decide only when the value cannot."""
    try:
        if check(value, True) is None:
            return
    except Exception:  # an after-validator returned something unexpected: trust the bytes
        pass
    if _may_hold_bad_numbers(data):
        _refuse_bad_numbers(_parse(data))  # located by the body's own keys
    found = _run_check(check, value, big=False)  # e.g. "nan" read into a float field
    if found is not None:
        raise DecodeError(f"Invalid JSON number at {describe(found)}")


def _holds(data: bytes, literal: bytes, first: bytes) -> bool:
    """``literal in data``, at memchr speed while ``first`` (its first byte) is rare."""
    start = data.find(first)
    for _ in range(32):
        if start < 0:
            return False
        if data.startswith(literal, start):
            return True
        start = data.find(first, start + 1)
    return start >= 0 and data.find(literal, start) >= 0


def _json_plain(adapter: TypeAdapter[Any]) -> tuple[PlainPlan, Callable[[Any], Any]] | None:
    plan = _plan_of(adapter)
    if plan is None or not plan.json_ok:
        return None
    return plan, plan.hook(to_jsonable_python)


def _contains_any(data: bytes, needles: tuple[bytes, ...]) -> bool:
    # A plain loop: any() with a generator costs more than the searches on small bodies.
    for needle in needles:  # noqa: SIM110
        if needle in data:
            return True
    return False


def _json_reason(exc: Exception) -> str:
    text = str(exc)
    if "recursion limit" in text:
        return f"depth limit: nested deeper than {JSON_MAX_DEPTH} levels ({text})"
    if "invalid unicode code point" in text or "invalid utf-8" in text.lower():
        return f"the text is not valid UTF-8 ({text})"
    return text


def _raise_if_malformed(exc: ValidationError) -> None:
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            reason = str(error.get("ctx", {}).get("error", "malformed"))
            raise DecodeError(f"Invalid JSON: {_json_reason(ValueError(reason))}") from None


class MsgPackCodec:
    """MessagePack: ``application/msgpack``, ``application/vnd.msgpack``, ``application/x-msgpack``.

    Encodes with ormsgpack straight from pydantic's Python output (pydantic's JSON form only for
    types with JSON-only settings and values ormsgpack refuses natively); decodes
    with msgpack, which enforces limits: UTF-8 strings, string (or binary) map keys, no
    extension types but
    the timestamp (read as a ``datetime``), no trailing bytes, at most ``max_container_length``
    items per array or map, nesting at most :data:`MSGPACK_MAX_DEPTH` levels.
    """

    media_types: tuple[str, ...] = MSGPACK_MEDIA_TYPES
    name = "msgpack"

    def __init__(self, *, max_container_length: int = DEFAULT_MAX_CONTAINER_LENGTH) -> None:
        check_positive("max_container_length", max_container_length)
        self.max_container_length = max_container_length
        # adapter -> whether its type has JSON-only serialisation settings (see _json_mode).
        self._json_modes: dict[TypeAdapter[Any], bool] = {}
        # adapter -> the number check of its type (see number_checks.py), None if not checkable.
        self._checks: dict[TypeAdapter[Any], NumberCheck | None] = {}
        # adapter -> ormsgpack's default hook for its plain type, None when it is not plain.
        self._plains: dict[TypeAdapter[Any], Callable[[Any], Any] | None] = {}

    def _pack_plain(self, value: Any, adapter: TypeAdapter[Any]) -> bytes | None:
        """Pack straight from the models' fields (see :mod:`.plain_models`); None to take
        pydantic's path (not plain, a subclass instance, a NaN to locate, a 2**64 integer...)."""
        hook = _memoised(self._plains, adapter, _msgpack_hook)
        if hook is None:
            return None
        try:
            data: bytes = ormsgpack.packb(value, default=hook, option=_PACK_OPTIONS)
        except (ValueError, TypeError, ormsgpack.MsgpackEncodeError):
            return None
        if self.may_hide_non_finite(data) and walk(value, ints=False) is not None:
            return None
        return data

    def _json_mode(self, adapter: TypeAdapter[Any]) -> bool:
        """Whether ``adapter`` must dump in JSON mode to give what the JSON codec gives.

        Python mode is faster, but settings such as ``ser_json_timedelta="float"`` and
        serializers with ``when_used="json"`` only apply in JSON mode.
        """
        return _memoised(self._json_modes, adapter, _has_json_only_serialization)

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as MessagePack, through ``adapter`` when its type is known.

        ``options`` are pydantic dump options (``exclude_none``, ``include``...), applied with an
        adapter.

        Raises:
            EncodeError: the value holds a non-finite float or an integer past 64 bits (the
                message locates it), or a type that cannot be serialised.
        """
        opts = options or {}
        json_mode = adapter is not None and self._json_mode(adapter)
        if adapter is not None and not json_mode and opts.keys() <= {"by_alias"}:
            packed = self._pack_plain(value, adapter)
            if packed is not None:
                return packed
        try:
            if adapter is None:
                obj = value
            else:
                obj = adapter.dump_python(value, mode="json" if json_mode else "python", **opts)
            data: bytes = ormsgpack.packb(obj, default=_jsonable, option=_PACK_OPTIONS)
        except (ValueError, TypeError, ormsgpack.MsgpackEncodeError) as exc:
            # What ormsgpack refuses natively (non-str keys, a time with a timezone, a 2**64
            # integer) goes again through pydantic's JSON representation, like the JSON codec.
            try:
                if adapter is None:
                    obj = to_jsonable_python(value)
                else:
                    obj = adapter.dump_python(value, mode="json", **opts)
                found = walk(obj)
                if found is None:
                    data = ormsgpack.packb(obj, default=_jsonable, option=_PACK_OPTIONS)
            except (ValueError, TypeError, ormsgpack.MsgpackEncodeError) as again:
                raise EncodeError(
                    f"{MSGPACK_MEDIA_TYPES[0]}: cannot encode the value: {again}"
                ) from exc
            if found is not None:
                raise EncodeError(f"{MSGPACK_MEDIA_TYPES[0]}: {describe(found)}") from exc
        if self.may_hide_non_finite(data):
            found = walk(obj, ints=False)
            if found is not None:
                raise EncodeError(f"{MSGPACK_MEDIA_TYPES[0]}: {describe(found)}")
        return data

    @staticmethod
    def may_hide_non_finite(data: bytes) -> bool:
        """Whether ``data`` this codec encoded may hold a NaN or Infinity float.

        ormsgpack writes every float as a float64, and Python's non-finite floats have one bit
        pattern each (``nan``, ``-nan``, ``inf``, ``-inf``), so long needles find them fast.
        """
        if _F64_TAIL_INF not in data and _F64_TAIL_NAN not in data:
            return False
        return _contains_any(data, _F64_NON_FINITE)

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode MessagePack bytes into plain objects, or validate them into ``adapter``'s type.

        Raises:
            DecodeError: malformed MessagePack, a limit exceeded, or a non-finite float.
            pydantic.ValidationError: the data does not fit the type.
        """
        # msgpack's unpacker, never ormsgpack's: ormsgpack reads the declared length of a
        # container before its limits apply (a 5-byte body crashed ormsgpack 1.5 to 1.12), and
        # it ignores trailing bytes. The client's bytes go to the decoder exactly as sent.
        obj = self._unpack(data)
        if adapter is None:
            _refuse_non_finite(data, obj)
            return obj
        check = _memoised(self._checks, adapter, _number_check)
        if check is None:
            # The type lets numbers reach places its declaration does not show: screen the bytes.
            _refuse_non_finite(data, obj)
            return adapter.validate_python(obj)
        try:
            value = adapter.validate_python(obj)
        except ValidationError:
            _refuse_non_finite(data, obj)  # a 400 rather than the 422 it caused
            raise
        # The check sees every number the type keeps, the strings "nan" and "inf" pydantic reads
        # into float fields included. (MessagePack holds no integer past 64 bits; a non-finite
        # float under a key the type ignores is dropped with the key, as in JSON.)
        found = _run_check(check, value, big=False)
        if found is not None:
            raise DecodeError(f"Invalid MessagePack value at {describe(found)}")
        return value

    def _unpack(self, data: bytes) -> Any:
        """msgpack's unpacker, with every limit this codec documents."""
        limit = min(self.max_container_length, len(data))
        try:
            return msgpack.unpackb(
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
            raise DecodeError(
                f"Invalid MessagePack: nested deeper than {MSGPACK_MAX_DEPTH} levels"
            ) from None
        except UnicodeDecodeError:
            raise DecodeError("Invalid MessagePack: a string is not valid UTF-8") from None
        except OverflowError:  # a timestamp extension outside the years datetime holds
            raise DecodeError("Invalid MessagePack: a timestamp out of range") from None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise DecodeError(f"Invalid MessagePack: {_msgpack_reason(exc)}") from None


_PACK_OPTIONS: Final = ormsgpack.OPT_UTC_Z
_F64_TAIL_INF: Final = b"\xf0" + bytes(6)
_F64_TAIL_NAN: Final = b"\xf8" + bytes(6)
# 0xcb (float64) then nan, -nan, inf, -inf as Python produces them.
_F64_NON_FINITE: Final = tuple(
    b"\xcb" + bytes.fromhex(h) + bytes(6) for h in ("7ff8", "fff8", "7ff0", "fff0")
)


def _jsonable(value: Any) -> Any:
    """ormsgpack's fallback: pydantic's JSON form of types msgpack lacks (Decimal, timedelta)."""
    if isinstance(value, set | frozenset):
        return list(value)
    return to_jsonable_python(value)


def _msgpack_hook(adapter: TypeAdapter[Any]) -> Callable[[Any], Any] | None:
    plan = _plan_of(adapter)
    return plan.hook(_jsonable) if plan is not None else None


def _refuse_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"Invalid MessagePack: extension type {code} is not accepted")


def _refuse_non_finite(data: bytes, obj: Any) -> None:
    if _may_hold_non_finite(data):
        found = walk(obj)
        if found is not None:
            raise DecodeError(f"Invalid MessagePack value at {describe(found)}")


def _may_hold_non_finite(data: bytes) -> bool:
    # Any float64 with all exponent bits set (NaN with any payload, ±Infinity) starts
    # 0xcb 0x7f|0xff; a float32 one 0xca 0x7f|0xff. The walk confirms.
    # Single-byte searches run at memchr speed; most bodies hold no 0x7f or 0xff byte at all.
    return (b"\x7f" in data and (b"\xcb\x7f" in data or b"\xca\x7f" in data)) or (
        b"\xff" in data and (b"\xcb\xff" in data or b"\xca\xff" in data)
    )


def _msgpack_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, msgpack.FormatError):
        return "the bytes are not MessagePack (a reserved format byte)"
    if "incomplete" in text or "Unpack failed: error = -1" in text:
        return "the body is truncated"
    if "exceeds max" in text:
        return f"a container or string is longer than allowed ({text})"
    return text[:200]


def default_codecs() -> tuple[JSONCodec, MsgPackCodec]:
    """New instances of the built-in codecs, JSON first (the default)."""
    return JSONCodec(), MsgPackCodec()
