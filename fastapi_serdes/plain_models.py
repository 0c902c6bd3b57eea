"""Which values ormsgpack may pack straight from the model, giving pydantic's exact output.

ormsgpack can serialise a pydantic model from its ``__dict__`` (``OPT_SERIALIZE_PYDANTIC``) about
twice as fast as ``dump_python`` + pack. That is only the same output for *plain* models: no
aliases, serializers, computed or excluded fields, extra fields, root models, or ``Any`` — and
only when every instance is exactly its declared class (a subclass instance would leak its extra
fields, which pydantic leaves out). :func:`plain_checker` decides the first once per type and
returns a check for the second, which visits only the fields that hold models.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, PlainSerializer, RootModel, WrapSerializer

#: A check of one value: True when it can be packed natively.
Check = Callable[[Any], bool]

_SCALARS = (
    str,
    int,
    float,
    bool,
    bytes,
    type(None),
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
)


def _always(value: Any) -> bool:
    return True


class _NotPlainError(Exception):
    """The type cannot be packed natively with pydantic's output."""


def plain_checker(tp: Any) -> Check | None:
    """A runtime check for values of ``tp``, or None when ``tp`` is never plain."""
    try:
        return _compile(tp, {})
    except _NotPlainError:
        return None


def _compile(tp: Any, seen: dict[type, Check]) -> Check:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *metadata = typing.get_args(tp)
        if any(isinstance(m, PlainSerializer | WrapSerializer) for m in metadata):
            raise _NotPlainError
        return _compile(inner, seen)
    if origin is Literal:
        return _always
    if origin is None and isinstance(tp, type):
        if issubclass(tp, enum.Enum) or tp in _SCALARS:
            return _always
        if issubclass(tp, BaseModel):
            return _model(tp, seen)
        raise _NotPlainError
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _union([_compile(a, seen) for a in args], args)
    if origin in (list, set, frozenset, Sequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        if not args:
            raise _NotPlainError
        element = _compile(args[0], seen)
        if element is _always:
            return _always
        return lambda value: all(element(v) for v in value)
    if origin in (dict, Mapping) and len(args) == 2 and args[0] is str:
        item = _compile(args[1], seen)
        if item is _always:
            return _always
        return lambda value: all(item(v) for v in value.values())
    raise _NotPlainError


def _union(checks: list[Check], args: tuple[Any, ...]) -> Check:
    if all(c is _always for c in checks):
        return _always
    # A union holding models: the value's exact class picks the member check.
    by_class: dict[type, Check] = {}
    for arg, member_check in zip(args, checks, strict=True):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            by_class[arg] = member_check
        elif member_check is not _always:
            raise _NotPlainError  # a container of models inside a union: not worth the dispatch

    def check(value: Any) -> bool:
        member = by_class.get(type(value))
        if member is not None:
            return member(value)
        # Not one of the union's models: a scalar member (None...) is fine, another model is not.
        return not isinstance(value, BaseModel)

    return check


def _model(model: type[BaseModel], seen: dict[type, Check]) -> Check:
    if model in seen:
        return seen[model]
    decorators = model.__pydantic_decorators__
    if (
        issubclass(model, RootModel)
        or model.model_config.get("extra") == "allow"
        or model.model_config.get("alias_generator") is not None
        or model.model_computed_fields
        or decorators.field_serializers
        or decorators.model_serializers
    ):
        raise _NotPlainError
    fields: list[tuple[str, Check]] = []

    def check(value: Any) -> bool:
        if type(value) is not model:
            return False
        return all(field_check(getattr(value, name)) for name, field_check in fields)

    seen[model] = check  # recursive models refer to this check
    for name, info in model.model_fields.items():
        if info.alias or info.serialization_alias or info.exclude:
            raise _NotPlainError
        if any(isinstance(m, PlainSerializer | WrapSerializer) for m in info.metadata):
            raise _NotPlainError
        field_check = _compile(info.annotation, seen)
        if field_check is not _always:
            fields.append((name, field_check))
    return check
