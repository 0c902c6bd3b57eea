"""Response views: ``?view=minimal|standard|detailed`` and sparse ``?fields=a,b,c.d``.

A :class:`Views` names projections of one model (or of a union of models), checked when the app
starts. Each view is compiled into a pydantic ``include`` tree (the codec serialises fewer fields
instead of serialising and dropping) and into a model that OpenAPI documents, so a request costs
a dict lookup. A route opts in by decorating its endpoint::

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
    wrap_for,
)

ALL: Final = "*"
_FIELDS_CACHE_SIZE: Final = 256

F = TypeVar("F", bound=Callable[..., Any])
ViewSpec = type[BaseModel] | Collection[str] | Literal["*"]


@dataclass(frozen=True, slots=True)
class Selection:
    """What the client selected, for endpoints that load only what they serialise.

    Attributes:
        view: the view name, or None when the route has no views.
        fields: the top-level field names that will be serialised, or None for every field.
        paths: every selected field path (``owner.name``), or None for every field.
    """

    view: str | None = None
    fields: frozenset[str] | None = None
    paths: frozenset[str] | None = None


def _selection(view: str | None, paths: frozenset[str] | None) -> Selection:
    top = frozenset(p.split(".")[0] for p in paths) if paths else None
    return Selection(view, top, paths)


def _unknown(kind: str, name: str, allowed: Iterable[str], prefix: str = "") -> str:
    """``unknown field 'owner.nam' (did you mean 'owner.name'?); allowed: ...``."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    listed = ", ".join(prefix + a for a in allowed)
    return f"unknown {kind} {prefix + name!r}{hint}; allowed: {listed}"


def _include_for_paths(
    models: Sequence[type[BaseModel]], paths: Iterable[str], max_depth: int
) -> Include:
    """The include tree of dotted field paths, checked against ``models``; ValueError if bad."""
    include: Include = {}
    for path in paths:
        parts = path.split(".")
        if len(parts) > max_depth:
            raise ValueError(f"field {path!r} is nested deeper than {max_depth} levels")
        node, current = include, models
        for i, part in enumerate(parts):
            allowed = field_names(current)
            if part not in allowed:
                prefix = ".".join(parts[:i]) + "." if i else ""
                raise ValueError(_unknown("field", part, allowed, prefix))
            if i == len(parts) - 1:
                node[part] = True
                break
            annotation = fields_of(current[0])[part]
            nested = model_in(annotation)
            if nested is None:
                raise ValueError(f"field {'.'.join(parts[: i + 1])!r} has no nested fields")
            child = node.setdefault(part, wrap_for(annotation, {}))
            if child is True:  # the whole field is already selected
                break
            node, current = child.get("__all__", child), nested
    return include


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
        max_fields: int = 50,
        max_depth: int = 4,
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
        self.views = {name: self._compile(name, spec) for name, spec in views.items()}

    def _compile(self, name: str, spec: ViewSpec) -> View:
        if spec == ALL:
            return View(None, self.model, None)
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
        suffix = name.title().replace("_", "")
        model = spec if isinstance(spec, type) else derive(self.members, include, suffix)
        return View(include, model, frozenset(paths))

    def __call__(self, endpoint: F) -> F:
        """Attach these views to an endpoint served by ``SerdesRoute``."""
        endpoint.__serdes_views__ = self  # type: ignore[attr-defined]
        return endpoint


def _selection_problem(views: Views, detail: str) -> ProblemError:
    return ProblemError.of(
        "invalid-selection", detail, views=sorted(views.views), fields=field_names(views.members)
    )


def _outside(paths: frozenset[str], allowed: frozenset[str] | None) -> str | None:
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
        if locate(response_type, views.model, {}) is None:
            raise ValueError(
                f"Views({views.members[0].__name__}) is attached to a route whose response "
                f"type {response_type!r} does not contain it"
            )
        self.views = views
        self.response_type = response_type
        self.doc_type = _doc_union(response_type, views)
        self._chosen = {
            name: (locate(response_type, views.model, view.include), _selection(name, view.paths))
            for name, view in views.views.items()
        }
        # ?fields= selections, memoised by (view, fields) as the client sent them.
        self._fields: dict[tuple[str | None, str], tuple[Include | None, Selection]] = {}

    def choose(
        self, request: Request
    ) -> tuple[dict[str, Any], list[tuple[bytes, bytes]], Selection]:
        """Dump options, response headers and the selection the client asked for (``?view=``,
        ``?fields=``, ``Prefer: return=minimal``)."""
        views = self.views
        view = request.query_params.get(views.query_view)
        fields = request.query_params.get(views.query_fields)
        preferred = (
            view is None
            and fields is None
            and "minimal" in views.views
            and _prefers_minimal(header(request.scope, b"prefer") or "")
        )
        include, chosen = self.select("minimal" if preferred else view, fields)
        options: dict[str, Any] = {"include": include}
        if chosen.view in views.compact_views:
            options["exclude_none"] = True
        headers = [(b"serdes-view", (chosen.view or "fields").encode("latin-1"))]
        if preferred:
            headers.append((b"preference-applied", b"return=minimal"))
        return options, headers, chosen

    def select(self, view: str | None, fields: str | None) -> tuple[Include | None, Selection]:
        """The include tree for the encoder, and the selection; a 400 problem when invalid."""
        views = self.views
        name = views.default if view is None else view
        if name not in views.views:
            detail = _unknown("view", name, views.views)
            raise _selection_problem(views, f"?{views.query_view}=: {detail}")
        if fields is None:
            return self._chosen[name]
        found = self._fields.get((view, fields))
        return found if found is not None else self._select_fields(view, fields)

    def _select_fields(self, view: str | None, fields: str) -> tuple[Include | None, Selection]:
        views = self.views
        param = f"?{views.query_fields}="
        paths = [p.strip() for p in fields.split(",") if p.strip()]
        if not paths:
            raise _selection_problem(views, f"{param} names no field")
        if len(paths) > views.max_fields:
            detail = f"{param} names {len(paths)} fields; at most {views.max_fields}"
            raise _selection_problem(views, detail)
        try:
            include = _include_for_paths(views.members, paths, views.max_depth)
        except ValueError as exc:
            raise _selection_problem(views, f"{param}: {exc}") from None
        selected = frozenset(paths)
        if view is not None and (outside := _outside(selected, views.views[view].paths)):
            raise _selection_problem(views, f"{param}: field {outside!r} is not in view {view!r}")
        if len(self._fields) >= _FIELDS_CACHE_SIZE:
            self._fields.clear()
        found = self._fields[view, fields] = (
            locate(self.response_type, views.model, include),
            _selection(view, selected),
        )
        return found


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
