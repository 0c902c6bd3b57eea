"""The number policy of the built-in codecs (``docs/explanation/value-policy.md``).

Refused: non-finite floats, in both codecs and both directions; integers outside
``[-2**63, 2**64 - 1]`` when decoding, and when encoding MessagePack (JSON writes them exactly).

:func:`walk` decides and locates, iteratively. Walking every value in Python costs more than the
encoding, so :func:`find_bad_number` first looks at the value as MessagePack (the client's bytes,
or ormsgpack's packing: it refuses integers past 64 bits and writes floats as eight bytes that
show a non-finite one); the walk runs only when that look cannot rule one out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import ormsgpack
from pydantic import BaseModel, ValidationError

from ..problems import DecodeError, json_pointer

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

INT_REASON: Final = "integer outside the 64-bit range [-2**63, 2**64-1]"

#: Where a bad value sits and why: (location, reason).
Problem = tuple[tuple[str | int, ...], str]

_MISSING: Final = object()
_F64_TAIL_INF: Final = b"\xf0" + bytes(6)
_F64_TAIL_NAN: Final = b"\xf8" + bytes(6)
# 0xcb (float64) then nan, -nan, inf, -inf as Python produces them.
_F64_NON_FINITE: Final = tuple(
    b"\xcb" + bytes.fromhex(h) + bytes(6) for h in ("7ff8", "fff8", "7ff0", "fff0")
)


def number_problem(value: Any, *, ints: bool = True) -> str | None:
    """Why ``value`` breaks the number policy, or None when it is fine (or not a number)."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("-infinity" if value < 0 else "infinity")
        return f"{name} is not a finite number"
    if ints and isinstance(value, int) and not isinstance(value, bool):
        return None if INT_MIN <= value <= INT_MAX else INT_REASON
    return None


def _children(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value.items()
    if isinstance(value, list | tuple | set | frozenset):
        return enumerate(value)
    if isinstance(value, BaseModel):
        return _model_items(value).items()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    return None


def _model_items(model: BaseModel) -> dict[str, Any]:
    """A model's fields, extra fields and computed fields, by name."""
    items = dict(model.__dict__)
    items.update(getattr(model, "__pydantic_extra__", None) or {})
    for name in type(model).model_computed_fields:
        items[name] = getattr(model, name, None)
    return items


def walk(value: Any, *, ints: bool = True) -> Problem | None:
    """The first number outside the policy in ``value`` (containers, models, dataclasses), in
    document order, or None. With ``ints=False`` only floats are checked."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        loc, item = stack.pop()
        reason = number_problem(item, ints=ints)
        if reason is not None:
            return loc, reason
        children = _children(item)
        if children is not None:
            pending = [((*loc, k if isinstance(k, int) else str(k)), v) for k, v in children]
            stack.extend(reversed(pending))  # depth-first, in document order
    return None


def msgpack_may_hold_non_finite(data: bytes) -> bool:
    """Whether MessagePack ``data`` may hold a NaN or an infinity: a float64 (``0xcb``) or
    float32 (``0xca``) whose next byte is ``0x7f`` or ``0xff``. The single-byte searches run at
    memchr speed and most bodies hold neither byte."""
    return (b"\x7f" in data and (b"\xcb\x7f" in data or b"\xca\x7f" in data)) or (
        b"\xff" in data and (b"\xcb\xff" in data or b"\xca\xff" in data)
    )


def packed_may_hold_non_finite(data: bytes) -> bool:
    """Whether MessagePack that ormsgpack wrote may hold Python's ``nan``, ``-nan``, ``inf`` or
    ``-inf``: it writes every float as a float64, and each has one bit pattern, so two 7-byte
    searches (faster than :func:`msgpack_may_hold_non_finite`) rule them out."""
    if _F64_TAIL_INF not in data and _F64_TAIL_NAN not in data:
        return False
    return any(pattern in data for pattern in _F64_NON_FINITE)


def find_bad_number(
    value: Any, *, ints: bool = True, packed: bytes | None = None
) -> Problem | None:
    """:func:`walk`, when a look at ``value`` as MessagePack cannot rule a bad number out:
    ``packed``, the client's bytes for it, or else ``value`` packed by ormsgpack."""
    if packed is None:
        try:
            # Models go through the hook: ormsgpack 1.13's OPT_SERIALIZE_PYDANTIC panics
            # (aborts the process) on some of them.
            look = ormsgpack.packb(value, default=_look_into, option=ormsgpack.OPT_NON_STR_KEYS)
        except (TypeError, ValueError, ormsgpack.MsgpackEncodeError):
            return walk(value, ints=ints)  # an integer past 64 bits, or a value it cannot look into
        clean = not packed_may_hold_non_finite(look)
    else:
        clean = not msgpack_may_hold_non_finite(packed)
    return None if clean else walk(value, ints=ints)


def _look_into(value: Any) -> Any:
    """What ormsgpack should look at where :func:`walk` would (a Decimal, a UUID... holds no
    float the walk would see)."""
    if isinstance(value, BaseModel):
        return _model_items(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return dict(value) if isinstance(value, Mapping) else None


def validated(
    obj: Any, found: Problem | None, validate: Callable[[], Any] | None, what: str
) -> Any:
    """The decoded ``obj``, or ``validate()``'s value, under the policy: ``DecodeError`` (``what``
    then the location) for ``found``, the bad number in the body, unless the type dropped it
    with its key, or for one the type's validators made (``"nan"`` read into a float)."""
    if validate is not None:
        try:
            obj = validate()
        except ValidationError:
            _refuse(found, what)  # a 400 rather than the 422 it caused
            raise
        if found is None or not _holds(obj, found[0]):
            found = find_bad_number(obj)
    _refuse(found, what)
    return obj


def _refuse(found: Problem | None, what: str) -> None:
    if found is not None:
        raise DecodeError(f"{what} at {describe(found)}")


def _holds(value: Any, loc: tuple[str | int, ...]) -> bool:
    """Whether the body location ``loc`` is still in the validated ``value``."""
    for key in loc:
        if isinstance(value, BaseModel):
            value = _member(value, key)
        elif isinstance(value, Mapping):
            value = value.get(key, _MISSING)
        elif isinstance(value, list | tuple) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return True  # a scalar stands there (an after-validator's own type, say)
        if value is _MISSING:
            return False
    return True


def _member(model: BaseModel, key: str | int) -> Any:
    """The field of ``model`` a body key names (by name or alias), its extra value, or
    ``_MISSING`` (a key the model ignores)."""
    for name, info in type(model).model_fields.items():
        if key in (name, info.alias, info.validation_alias):
            return getattr(model, name)
    return (model.model_extra or {}).get(str(key), _MISSING)


def describe(problem: Problem) -> str:
    """``/items/3/score: NaN is not a finite number``."""
    loc, reason = problem
    return f"{json_pointer(loc) or '/'}: {reason}"
