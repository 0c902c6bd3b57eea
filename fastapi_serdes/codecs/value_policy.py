"""The value policy shared by the built-in codecs: which numbers cross the wire.

JSON (RFC 8259) has no NaN or Infinity, MessagePack has no integers past 64 bits, and the tools
in between alter them silently (pydantic writes NaN as ``null``; orjson reads
``18446744073709551616`` as a float). So the codecs refuse:

- non-finite floats (NaN, Infinity, -Infinity), in both codecs and both directions;
- integers outside ``[-2**63, 2**64 - 1]`` when decoding (both codecs) and when encoding
  MessagePack (it cannot represent them). JSON encodes them exactly, as pydantic writes them
  (documented: I-JSON readers lose precision past 2**53).

Checking every value would cost as much as encoding it, so the codecs first ask the encoded bytes
whether a bad number could hide in them (a ``"score":null`` in JSON for a float field, a float64
NaN bit pattern in MessagePack) and walk the data only then. The walk is iterative: depth never
raises ``RecursionError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, PlainSerializer, RootModel, WrapSerializer

from ..problems import json_pointer

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

INT_REASON = "integer outside the 64-bit range [-2**63, 2**64-1]"

#: Where a bad value sits and why: (location, reason).
Problem = tuple[tuple[str | int, ...], str]


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
        fields = {k: getattr(value, k, None) for k in type(value).model_fields}
        fields.update(value.model_extra or {})
        for name in type(value).model_computed_fields:
            fields[name] = getattr(value, name, None)
        return fields.items()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    return None


def walk(value: Any, *, ints: bool = True, str_keys: bool = False) -> Problem | None:
    """Find the first number outside the policy in ``value`` (containers, models, dataclasses).

    With ``ints=False`` only floats are checked; with ``str_keys=True`` a mapping key that is
    not a ``str`` is a problem too. Iterative, so any depth is fine.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        loc, item = stack.pop()
        reason = number_problem(item, ints=ints)
        if reason is not None:
            return loc, reason
        children = _children(item)
        if children is None:
            continue
        is_mapping = isinstance(item, Mapping)
        pending = []
        for key, child in children:
            if is_mapping and str_keys and not isinstance(key, str):
                return loc, f"map key {key!r} is not a string"
            pending.append(((*loc, key if isinstance(key, int) else str(key)), child))
        stack.extend(reversed(pending))  # depth-first, in document order
    return None


def describe(problem: Problem) -> str:
    """``/items/3/score: NaN is not a finite number``."""
    loc, reason = problem
    return f"{json_pointer(loc) or '/'}: {reason}"


def json_null_markers(tp: Any) -> tuple[bytes, ...] | None:
    """Byte patterns that betray a non-finite float in pydantic's JSON for type ``tp``.

    pydantic writes NaN and Infinity as ``null``. When every float of ``tp`` sits directly in a
    model field or computed field (``score: float`` or ``score: float | None``), a hidden one can
    only appear as ``"score":null``. Returns ``()`` when ``tp`` holds no float at all, and None
    when floats may sit elsewhere (lists, dicts, ``Any``, extra fields, root models): then any
    ``null`` calls for the walk. Keys are the serialization aliases, as ``by_alias`` writes them.
    """
    markers: set[bytes] = set()
    if not _collect_markers(tp, markers, set()):
        return None
    return tuple(sorted(markers))


_NO_FLOATS = (str, bytes, bytearray, bool, int, type(None))


def is_optional_float(ann: Any) -> bool:
    """Whether an annotation is ``float`` or ``float | None``."""
    if ann is float:
        return True
    if typing.get_origin(ann) in (Union, types.UnionType):
        return [a for a in typing.get_args(ann) if a is not type(None)] == [float]
    return False


def _collect_markers(tp: Any, markers: set[bytes], seen: set[type]) -> bool:
    """Add ``tp``'s markers; False when a float could appear outside a named field."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _collect_markers(typing.get_args(tp)[0], markers, seen)
    if origin is typing.Literal:
        return all(not isinstance(a, float) for a in typing.get_args(tp))
    if isinstance(tp, type) and origin is None:
        if tp is float or issubclass(tp, float):
            return False  # a bare float: written as a bare null
        if issubclass(tp, enum.Enum):
            return True
        if issubclass(tp, _NO_FLOATS) or not issubclass(tp, BaseModel):
            # str, int, datetime, UUID, Enum, Decimal...: never written as a float.
            return issubclass(tp, _NO_FLOATS) or tp.__module__ in ("datetime", "uuid", "decimal")
        if issubclass(tp, RootModel) or tp.model_config.get("extra") == "allow":
            return False
        if tp in seen:
            return True
        seen.add(tp)
        decorators = tp.__pydantic_decorators__
        if decorators.field_serializers or decorators.model_serializers:
            return False  # a serializer may move a float anywhere: any null is suspect
        for name, info in tp.model_fields.items():
            if any(isinstance(m, PlainSerializer | WrapSerializer) for m in info.metadata):
                return False
            if is_optional_float(info.annotation):
                # Written by field name or by alias, depending on by_alias: watch for both.
                for key in {name, info.serialization_alias or info.alias or name}:
                    markers.add(f'"{key}":null'.encode())
            elif not _collect_markers(info.annotation, markers, seen):
                return False
        for name, computed in tp.model_computed_fields.items():
            if is_optional_float(computed.return_type):
                for key in {name, computed.alias or name}:
                    markers.add(f'"{key}":null'.encode())
            elif not _collect_markers(computed.return_type, markers, seen):
                return False
        return True
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return all(_collect_markers(a, markers, seen) for a in args)
    if origin in (list, set, frozenset, Sequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        return bool(args) and _collect_markers(args[0], markers, seen)
    if origin in (dict, Mapping):
        return len(args) == 2 and _collect_markers(args[1], markers, seen)
    return False


_JSON_ONLY_CONFIG = {
    "ser_json_timedelta": "iso8601",
    "ser_json_temporal": "iso8601",
}
# Not listed: bytes settings (MessagePack carries bytes natively, the documented difference;
# a type that needs JSON mode for another reason gets its bytes as JSON text there) and
# ser_json_inf_nan (non-finite floats are refused anyway).


def has_json_only_serialization(schema: Any) -> bool:
    """Whether a pydantic core schema serialises differently in JSON mode than in Python mode.

    True when a ``ser_json_*`` setting differs from its default, or a serializer applies
    ``when_used="json"`` / ``"json-unless-none"``. Iterative; run once per type.
    """
    stack = [schema]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            config = node.get("config")
            if isinstance(config, Mapping) and any(
                config.get(key, default) != default for key, default in _JSON_ONLY_CONFIG.items()
            ):
                return True
            if node.get("when_used") in ("json", "json-unless-none"):
                return True
            stack.extend(v for v in node.values() if isinstance(v, Mapping | list | tuple))
        elif isinstance(node, list | tuple):
            stack.extend(v for v in node if isinstance(v, Mapping | list | tuple))
    return False
