"""Which values orjson and ormsgpack may write straight from the models' fields.

Both libraries are two to three times faster than pydantic's serializer when they get a model's
``__dict__`` (through their ``default`` hook). That is pydantic's exact output only for *plain*
models: no aliases, serializers, computed or excluded fields, extra fields, root models or
``Any``; and only when every instance is exactly one of the classes the declared type reaches (a
subclass instance would leak the fields pydantic leaves out).

:func:`plain_plan` decides the first once per type. The second needs no walk over the value: the
``default`` hook of :meth:`PlainPlan.hook` is called for every model instance anyway, and
refuses any class the type does not reach, which sends the whole value back to pydantic. The
hook also checks the float fields of each instance (NaN and Infinity are refused, see
:mod:`.policy`), so JSON needs no scan of its output for a hidden ``null``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, PlainSerializer, RootModel, WrapSerializer

from .value_policy import is_optional_float

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
#: Scalars the libraries do not write natively: the hook hands them to a converter.
_CONVERTED = (decimal.Decimal, datetime.timedelta, bytes, set, frozenset)


class NonFiniteFloatError(ValueError):
    """A float field holds NaN or Infinity: the caller takes the path that locates it."""


class _NotPlainError(Exception):
    """The type cannot be written natively with pydantic's output."""


@dataclass(frozen=True, slots=True)
class PlainPlan:
    """What the fast path needs to know about one plain type.

    Attributes:
        floats: every model class the type reaches, with the names of its fields declared
            ``float`` (or ``float | None``).
        loose_floats: whether a float may also sit elsewhere (``list[float]``, a bare
            ``float``): those are not checked by the hook.
        json_ok: whether orjson's output is pydantic's too: no model sets a ``ser_json_*``
            option or ``json_encoders``, and no ``datetime.time`` is reached (orjson writes
            some of their microseconds wrong).
    """

    floats: Mapping[type, tuple[str, ...]]
    loose_floats: bool
    json_ok: bool

    def hook(self, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """A ``default`` hook for orjson / ormsgpack.

        It returns a reached model's ``__dict__`` (after checking its float fields), gives the
        scalars listed in ``_CONVERTED`` to ``convert``, and raises ``TypeError`` for anything
        else (a subclass instance, a foreign model...), so the caller falls back to pydantic.
        """
        get = self.floats.get

        def default(obj: Any) -> Any:
            floats = get(type(obj))
            if floats is None:
                if isinstance(obj, _CONVERTED):
                    return convert(obj)
                raise TypeError(f"{type(obj).__name__} is not written natively")
            fields = obj.__dict__
            for name in floats:
                value = fields[name]
                if value is not None and value - value != 0:  # NaN or +-Infinity
                    raise NonFiniteFloatError(name)
            return fields

        return default


def plain_plan(tp: Any) -> PlainPlan | None:
    """The plan for values of ``tp``, or None when ``tp`` is never plain."""
    floats: dict[type, tuple[str, ...]] = {}
    state = {"loose": False, "json": True}
    try:
        _compile(tp, floats, state)
    except _NotPlainError:
        return None
    classes = list(floats)
    if any(a is not b and issubclass(a, b) for a in classes for b in classes):
        # A subclass instance in a field declared as its parent is written by pydantic with the
        # parent's fields only; the hook cannot tell where it stands.
        return None
    return PlainPlan(floats, state["loose"], state["json"])


def _compile(tp: Any, floats: dict[type, tuple[str, ...]], state: dict[str, bool]) -> None:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *metadata = typing.get_args(tp)
        if any(isinstance(m, PlainSerializer | WrapSerializer) for m in metadata):
            raise _NotPlainError
        _compile(inner, floats, state)
        return
    if origin is Literal:
        return
    if origin is None and isinstance(tp, type):
        if issubclass(tp, BaseModel):
            _model(tp, floats, state)
        elif issubclass(tp, float):
            state["loose"] = True
        elif issubclass(tp, datetime.time):
            # orjson 3.13 drops a zero from some microseconds (00:00:00.010000 -> .10000).
            state["json"] = False
        elif not (issubclass(tp, enum.Enum) or tp in _SCALARS):
            raise _NotPlainError
        return
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        for arg in args:
            _compile(arg, floats, state)
        return
    if origin in (list, set, frozenset, Sequence) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    ):
        if not args:
            raise _NotPlainError
        _compile(args[0], floats, state)
        return
    if origin in (dict, Mapping) and len(args) == 2 and args[0] is str:
        _compile(args[1], floats, state)
        return
    raise _NotPlainError


def _model(
    model: type[BaseModel], floats: dict[type, tuple[str, ...]], state: dict[str, bool]
) -> None:
    if model in floats:
        return
    decorators = model.__pydantic_decorators__
    config = model.model_config
    if (
        issubclass(model, RootModel)
        or config.get("extra") == "allow"
        or config.get("alias_generator") is not None
        or model.model_computed_fields
        or decorators.field_serializers
        or decorators.model_serializers
    ):
        raise _NotPlainError
    if config.get("json_encoders") or any(
        key.startswith("ser_json_") and value is not None for key, value in config.items()
    ):
        state["json"] = False
    floats[model] = ()  # recursive models find themselves here
    direct = []
    for name, info in model.model_fields.items():
        if (
            info.alias
            or info.serialization_alias
            or info.exclude
            or getattr(info, "exclude_if", None)
        ):
            raise _NotPlainError
        if any(isinstance(m, PlainSerializer | WrapSerializer) for m in info.metadata):
            raise _NotPlainError
        if is_optional_float(info.annotation):
            direct.append(name)
        else:
            _compile(info.annotation, floats, state)
    floats[model] = tuple(direct)
