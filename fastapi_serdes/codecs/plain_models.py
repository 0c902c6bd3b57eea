"""Which values ormsgpack may write straight from the models' fields.

ormsgpack is about twice as fast as pydantic's serializer when it gets a model's ``__dict__``
(through its ``default`` hook). That is pydantic's exact output only for *plain* models (no
aliases, serializers, computed, excluded or extra fields, root models or ``Any``) and only when
every instance is exactly one of the classes the declared type reaches: a subclass instance would
leak the fields pydantic leaves out. :func:`plain_classes` decides the first once per type; the
hook of :func:`plain_hook` refuses any other class, which sends the whole value back to pydantic.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import BaseModel, PlainSerializer, RootModel, WrapSerializer
from pydantic.fields import FieldInfo

_SCALARS = (
    str,
    int,
    float,
    bool,
    bytes,
    type(None),
    datetime,
    date,
    time,
    timedelta,
    UUID,
    Decimal,
)
#: Values ormsgpack does not write natively: the hook hands them to a converter.
_CONVERTED = (Decimal, timedelta, set, frozenset)
_CONTAINERS = (list, set, frozenset, Sequence, tuple, dict, Mapping)
_MAPPINGS = (dict, Mapping)


def plain_classes(tp: Any) -> frozenset[type] | None:
    """Every model class values of ``tp`` reach, or None when ``tp`` is never plain."""
    classes: set[type] = set()
    if not _visit(tp, classes):
        return None
    if any(a is not b and issubclass(a, b) for a in classes for b in classes):
        # A subclass instance in a field declared as its parent is written by pydantic with the
        # parent's fields only; the hook cannot tell where it stands.
        return None
    return frozenset(classes)


def plain_hook(tp: Any, convert: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """A ``default`` hook for ormsgpack writing values of ``tp``: a reached model's ``__dict__``,
    ``convert`` for the values in ``_CONVERTED``, ``TypeError`` for anything else (so the caller
    takes pydantic's path); None when ``tp`` is never plain."""
    classes = plain_classes(tp)
    if classes is None:
        return None

    def default(obj: Any) -> Any:
        if type(obj) in classes:
            return obj.__dict__
        if isinstance(obj, _CONVERTED):
            return convert(obj)
        raise TypeError(f"{type(obj).__name__} is not written natively")

    return default


def _visit(tp: Any, classes: set[type]) -> bool:
    """Whether values of ``tp`` may be plain; adds the model classes they reach to ``classes``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return not any(map(_is_serializer, args[1:])) and _visit(args[0], classes)
    if origin in (Union, types.UnionType):
        return all(_visit(arg, classes) for arg in args)
    if origin is Literal:
        return True
    if origin is None:
        return isinstance(tp, type) and _visit_class(tp, classes)
    return _visit_container(origin, args, classes)


def _visit_container(origin: Any, args: tuple[Any, ...], classes: set[type]) -> bool:
    if origin not in _CONTAINERS or not args:
        return False
    if origin is tuple:  # tuple[X, ...] only: fixed-size tuples are left to pydantic
        return len(args) == 2 and args[1] is Ellipsis and _visit(args[0], classes)
    if origin in _MAPPINGS:
        return args[0] is str and _visit(args[1], classes)
    return _visit(args[0], classes)


def _visit_class(tp: type, classes: set[type]) -> bool:
    if not issubclass(tp, BaseModel):
        return issubclass(tp, enum.Enum) or tp in _SCALARS
    if tp in classes:
        return True  # recursive models find themselves here
    classes.add(tp)
    return _writes_its_fields(tp) and all(
        _written_as_is(info) and _visit(info.annotation, classes)
        for info in tp.model_fields.values()
    )


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
        or any(map(_is_serializer, info.metadata))
    )


def _is_serializer(metadata: Any) -> bool:
    return isinstance(metadata, PlainSerializer | WrapSerializer)
