"""Type-directed checks of the number policy on values pydantic has validated from JSON.

pydantic-core validates JSON straight from the bytes, and reads ``NaN``, ``Infinity``, ``1e400``
(as infinity) and integers of any size. Screening the body for them costs a translation of every
byte and several substring searches, about a sixth of a medium POST. For a *checkable* type the
JSON codec validates first and checks the result instead: the number fields of the validated
value, found from the declared type, are few and cheap to compare.

A type is checkable when every place a number can reach is known from its declaration: models
(fields by name, any alias), ``list`` / ``set`` / ``frozenset`` / ``tuple[X, ...]`` /
``Sequence``, ``dict[str, X]``, ``Optional`` and unions whose members differ by runtime type,
and scalars. Not checkable, so the byte screen stays: ``Any``, ``Decimal``, root models,
dataclasses, typed dicts, models with ``extra="allow"``, and anything a *before*, *wrap* or
*plain* validator or a custom core schema could feed from raw input. A check then answers:

- an ``int`` outside ``[-2**63, 2**64 - 1]``: a problem (it came from a larger integer literal, or
  from a float such as ``1e20`` read into an ``int`` field);
- a non-finite ``float``: a problem (``1e400`` or a ``NaN`` / ``Infinity`` literal);
- a ``float`` of magnitude ``2**63`` or more, only when ``big`` is true: *perhaps* an integer
  literal past 64 bits read as a float, which only the bytes can tell (the caller looks).

The check is generated Python source, compiled once per type (:func:`number_check`), so a list
of a hundred models costs a loop and a few comparisons per model.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import itertools
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Union

from pydantic import AnyUrl, BaseModel, RootModel
from pydantic.functional_validators import (
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    WrapValidator,
)

from .value_policy import INT_MAX, INT_MIN, INT_REASON, Problem, number_problem

#: ``check(value, big)``: the first number of a validated value outside the policy, or None.
NumberCheck = Callable[[Any, bool], Problem | None]

BIG_FLOAT_REASON = "a float of magnitude 2**63 or more (perhaps an integer past 64 bits)"
_BIG = float(2**63)
# CPython stores ints in this range in one 30-bit digit, and compares such ints fastest.
_SMALL_MIN: Final = -(2**30)
_SMALL_MAX: Final = 2**30 - 1

# Types a number in the body can never silently become: pydantic either refuses the number
# (422) or the type holds no number. Checked before int (bool and IntEnum subclass int).
_NO_NUMBERS: tuple[type, ...] = (
    str,
    bytes,
    bool,
    type(None),
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    enum.Enum,
    AnyUrl,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)
_RAW_INPUT_VALIDATORS = (BeforeValidator, WrapValidator, PlainValidator)
_SEQUENCES = {list: list, Sequence: list, set: set, frozenset: frozenset, tuple: tuple}


class _NotCheckableError(Exception):
    """The type lets a number reach a place its declaration does not show."""


# A node says which numbers a value of some declared type may hold:
#   ("int",) ("float",)              a number of that type
#   ("model", cls)                   the number fields of a model
#   ("seq", node) ("map", node)      every item / every value
#   ("opt", node)                    None, or node
#   ("union", ((runtime type, node), ...))  dispatch on the value's exact type
Node = tuple[Any, ...]


def number_check(tp: Any) -> NumberCheck | None:
    """The compiled check for validated values of ``tp``; None when ``tp`` is not checkable.

    A type without any number gets a check that answers None at once.
    """
    models: dict[type[BaseModel], list[tuple[str, Node]]] = {}
    try:
        node = _node(tp, models)
    except _NotCheckableError:
        return None
    live = _live_models(models)
    return _Generator(models, live).compile(node)


def _node(tp: Any, models: dict[type[BaseModel], list[tuple[str, Node]]]) -> Node | None:
    """The node for declared type ``tp``; None when it holds no number."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *metadata = typing.get_args(tp)
        _refuse_raw_validators(metadata)
        return _node(inner, models)
    if origin is Literal:
        return None
    if origin is None and isinstance(tp, type):
        if issubclass(tp, _NO_NUMBERS):
            return None
        if issubclass(tp, int):
            return ("int",)
        if issubclass(tp, float):
            return ("float",)
        if issubclass(tp, BaseModel):
            _model(tp, models)
            return ("model", tp)
        raise _NotCheckableError  # Any, Decimal, dataclasses, typed dicts, unknown classes
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _union(args, models)
    if origin in _SEQUENCES and args and (origin is not tuple or _is_variadic(args)):
        inner = _node(args[0], models)
        return None if inner is None else ("seq", inner)
    if origin in (dict, Mapping) and len(args) == 2 and args[0] is str:
        inner = _node(args[1], models)
        return None if inner is None else ("map", inner)
    raise _NotCheckableError  # fixed tuples, other generics, forward references...


def _is_variadic(args: tuple[Any, ...]) -> bool:
    return len(args) == 2 and args[1] is Ellipsis


def _union(args: tuple[Any, ...], models: dict[type[BaseModel], list[tuple[str, Node]]]) -> Node:
    branches: dict[type, Node] = {}
    number_free: set[Any] = set()  # containers without numbers: list[str] -> list
    optional = False
    for arg in args:
        if arg is type(None):
            optional = True
            continue
        node = _node(arg, models)
        if node is None:
            number_free.add(_SEQUENCES.get(_origin(arg), dict))
            continue
        runtime = _runtime_type(arg, node)
        if runtime in branches and branches[runtime] != node:
            raise _NotCheckableError  # list[int] | list[float]: the value does not say which
        branches[runtime] = node
    if number_free & branches.keys():
        raise _NotCheckableError  # list[int] | list[str]
    if not branches:
        return ("opt", None) if optional else ("union", ())
    if len(args) - optional == 1:  # X | None: no dispatch needed
        node = next(iter(branches.values()))
        return ("opt", node) if optional else node
    return ("union", tuple(branches.items()))


def _origin(tp: Any) -> Any:
    """``list`` for ``list[str]`` and ``Annotated[list[str], ...]``; None for a scalar."""
    origin = typing.get_origin(tp)
    return _origin(typing.get_args(tp)[0]) if origin is Annotated else origin


def _runtime_type(arg: Any, node: Node) -> type:
    """The exact type a validated value of member ``arg`` has."""
    kind = node[0]
    if kind == "int":
        return int
    if kind == "float":
        return float
    if kind == "model":
        model: type = node[1]
        return model
    if kind == "map":
        return dict
    origin = typing.get_origin(arg)
    if origin is Annotated:
        return _runtime_type(typing.get_args(arg)[0], node)
    return _SEQUENCES[origin]


def _refuse_raw_validators(metadata: Sequence[Any]) -> None:
    for item in metadata:
        if isinstance(item, AfterValidator):
            continue  # sees the validated value, as the check does
        if isinstance(item, _RAW_INPUT_VALIDATORS) or hasattr(item, "__get_pydantic_core_schema__"):
            raise _NotCheckableError


def _model(model: type[BaseModel], models: dict[type[BaseModel], list[tuple[str, Node]]]) -> None:
    if model in models:
        return
    decorators = model.__pydantic_decorators__
    if (
        issubclass(model, RootModel)
        or model.model_config.get("extra") == "allow"
        or decorators.validators  # pydantic v1-style @validator (may be pre=True)
        or decorators.root_validators
        or any(d.info.mode != "after" for d in decorators.field_validators.values())
        or any(d.info.mode != "after" for d in decorators.model_validators.values())
        or "__get_pydantic_core_schema__" in vars(model)
    ):
        raise _NotCheckableError
    models[model] = []  # a recursive model finds itself here
    fields = []
    for name, info in model.model_fields.items():
        _refuse_raw_validators(info.metadata)
        node = _node(info.annotation, models)
        if node is None:
            continue
        if info.default is None and node[0] != "opt":
            node = ("opt", node)  # `x: int = None`: pydantic keeps the default unvalidated
        fields.append((name, node))
    models[model] = fields


def _live_models(models: Mapping[type[BaseModel], list[tuple[str, Node]]]) -> set[type]:
    """The models that may hold a number somewhere below them (a fixpoint over cycles)."""
    live: set[type] = set()
    changed = True
    while changed:
        changed = False
        for model, fields in models.items():
            if model not in live and any(_is_live(node, live) for _, node in fields):
                live.add(model)
                changed = True
    return live


def _is_live(node: Node | None, live: set[type]) -> bool:
    if node is None:
        return False
    kind = node[0]
    if kind in ("int", "float"):
        return True
    if kind == "model":
        return node[1] in live
    if kind == "union":
        return any(_is_live(branch, live) for _, branch in node[1])
    return _is_live(node[1], live)


def _index(container: Any, item: Any) -> int:
    """Where ``item`` (this very object) sits in ``container``: the location of a problem."""
    return next(i for i, other in enumerate(container) if other is item)


# The constants the generated functions read, bound as defaults: local loads are the cheapest.
_LOCALS = "_BIG=_BIG, _NBIG=_NBIG, _INT=_INT, _float=_float, _index=_index"


def _float_reason(value: float, big: bool) -> str | None:
    """Why a float outside (-2**63, 2**63) is a problem, or None (``big`` false, finite)."""
    reason = number_problem(value, ints=False)
    if reason is not None:
        return reason
    return BIG_FLOAT_REASON if big else None


class _Generator:
    """Writes one function per checked type; models are inlined except where they recur."""

    _INLINE_DEPTH = 4

    def __init__(self, models: Mapping[type, list[tuple[str, Node]]], live: set[type]) -> None:
        self.models = models
        self.live = live
        self.names = itertools.count()
        self.namespace: dict[str, Any] = {
            "_BIG": _BIG,
            "_NBIG": -_BIG,
            "_INT": INT_REASON,
            "_float": _float_reason,
            "_index": _index,
            "type": type,
        }
        self.functions: dict[type, str] = {}  # model -> name of its function
        self.sources: list[str] = []

    def compile(self, node: Node | None) -> NumberCheck:
        lines = [f"def check(v, big, {_LOCALS}):"]
        self._emit(node, "v", "()", lines, 1, ())
        lines.append("    return None")
        self.sources.append("\n".join(lines))
        code = compile("\n\n".join(self.sources), "<fastapi_serdes number check>", "exec")
        exec(code, self.namespace)  # the source holds only generated names and repr() literals
        check: NumberCheck = self.namespace["check"]
        return check

    def _fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def _emit(
        self,
        node: Node | None,
        var: str,
        loc: str,
        out: list[str],
        depth: int,
        inlined: tuple[type, ...],
    ) -> None:
        """Append lines that return a Problem when ``var`` (located by ``loc``) has one."""
        if not _is_live(node, self.live):
            return
        assert node is not None
        pad = "    " * depth
        kind = node[0]
        if kind == "int":
            # Literal bounds, and first the range CPython compares fastest (one-digit ints):
            # about twice as fast as comparing every value with two names bound to big ints.
            out.append(
                f"{pad}if not {_SMALL_MIN} <= {var} <= {_SMALL_MAX} "
                f"and not {INT_MIN!r} <= {var} <= {INT_MAX!r}: return ({loc}, _INT)"
            )
        elif kind == "float":
            out.append(f"{pad}if not _NBIG < {var} < _BIG:")
            out.append(f"{pad}    r = _float({var}, big)")
            out.append(f"{pad}    if r is not None: return ({loc}, r)")
        elif kind == "opt":
            out.append(f"{pad}if {var} is not None:")
            self._emit(node[1], var, loc, out, depth + 1, inlined)
        elif kind == "seq":
            item = self._fresh("x")
            out.append(f"{pad}for {item} in {var}:")
            where = f"({loc} + (_index({var}, {item}),))"  # the index is looked up on failure only
            self._emit(node[1], item, where, out, depth + 1, inlined)
        elif kind == "map":
            key, item = self._fresh("k"), self._fresh("x")
            out.append(f"{pad}for {key}, {item} in {var}.items():")
            self._emit(node[1], item, f"({loc} + ({key},))", out, depth + 1, inlined)
        elif kind == "union":
            self._union(node[1], var, loc, out, depth, inlined)
        else:
            self._emit_model(node[1], var, loc, out, depth, inlined)

    def _union(
        self,
        branches: tuple[tuple[type, Node], ...],
        var: str,
        loc: str,
        out: list[str],
        depth: int,
        inlined: tuple[type, ...],
    ) -> None:
        pad = "    " * depth
        kind = self._fresh("t")
        out.append(f"{pad}{kind} = type({var})")
        keyword = "if"
        for runtime, branch in branches:
            if not _is_live(branch, self.live):
                continue
            name = self._constant(runtime)
            out.append(f"{pad}{keyword} {kind} is {name}:")
            self._emit(branch, var, loc, out, depth + 1, inlined)
            keyword = "elif"

    def _emit_model(
        self, model: type, var: str, loc: str, out: list[str], depth: int, inlined: tuple[type, ...]
    ) -> None:
        pad = "    " * depth
        if model in inlined or len(inlined) >= self._INLINE_DEPTH:
            function = self._function(model)
            result = self._fresh("r")
            out.append(f"{pad}{result} = {function}({var}, big)")
            out.append(f"{pad}if {result} is not None:")
            out.append(f"{pad}    return ({loc} + {result}[0], {result}[1])")
            return
        self._emit_fields(model, var, loc, out, depth, (*inlined, model))

    def _emit_fields(
        self, model: type, var: str, loc: str, out: list[str], depth: int, inlined: tuple[type, ...]
    ) -> None:
        pad = "    " * depth
        fields = self._fresh("d")
        out.append(f"{pad}{fields} = {var}.__dict__")
        for name, node in self.models[model]:
            if not _is_live(node, self.live):
                continue
            value = self._fresh("x")
            out.append(f"{pad}{value} = {fields}[{name!r}]")
            self._emit(node, value, f"({loc} + ({name!r},))", out, depth, inlined)

    def _function(self, model: type) -> str:
        """The name of the function checking one instance of ``model`` (written once)."""
        if model in self.functions:
            return self.functions[model]
        name = self._fresh("_model")
        self.functions[model] = name
        lines = [f"def {name}(v, big, {_LOCALS}):"]
        self._emit_fields(model, "v", "()", lines, 1, (model,))
        lines.append("    return None")
        self.sources.append("\n".join(lines))
        return name

    def _constant(self, value: Any) -> str:
        name = self._fresh("_T")
        self.namespace[name] = value
        return name
