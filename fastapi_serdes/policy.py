"""The value policy shared by every codec: which numbers cross the wire.

JSON (RFC 8259) has no NaN or Infinity, MessagePack has no integers past 64 bits, and the tools
in between alter them silently (orjson and pydantic write NaN as ``null``; orjson reads
``18446744073709551616`` as a float). So both codecs refuse, in both directions:

- non-finite floats (NaN, Infinity, -Infinity);
- integers outside ``[-2**63, 2**64 - 1]``.

Checking every value of a response would cost as much as encoding it, so the check is compiled
once per type, when a route is built: it visits only the fields whose declared type can hold an
``int`` or a ``float`` and costs nothing for types that cannot. ``Any``, unions and plain
``dict``/``list`` fall back to a walk of the value.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel

from .problems import json_pointer

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

# A checker returns None when the value is acceptable, else (location, reason).
Problem = tuple[tuple[str | int, ...], str]
Checker = Callable[[Any], Problem | None]

_SCALARS_WITHOUT_NUMBERS = (str, bytes, bytearray, bool, type(None))


def number_problem(value: Any) -> str | None:
    """Why ``value`` breaks the number policy, or None when it is fine (or not a number)."""
    if type(value) is float:
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
    elif type(value) is int and not INT_MIN <= value <= INT_MAX:
        return "integer outside the 64-bit range [-2**63, 2**64-1]"
    return None


def walk(value: Any) -> Problem | None:
    """Check a value of unknown type by walking containers, models and dataclasses."""
    reason = number_problem(value)
    if reason is not None:
        return (), reason
    items: Any
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    elif isinstance(value, BaseModel):
        items = ((k, getattr(value, k, None)) for k in type(value).model_fields)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        return None
    for key, item in items:
        found = walk(item)
        if found is not None:
            return (key if isinstance(key, int) else str(key), *found[0]), found[1]
    return None


def _check_float(value: Any) -> Problem | None:
    if type(value) is float and not math.isfinite(value):
        return (), f"{value!r} is not a finite number"
    return None


def _check_int(value: Any) -> Problem | None:
    if type(value) is int and not INT_MIN <= value <= INT_MAX:
        return (), "integer outside the 64-bit range [-2**63, 2**64-1]"
    return None


def _sequence_checker(inner: Checker) -> Checker:
    def check(value: Any) -> Problem | None:
        if isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes):
            for i, item in enumerate(value):
                found = inner(item)
                if found is not None:
                    return (i, *found[0]), found[1]
            return None
        return walk(value)

    return check


def _mapping_checker(inner: Checker) -> Checker:
    def check(value: Any) -> Problem | None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                found = inner(item)
                if found is not None:
                    return (str(key), *found[0]), found[1]
            return None
        return walk(value)

    return check


def _model_checker(fields: list[tuple[str, Checker]]) -> Checker:
    def check(value: Any) -> Problem | None:
        if not isinstance(value, BaseModel):
            return walk(value)
        for name, inner in fields:
            found = inner(getattr(value, name, None))
            if found is not None:
                return (name, *found[0]), found[1]
        return None

    return check


def compile_checker(tp: Any, *, ints: bool = True) -> Checker | None:
    """A checker for values of type ``tp``, or None when ``tp`` cannot hold a bad number.

    With ``ints=False`` only floats are checked: integer fields are not visited at all.
    """
    return _compile(tp, {}, ints)


def _compile(tp: Any, seen: dict[Any, Checker | None], ints: bool) -> Checker | None:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _compile(typing.get_args(tp)[0], seen, ints)
    if tp is float:
        return _check_float
    if tp is int:
        return _check_int if ints else None
    if tp is Any or tp is object:
        return walk
    if origin is None and isinstance(tp, type):
        if issubclass(tp, _SCALARS_WITHOUT_NUMBERS) or issubclass(tp, enum.Enum):
            return None
        if issubclass(tp, BaseModel):
            if tp in seen:
                # A recursive model: defer to the generic walk for the nested occurrence.
                return seen[tp] or walk
            seen[tp] = None
            fields = []
            for name, info in tp.model_fields.items():
                inner = _compile(info.annotation, seen, ints)
                if inner is not None:
                    fields.append((name, inner))
            checker = _model_checker(fields) if fields else None
            seen[tp] = checker
            return checker
        if issubclass(tp, int | float):
            if issubclass(tp, int):
                return _check_int if ints else None
            return _check_float
        if tp in (list, tuple, set, frozenset, dict) or dataclasses.is_dataclass(tp):
            return walk
        # datetime, UUID, Decimal, Path...: not numbers we police.
        return None
    if origin is Literal:
        return None
    if origin in (Union, types.UnionType):
        members = [
            c for c in (_compile(a, seen, ints) for a in typing.get_args(tp)) if c is not None
        ]
        if not members:
            return None
        return members[0] if len(members) == 1 else walk
    args = typing.get_args(tp)
    if origin in (list, set, frozenset, Sequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        inner_checker = _compile(args[0], seen, ints) if args else walk
        return _sequence_checker(inner_checker) if inner_checker is not None else None
    if origin in (dict, Mapping):
        inner_checker = _compile(args[1], seen, ints) if len(args) == 2 else walk
        return _mapping_checker(inner_checker) if inner_checker is not None else None
    return walk


def describe(problem: Problem) -> str:
    """``/items/3/score: nan is not a finite number``."""
    loc, reason = problem
    return f"{json_pointer(loc) or '/'}: {reason}"


def json_null_markers(tp: Any) -> tuple[bytes, ...] | None:
    """Byte patterns that betray a non-finite float in pydantic's JSON for type ``tp``.

    pydantic writes NaN and Infinity as ``null``. When every float of ``tp`` sits directly in a
    model field (``score: float`` or ``score: float | None``), a hidden one can only appear as
    ``"score":null``, so the policy check is needed only when such a pattern is in the output.
    Returns ``()`` when ``tp`` holds no float at all, and None when floats sit elsewhere (in
    lists, dicts, ``Any``): then any ``null`` calls for the check.
    """
    markers: set[bytes] = set()
    if not _collect_markers(tp, markers, set()):
        return None
    return tuple(sorted(markers))


def _collect_markers(tp: Any, markers: set[bytes], seen: set[type]) -> bool:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _collect_markers(typing.get_args(tp)[0], markers, seen)
    if compile_checker(tp, ints=False) is None:
        return True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return True
        seen.add(tp)
        for name, info in tp.model_fields.items():
            ann = info.annotation
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if ann is float or (
                typing.get_origin(ann) in (Union, types.UnionType) and args == [float]
            ):
                key = info.serialization_alias or info.alias or name
                markers.add(f'"{key}":null'.encode())
            elif not _collect_markers(ann, markers, seen):
                return False
        return True
    targs = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return all(_collect_markers(a, markers, seen) for a in targs)
    if origin in (list, set, frozenset, Sequence) or (
        origin is tuple and len(targs) == 2 and targs[1] is Ellipsis
    ):
        return bool(targs) and _collect_markers(targs[0], markers, seen)
    if origin in (dict, Mapping):
        # Floats as dict values would be bare nulls; models as values keep their markers.
        return len(targs) == 2 and _collect_markers(targs[1], markers, seen)
    return False
