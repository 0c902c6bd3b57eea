"""The typing side of views: finding a model inside a response type, deriving view models,
and building pydantic ``include`` trees (for :mod:`fastapi_serdes.views`)."""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, create_model

Include = dict[str, Any]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _derived(model: type[BaseModel], suffix: str, fields: dict[str, Any]) -> Any:
    """A model named after ``model`` (with ``suffix``), with its config and these fields."""
    return create_model(
        f"{model.__name__}{suffix}",
        __config__=model.model_config,
        __doc__=model.__doc__,
        __module__=model.__module__,
        **fields,
    )


def members(model: Any) -> tuple[type[BaseModel], ...]:
    """The model classes of a model or a (possibly discriminated) union of models."""
    if typing.get_origin(model) is Annotated:
        return members(typing.get_args(model)[0])
    if typing.get_origin(model) in (Union, types.UnionType):
        return tuple(m for arg in typing.get_args(model) for m in members(arg))
    if _is_model(model):
        return (model,)
    raise TypeError(f"Views: {model!r} is not a pydantic model or a union of models")


def model_in(annotation: Any) -> tuple[type[BaseModel], ...] | None:
    """The models an annotation holds directly (``X``, ``X | None``, ``list[X]``...)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return model_in(typing.get_args(annotation)[0])
    if _is_model(annotation):
        return (annotation,)
    if origin is not None:
        found = [m for a in typing.get_args(annotation) for m in (model_in(a) or ())]
        return tuple(found) or None
    return None


def wrap_for(annotation: Any, inner: Include) -> Any:
    """An include entry for a field: nested dicts for models, ``__all__`` for collections."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return wrap_for(typing.get_args(annotation)[0], inner)
    if origin in (list, set, frozenset, tuple, Sequence, dict, Mapping):
        return {"__all__": inner}
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return wrap_for(args[0], inner)
    return inner


def fields_of(model: type[BaseModel]) -> dict[str, Any]:
    """Name -> annotation of what a model dumps: its fields and its ``@computed_field``s."""
    fields = {name: info.annotation for name, info in model.model_fields.items()}
    fields.update({name: c.return_type for name, c in model.model_computed_fields.items()})
    return fields


def field_names(models: Sequence[type[BaseModel]]) -> list[str]:
    """Field names (computed fields included) present in every member."""
    names = list(fields_of(models[0]))
    return [n for n in names if all(n in fields_of(m) for m in models[1:])]


def derive(models: Sequence[type[BaseModel]], include: Include, suffix: str) -> Any:
    """The documented view: a pydantic model (or union) with only the fields ``include`` selects."""
    derived = []
    for model in models:
        fields: dict[str, Any] = {}
        for name, sub in include.items():
            info = model.model_fields.get(name)
            annotation = fields_of(model)[name]
            if sub is not True:
                nested = model_in(annotation) or ()
                replacement = derive(nested, sub.get("__all__", sub), suffix)
                annotation = substitute(annotation, dict.fromkeys(nested, replacement))
            # A copy: create_model may set the annotation on the FieldInfo it is given (pydantic
            # 2.11 does), which would change the original model's field. A computed field is
            # documented as a required field of its return type (it is always dumped).
            fields[name] = (annotation, copy.copy(info) if info is not None else ...)
        derived.append(_derived(model, suffix, fields))
    return derived[0] if len(derived) == 1 else Union[tuple(derived)]  # noqa: UP007


def substitute(annotation: Any, mapping: Mapping[Any, Any]) -> Any:
    """``annotation`` with every type in ``mapping`` replaced (through lists, unions...)."""
    if annotation in mapping:
        return mapping[annotation]
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    args = typing.get_args(annotation)
    if origin is Annotated:
        return Annotated[(substitute(args[0], mapping), *annotation.__metadata__)]
    new_args = tuple(substitute(a, mapping) for a in args)
    if origin in (Union, types.UnionType):
        return Union[new_args]  # noqa: UP007
    return origin[new_args] if len(new_args) > 1 else origin[new_args[0]]


def locate(tp: Any, model: Any, include: Include | None) -> Include | None:
    """The include tree that applies ``include`` wherever ``model`` sits in ``tp``.

    Everything else in ``tp`` (an envelope's cursor, counts...) stays whole. None when
    ``model`` is not in ``tp``, or ``include`` is None (every field).
    """
    if tp == model:
        return include
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return locate(args[0], model, include)
    if _one_item_type(origin, args):
        inner = locate(args[0], model, include)
        return {"__all__": inner} if inner is not None else None
    if origin in (Union, types.UnionType):
        return next((x for a in args if (x := locate(a, model, include)) is not None), None)
    return _locate_in_fields(tp, model, include) if _is_model(tp) else None


def _one_item_type(origin: Any, args: tuple[Any, ...]) -> bool:
    """Whether a generic holds items of one type (``list[X]``, ``tuple[X, ...]``...)."""
    return origin in (list, set, frozenset, Sequence) or (origin is tuple and args[1:] == (...,))


def _locate_in_fields(tp: type[BaseModel], model: Any, include: Include | None) -> Include | None:
    """``locate`` in a model's fields: the fields without ``model`` are included whole."""
    found = {
        name: locate(info.annotation, model, include) for name, info in tp.model_fields.items()
    }
    if all(inner is None for inner in found.values()):
        return None
    return {name: True if inner is None else inner for name, inner in found.items()}


def replace(tp: Any, model: Any, view_model: Any, suffix: str, memo: dict[Any, Any]) -> Any:
    """``tp`` with ``model`` replaced by ``view_model``; envelopes become derived models."""
    if tp == model:
        return view_model
    if tp in memo:
        return memo[tp]
    if _is_model(tp):
        return _replace_in_fields(tp, model, view_model, suffix, memo)
    if typing.get_origin(tp) is None:
        return tp
    args = typing.get_args(tp)
    new_args = tuple(replace(a, model, view_model, suffix, memo) for a in args)
    if all(a is b for a, b in zip(args, new_args, strict=True)):
        return tp
    return substitute(tp, dict(zip(args, new_args, strict=True)))


def _replace_in_fields(
    tp: type[BaseModel], model: Any, view_model: Any, suffix: str, memo: dict[Any, Any]
) -> Any:
    """``replace`` in a model's fields: ``tp`` itself when none changed, else a derived model."""
    replaced = {
        name: (replace(info.annotation, model, view_model, suffix, memo), info)
        for name, info in tp.model_fields.items()
    }
    if all(new is info.annotation for new, info in replaced.values()):
        return tp
    # Copies of the FieldInfos: see derive().
    fields = {name: (new, copy.copy(info)) for name, (new, info) in replaced.items()}
    memo[tp] = _derived(tp, suffix, fields)
    return memo[tp]
