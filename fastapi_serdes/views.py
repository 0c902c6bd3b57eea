"""Response views: ``?view=minimal|standard|detailed`` and sparse ``?fields=a,b,c.d``.

A :class:`Views` names projections of one model (or of a union of models), declared once and
checked when the app starts. Each view is compiled into what the encoder needs (a pydantic
``include`` tree, so the codec serialises fewer fields instead of serialising and dropping) and
into a real pydantic model that OpenAPI documents. Per request there is only a dict lookup.

A route opts in by decorating its endpoint::

    video_views = Views(Video, minimal=["id", "title"], standard=[...], detailed=ALL)

    @router.get("/videos/{video_id}")
    @video_views
    async def get_video(video_id: int) -> Video: ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, Union

from pydantic import BaseModel
from starlette.requests import Request

from ._types import check_positive
from .negotiation import split_list
from .problems import ProblemError
from .settings import header
from .state import state_of
from .view_models import (
    Include,
    derive,
    field_names,
    fields_of,
    locate,
    members,
    model_in,
    replace,
    tree_of,
    wrap_for,
)

ALL: Final = "*"
DEFAULT_MAX_FIELDS: Final = 50
DEFAULT_MAX_DEPTH: Final = 4
_FIELDS_CACHE_SIZE: Final = 256

F = TypeVar("F", bound=Callable[..., Any])
ViewSpec = type[BaseModel] | Collection[str] | Literal["*"]


@dataclass(frozen=True, slots=True)
class Selection:
    """What the client selected, for endpoints that load only what they serialise.

    Attributes:
        view: the view name, or None when the route has no views.
        fields: the top-level field names of the resource that will be serialised, or None when
            every field will be.
        paths: every selected field path (``owner.name``), or None for every field.
    """

    view: str | None = None
    fields: frozenset[str] | None = None
    paths: frozenset[str] | None = None


def _unknown(kind: str, name: str, allowed: Iterable[str], prefix: str = "") -> str:
    """``unknown field 'owner.nam'; did you mean 'owner.name'? Allowed: ...``."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    listed = ", ".join(prefix + a for a in allowed)
    return f"unknown {kind} {prefix + name!r}{hint}; allowed: {listed}"


def _include_for_paths(
    models: Sequence[type[BaseModel]], paths: Iterable[str], max_depth: int
) -> Include:
    """An include tree for dotted field paths, checked against ``models``; ValueError if bad."""
    tree: dict[str, Any] = {}
    for path in paths:
        parts = path.split(".")
        if len(parts) > max_depth:
            raise ValueError(f"field {path!r} is nested deeper than {max_depth} levels")
        node, current = tree, list(models)
        for i, part in enumerate(parts):
            allowed = field_names(current)
            if part not in allowed:
                prefix = ".".join(parts[:i]) + "." if i else ""
                raise ValueError(_unknown("field", part, allowed, prefix))
            last = i == len(parts) - 1
            if last:
                node[part] = True
                break
            nested = model_in(fields_of(current[0])[part])
            if nested is None:
                raise ValueError(f"field {'.'.join(parts[: i + 1])!r} has no nested fields")
            child = node.get(part)
            if child is True:  # the whole field is already selected
                break
            node = node.setdefault(part, {})
            current = list(nested)
    return _wrap_tree(models, tree)


def _wrap_tree(models: Sequence[type[BaseModel]], tree: Include) -> Include:
    """Turn a plain nested-dict tree into pydantic's include form (``__all__`` for lists)."""
    out: Include = {}
    for name, sub in tree.items():
        if sub is True:
            out[name] = True
            continue
        annotation = fields_of(models[0])[name]
        nested = model_in(annotation) or ()
        out[name] = wrap_for(annotation, _wrap_tree(list(nested), sub))
    return out


def _paths_of_view_model(
    view: type[BaseModel], base: Sequence[type[BaseModel]], prefix: str = ""
) -> list[str]:
    """The field paths an explicit view model selects from ``base`` (names must exist there)."""
    paths: list[str] = []
    allowed = field_names(base)
    for name, info in view.model_fields.items():
        if name not in allowed:
            raise ValueError(
                f"view model {view.__name__}: {_unknown('field', name, allowed, prefix)}"
            )
        nested_view = model_in(info.annotation)
        nested_base = model_in(fields_of(base[0])[name])
        if nested_view and nested_base and set(nested_view) != set(nested_base):
            paths += _paths_of_view_model(nested_view[0], nested_base, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths


@dataclass(frozen=True, slots=True)
class View:
    """One compiled view: what the encoder includes and the model OpenAPI documents."""

    name: str
    include: Include | None  # None: every field
    model: Any
    paths: frozenset[str] | None


class Views:
    """Named projections of ``model`` that clients select with ``?view=`` and ``?fields=``.

    Args:
        model: the resource model, or a union of models (views then name fields every member
            has).
        default: the view answered when the client selects none.
        compact: drop ``None`` values from responses: True for every view, or the names of the
            views that do.
        query_view: the query parameter that selects a view.
        query_fields: the query parameter that selects fields (comma-separated, dotted paths).
        max_fields: the most fields ``?fields=`` may name.
        max_depth: the most dotted segments a field path may have.
        **views: each view: a list of field paths (``"owner.name"``), a pydantic model whose
            fields are a projection of ``model``, or :data:`ALL`.

    Raises:
        ValueError: a view names a field that does not exist (with the nearest name), or the
            default is not a view.
    """

    def __init__(
        self,
        model: Any,
        /,
        *,
        default: str = "standard",
        compact: bool | Collection[str] = False,
        query_view: str = "view",
        query_fields: str = "fields",
        max_fields: int = DEFAULT_MAX_FIELDS,
        max_depth: int = DEFAULT_MAX_DEPTH,
        **views: ViewSpec,
    ) -> None:
        self.model = model
        self.members = members(model)
        if not views:
            raise ValueError("Views needs at least one view, e.g. minimal=['id']")
        if default not in views:
            raise ValueError(_unknown("default view", default, views))
        check_positive("max_fields", max_fields)
        check_positive("max_depth", max_depth)
        compact_views = set(views) if compact is True else set(compact or ())
        if unknown := compact_views - set(views):
            raise ValueError(_unknown("compact view", sorted(unknown)[0], views))
        self.default = default
        self.query_view = query_view
        self.query_fields = query_fields
        self.max_fields = max_fields
        self.max_depth = max_depth
        self.compact_views = frozenset(compact_views)
        # The routes these views are bound to, by the union type they document: FastAPI
        # releases before 0.160 copy an included route from its (documented) response model.
        self.bound: dict[Any, BoundViews] = {}
        self.views: dict[str, View] = {
            name: self._compile(name, spec) for name, spec in views.items()
        }

    def _compile(self, name: str, spec: ViewSpec) -> View:
        suffix = name.title().replace("_", "")
        if spec == ALL:
            return View(name, None, self.model, None)
        try:
            if isinstance(spec, type) and issubclass(spec, BaseModel):
                paths = _paths_of_view_model(spec, self.members)
            elif isinstance(spec, str):
                raise ValueError(f"a view is a list of field paths, got the string {spec!r}")
            else:
                paths = list(spec)
            include = _include_for_paths(self.members, paths, self.max_depth)
        except ValueError as exc:
            raise ValueError(f"Views({self.members[0].__name__}): view {name!r}: {exc}") from None
        model = spec if isinstance(spec, type) else derive(self.members, tree_of(include), suffix)
        return View(name, include, model, frozenset(paths))

    def __call__(self, endpoint: F) -> F:
        """Attach these views to an endpoint served by ``SerdesRoute``."""
        endpoint.__serdes_views__ = self  # type: ignore[attr-defined]
        return endpoint

    def fields_include(self, raw: str) -> tuple[Include, frozenset[str]]:
        """The include tree for a ``?fields=`` value; a 400 problem when it is not valid."""
        paths = [p.strip() for p in raw.split(",") if p.strip()]
        if not paths:
            raise _selection_problem(f"?{self.query_fields}= names no field", self)
        if len(paths) > self.max_fields:
            raise _selection_problem(
                f"?{self.query_fields}= names {len(paths)} fields; at most {self.max_fields}",
                self,
            )
        try:
            return _include_for_paths(self.members, paths, self.max_depth), frozenset(paths)
        except ValueError as exc:
            raise _selection_problem(f"?{self.query_fields}=: {exc}", self) from None


def _selection_problem(detail: str, views: Views) -> ProblemError:
    return ProblemError.of(
        "invalid-selection",
        detail,
        views=sorted(views.views),
        fields=field_names(views.members),
    )


def _within(paths: frozenset[str], allowed: frozenset[str] | None) -> str | None:
    """The first path not covered by ``allowed`` (a path or one of its parents), or None."""
    if allowed is None:
        return None
    for path in sorted(paths):
        parts = path.split(".")
        if not any(".".join(parts[:i]) in allowed for i in range(1, len(parts) + 1)):
            return path
    return None


class BoundViews:
    """``Views`` placed in one route's response type: per-request selection is a lookup."""

    def __init__(self, views: Views, response_type: Any) -> None:
        self.views = views
        located = locate(response_type, views.model, {"__marker__": True})
        if located is None:
            raise ValueError(
                f"Views({views.members[0].__name__}) is attached to a route whose response "
                f"type {response_type!r} does not contain it"
            )
        self.response_type = response_type
        self._placements: dict[str, Include | None] = {
            name: self._place(view.include) for name, view in views.views.items()
        }
        self._fields: dict[str, tuple[Include | None, Selection]] = {}
        self.doc_type = _doc_union(response_type, views)

    def _place(self, include: Include | None) -> Include | None:
        if include is None:
            return None
        return locate(self.response_type, self.views.model, include)

    def choose(
        self, request: Request
    ) -> tuple[dict[str, Any], list[tuple[bytes, bytes]], Selection]:
        """Dump options, response headers and the selection for what the client asked for
        (``?view=``, ``?fields=``, ``Prefer: return=minimal``)."""
        views = self.views
        query = request.query_params
        prefer = header(request.scope, b"prefer")
        prefer_minimal = prefer is not None and _prefers_minimal(prefer)
        include, chosen, preferred = self.select(
            query.get(views.query_view), query.get(views.query_fields), prefer_minimal
        )
        options: dict[str, Any] = {"include": include}
        if chosen.view in views.compact_views:
            options["exclude_none"] = True
        applied = chosen.view if chosen.paths is None or chosen.view else "fields"
        headers = [(b"serdes-view", str(applied).encode("latin-1"))]
        if preferred:
            headers.append((b"preference-applied", b"return=minimal"))
        return options, headers, chosen

    def select(
        self, view: str | None, fields: str | None, prefer_minimal: bool
    ) -> tuple[Include | None, Selection, bool]:
        """(include for the encoder, the selection, whether ``Prefer`` decided it)."""
        views = self.views
        preferred = False
        if view is None and fields is None and prefer_minimal and "minimal" in views.views:
            view, preferred = "minimal", True
        name = view if view is not None else views.default
        chosen = views.views.get(name)
        if chosen is None:
            raise _selection_problem(
                f"?{views.query_view}=: {_unknown('view', name, views.views)}", views
            )
        if fields is None:
            top = _top_level(chosen.paths) if chosen.paths else None
            return self._placements[name], Selection(name, top, chosen.paths), preferred
        # Keyed by what the client sent: "?fields=x" and "?view=<default>&fields=x" differ.
        key = f"{view}\x00{fields}"
        cached = self._fields.get(key) or self._select_fields(key, view, fields, chosen)
        return cached[0], cached[1], False

    def _select_fields(
        self, key: str, view: str | None, fields: str, chosen: View
    ) -> tuple[Include | None, Selection]:
        """What ``?fields=`` selects (within the view the client named, if any), memoised."""
        include, paths = self.views.fields_include(fields)
        if view is not None and (outside := _within(paths, chosen.paths)) is not None:
            raise _selection_problem(
                f"?{self.views.query_fields}=: field {outside!r} is not in view {chosen.name!r}",
                self.views,
            )
        selected = (
            self._place(include),
            Selection(chosen.name if view else None, _top_level(paths), paths),
        )
        if len(self._fields) >= _FIELDS_CACHE_SIZE:
            self._fields.clear()
        self._fields[key] = selected
        return selected


def _top_level(paths: Iterable[str]) -> frozenset[str]:
    return frozenset(p.split(".")[0] for p in paths)


def _doc_union(response_type: Any, views: Views) -> Any:
    """The union OpenAPI documents: the response type once per view."""
    variants: list[Any] = []
    for name, view in views.views.items():
        suffix = name.title().replace("_", "")
        variant = replace(response_type, views.model, view.model, suffix, {})
        if variant not in variants:
            variants.append(variant)
    return variants[0] if len(variants) == 1 else Union[tuple(variants)]  # noqa: UP007


def _prefers_minimal(prefer: str) -> bool:
    """Whether a ``Prefer`` header (RFC 7240) asks for ``return=minimal``."""
    for member in split_list(prefer):
        name, _, value = member.partition(";")[0].partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
            return True
    return False


def selection(request: Request) -> Selection:
    """FastAPI dependency: the fields the client selected (``Depends(selection)``).

    Lets an endpoint load only what will be serialised, e.g. the columns of one SQL query.
    Routes without views select everything.
    """
    state = state_of(request.scope)
    found = state.selection if state is not None else None
    return found if found is not None else Selection()
