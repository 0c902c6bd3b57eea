"""Which values ormsgpack may write straight from the models' fields.

ormsgpack is about twice as fast as pydantic's serializer when it gets a model's ``__dict__``
(through its ``default`` hook). That is pydantic's exact output only for *plain* models: no
aliases, serializers, computed or excluded fields, extra fields, root models or ``Any``; and only
when every instance is exactly one of the classes the declared type reaches (a subclass instance
would leak the fields pydantic leaves out).

:func:`plain_classes` decides the first once per type. The second needs no walk over the value:
the hook of :func:`plain_hook` is called for every model instance anyway, and refuses any class
the type does not reach, which sends the whole value back to pydantic. The number policy is the
caller's, on the bytes written (see :mod:`.value_policy`).
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
from pydantic.fields import FieldInfo

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
#: Values ormsgpack does not write natively: the hook hands them to a converter.
_CONVERTED = (decimal.Decimal, datetime.timedelta, set, frozenset)
_CONTAINERS = (list, set, frozenset, Sequence, tuple, dict, Mapping)
_MAPPINGS = (dict, Mapping)


class _NotPlainError(Exception):
    """The type cannot be written natively with pydantic's output."""


def plain_classes(tp: Any) -> frozenset[type] | None:
    """Every model class values of ``tp`` reach, or None when ``tp`` is never plain."""
    classes: set[type] = set()
    try:
        _visit(tp, classes)
    except _NotPlainError:
        return None
    if any(a is not b and issubclass(a, b) for a in classes for b in classes):
        # A subclass instance in a field declared as its parent is written by pydantic with the
        # parent's fields only; the hook cannot tell where it stands.
        return None
    return frozenset(classes)


def plain_hook(classes: frozenset[type], convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A ``default`` hook for ormsgpack: a reached model's ``__dict__``, ``convert`` for the
    values in ``_CONVERTED``, ``TypeError`` for anything else (so the caller takes pydantic's
    path)."""

    def default(obj: Any) -> Any:
        if type(obj) in classes:
            return obj.__dict__
        if isinstance(obj, _CONVERTED):
            return convert(obj)
        raise TypeError(f"{type(obj).__name__} is not written natively")

    return default


def _visit(tp: Any, classes: set[type]) -> None:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        if any(isinstance(m, PlainSerializer | WrapSerializer) for m in args[1:]):
            raise _NotPlainError
        _visit(args[0], classes)
    elif origin is None and isinstance(tp, type):
        _visit_class(tp, classes)
    elif origin in (Union, types.UnionType):
        for arg in args:
            _visit(arg, classes)
    elif origin is not Literal:
        _visit_container(origin, args, classes)


def _visit_container(origin: Any, args: tuple[Any, ...], classes: set[type]) -> None:
    if origin not in _CONTAINERS or not args:
        raise _NotPlainError
    if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
        raise _NotPlainError  # fixed-size tuples: left to pydantic
    if origin in _MAPPINGS and args[0] is not str:
        raise _NotPlainError
    _visit(args[1] if origin in _MAPPINGS else args[0], classes)


def _visit_class(tp: type, classes: set[type]) -> None:
    if issubclass(tp, BaseModel):
        _visit_model(tp, classes)
    elif not (issubclass(tp, enum.Enum) or tp in _SCALARS):
        raise _NotPlainError


def _visit_model(model: type[BaseModel], classes: set[type]) -> None:
    if model in classes:
        return  # recursive models find themselves here
    if not _writes_its_fields(model):
        raise _NotPlainError
    classes.add(model)
    for info in model.model_fields.values():
        if not _written_as_is(info):
            raise _NotPlainError
        _visit(info.annotation, classes)


def _writes_its_fields(model: type[BaseModel]) -> bool:
    """Whether pydantic writes ``model`` as its ``__dict__``, field by field."""
    decorators = model.__pydantic_decorators__
    config = model.model_config
    return not (
        issubclass(model, RootModel)
        or config.get("extra") == "allow"
        or config.get("alias_generator") is not None
        or model.model_computed_fields
        or decorators.field_serializers
        or decorators.model_serializers
    )


def _written_as_is(info: FieldInfo) -> bool:
    """Whether pydantic writes this field under its own name, with no serializer."""
    return not (
        info.alias
        or info.serialization_alias
        or info.exclude
        or getattr(info, "exclude_if", None)
        or any(isinstance(m, PlainSerializer | WrapSerializer) for m in info.metadata)
    )
