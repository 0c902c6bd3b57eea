"""The number policy of the built-in codecs, and the one walk that enforces it.

JSON (RFC 8259) has no NaN or Infinity, MessagePack has no integers past 64 bits, and the tools
in between alter them silently (pydantic writes NaN as ``null``; orjson reads
``18446744073709551616`` as a float). So the codecs refuse:

- non-finite floats (NaN, Infinity, -Infinity), in both codecs and both directions;
- integers outside ``[-2**63, 2**64 - 1]`` when decoding (both codecs) and when encoding
  MessagePack (it cannot represent them). JSON encodes them exactly, as pydantic writes them.

One function decides and locates: :func:`walk`, over plain data, models and dataclasses
(iterative: depth never raises ``RecursionError``). Walking every value in Python would cost more
than the encoding itself, so :func:`find_bad_number` looks at MessagePack first: the client's
bytes (:func:`msgpack_may_hold_non_finite`), or the value packed by ormsgpack, which visits every
value in C, refuses every integer past 64 bits and writes every float as eight bytes that show
a non-finite one (:func:`looks_clean`). The walk runs only when the look cannot rule one out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Final

import ormsgpack
from pydantic import BaseModel

from ..problems import json_pointer

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

INT_REASON: Final = "integer outside the 64-bit range [-2**63, 2**64-1]"

#: Where a bad value sits and why: (location, reason).
Problem = tuple[tuple[str | int, ...], str]

_MISSING: Final = object()
# ormsgpack as the policy's first look, non-str keys allowed. Models go through the default
# hook: ormsgpack 1.13's OPT_SERIALIZE_PYDANTIC panics (aborts the process) on some of them.
_LOOK_OPTIONS: Final = ormsgpack.OPT_NON_STR_KEYS


def number_problem(value: Any, *, ints: bool = True) -> str | None:
    """Why ``value`` breaks the number policy, or None when it is fine (or not a number)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            name = "NaN" if math.isnan(value) else ("-infinity" if value < 0 else "infinity")
            return f"{name} is not a finite number"
    elif (
        ints
        and isinstance(value, int)
        and not isinstance(value, bool)
        and not INT_MIN <= value <= INT_MAX
    ):
        return INT_REASON
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
    """Whether MessagePack ``data`` may hold a NaN or an infinity.

    Every such float (any NaN payload, either sign) is a float64 (``0xcb``) or float32 (``0xca``)
    whose next byte is ``0x7f`` or ``0xff``. Single-byte searches run at memchr speed, and most
    bodies hold no ``0x7f`` or ``0xff`` byte at all; a hit is only a reason to walk.
    """
    return (b"\x7f" in data and (b"\xcb\x7f" in data or b"\xca\x7f" in data)) or (
        b"\xff" in data and (b"\xcb\xff" in data or b"\xca\xff" in data)
    )


def packed_may_hold_non_finite(data: bytes) -> bool:
    """Whether MessagePack that ormsgpack wrote from Python values may hold a NaN or an
    infinity: ormsgpack writes every float as a float64, and Python's ``nan``, ``-nan``, ``inf``
    and ``-inf`` have one bit pattern each, so two 7-byte searches (about 2.5x faster than the
    two-byte ones of :func:`msgpack_may_hold_non_finite`) rule them out. A NaN with another
    payload (from ``struct`` or NumPy, never from Python's arithmetic) is not among them."""
    if _F64_TAIL_INF not in data and _F64_TAIL_NAN not in data:
        return False
    return any(pattern in data for pattern in _F64_NON_FINITE)


_F64_TAIL_INF: Final = b"\xf0" + bytes(6)
_F64_TAIL_NAN: Final = b"\xf8" + bytes(6)
# 0xcb (float64) then nan, -nan, inf, -inf as Python produces them.
_F64_NON_FINITE: Final = tuple(
    b"\xcb" + bytes.fromhex(h) + bytes(6) for h in ("7ff8", "fff8", "7ff0", "fff0")
)


def find_bad_number(
    value: Any, *, ints: bool = True, packed: bytes | None = None
) -> Problem | None:
    """:func:`walk`, when a look at ``value`` in MessagePack cannot rule a bad number out.

    ``packed`` is ``value`` as the client sent it in MessagePack (any NaN payload is looked
    for); without it, ormsgpack packs ``value`` for the look (:func:`looks_clean`).
    """
    clean = looks_clean(value) if packed is None else not msgpack_may_hold_non_finite(packed)
    return None if clean else walk(value, ints=ints)


def looks_clean(value: Any) -> bool:
    """Whether ormsgpack's look rules out a number outside the policy anywhere :func:`walk`
    would go in ``value``. False is only a reason to walk."""
    try:
        packed = ormsgpack.packb(value, default=_look_into, option=_LOOK_OPTIONS)
    except (TypeError, ValueError, ormsgpack.MsgpackEncodeError):
        return False  # an integer past 64 bits, or a value ormsgpack cannot look into
    return not packed_may_hold_non_finite(packed)


def _look_into(value: Any) -> Any:
    """What ormsgpack should look at where :func:`walk` would: a model's fields (extra and
    computed ones included), a set's or a mapping's items, a number of a subclass; nothing else
    (a Decimal, a UUID... holds no float the walk would see)."""
    if isinstance(value, BaseModel):
        return _model_items(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return dict(value) if isinstance(value, Mapping) else None


def problem_in_validated(value: Any, in_body: Problem | None) -> Problem | None:
    """The problem a validated ``value`` keeps: ``in_body`` (found in the decoded body) unless the
    type dropped it with its key, else one its validators made (``"nan"`` read into a float)."""
    if in_body is not None and _holds(value, in_body[0]):
        return in_body
    return find_bad_number(value)


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
