"""``SerdesRoute``: an ``APIRoute`` that answers in the negotiated codec, and ``SerdesResponse``.

The route reads the :class:`~fastapi_serdes.settings.Negotiated` value ``SerdesMiddleware`` left in
the scope (or negotiates itself with its own settings when there is no middleware), decodes the
request body by ``Content-Type`` (a single body is validated by the codec straight from the bytes;
several body parameters are decoded to objects FastAPI validates), runs the
endpoint, and encodes its return value once, natively, in the negotiated codec. Generator
endpoints (JSONL, SSE) and routes with a non-JSON ``response_class`` keep FastAPI's own handler.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi import params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import solve_dependencies
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.routing import APIRoute, run_endpoint_function
from fastapi.utils import create_model_field, is_body_allowed_for_status_code
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from ._types import Codec, Message, Receive, Scope, Send
from .answer import VARY_ACCEPT, respond
from .cache import (
    CachePolicy,
    SingleFlight,
    ValidatedBodies,
)
from .flights import Produced, flight_key, once_per_cluster, shareable, shared_store
from .fragments import Fragments
from .negotiation import split_list
from .openapi import operation_extra, problem_responses, selection_responses
from .problems import EncodeError, ProblemError, validation_problem
from .request_body import read_request_body
from .settings import SCOPE_KEY, Negotiated, SerdesSettings, header, negotiate
from .spans import encode_span, type_name
from .telemetry import ROUTE_SCOPE_KEY, Recorder, request_recorder
from .views import SELECTION_SCOPE_KEY, BoundViews, Views

# FastAPI >= 0.160 builds included routes as "effective contexts" of the original route; older
# releases copy the route instead and have no such variable.
_effective_route_context_var: Any = getattr(
    importlib.import_module("fastapi.routing"), "_effective_route_context_var", None
)

logger = logging.getLogger("fastapi_serdes")


def not_acceptable(settings: SerdesSettings) -> Response:
    """406 problem+json listing the media types on offer."""
    problem = ProblemError.of(
        "not-acceptable",
        "None of the media types in Accept can be produced; use one of 'available'.",
        available=list(settings.offers),
    )
    response = problem.to_response()
    response.raw_headers.append(VARY_ACCEPT)
    return response


def encode_failed(reason: str) -> ProblemError:
    """The 500 problem for a value the codec cannot represent (logged by the caller).

    ``reason`` is the codec's :class:`EncodeError` message: it names the codec and the field.
    """
    return ProblemError.of("encode-failed", f"The response could not be encoded: {reason}")


@dataclass(slots=True)
class _Plan:
    """What a route needs per request, compiled once when the route is built."""

    adapter: TypeAdapter[Any] | None
    model: type[BaseModel] | None
    options: dict[str, Any]
    settings: SerdesSettings
    views: BoundViews | None = None
    cache: CachePolicy | None = None
    flights: SingleFlight = field(default_factory=lambda: SingleFlight())
    # For telemetry: the route template, and the names of the response and body models.
    route: str | None = None
    model_name: str | None = None
    body_name: str | None = None
    bodies: ValidatedBodies | None = None
    fragments: Fragments | None = None


class SerdesRoute(APIRoute):
    """An ``APIRoute`` whose responses follow ``Accept`` and whose bodies follow ``Content-Type``.

    Use it as ``APIRouter(route_class=SerdesRoute)``. Settings come from ``SerdesMiddleware``
    when it is installed; otherwise from :meth:`with_settings` (or the defaults and the
    ``FASTAPI_SERDES_*`` environment).
    """

    serdes_settings: ClassVar[SerdesSettings | None] = None

    @classmethod
    def with_settings(cls, **kwargs: Any) -> type[SerdesRoute]:
        """A ``SerdesRoute`` subclass with its own settings, for routers used without middleware.

        Takes the keyword arguments of :meth:`SerdesSettings.from_kwargs`.
        """
        settings = SerdesSettings.from_kwargs(**kwargs)
        return type(cls.__name__, (cls,), {"serdes_settings": settings})

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Kept apart: get_route_handler() adds the codecs' media types per inclusion path.
        self._user_openapi_extra: dict[str, Any] | None = kwargs.get("openapi_extra")
        self._serdes_views: BoundViews | None = None
        self._serdes_response_model: Any = None
        super().__init__(path, endpoint, **kwargs)
        has_params = bool(
            self.dependant.path_params
            or self.dependant.query_params
            or self.dependant.header_params
            or self.dependant.cookie_params
            or self.dependant.dependencies
        )
        extra = problem_responses(has_body=self.body_field is not None, has_params=has_params)
        if 400 in extra and 400 in self.responses:  # views' invalid-selection, and a bad body
            extra[400] = {**extra[400], **selection_responses(extra)[400]}
        self.responses = {**extra, **self.responses}
        if 400 in extra:
            self.responses[400] = extra[400]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # HEAD is GET without a body (RFC 9110 §9.3.2): a GET route answers it, with GET's
        # headers. FastAPI's APIRoute does not; Starlette's Route does.
        if scope["type"] == "http" and scope["method"] == "HEAD" and "GET" in (self.methods or ()):
            return super().matches({**scope, "method": "GET"})
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD" and "GET" in (self.methods or ()):
            scope["method"] = "GET"
            try:
                await super().handle(scope, receive, _without_body(send))
            finally:
                scope["method"] = "HEAD"
            return
        await super().handle(scope, receive, send)

    def _bind_views(self, views: Views) -> None:
        if self.response_field is None:
            raise ValueError(
                f"route {self.path!r}: views need a response model (a return annotation or "
                "response_model=)"
            )
        bound = BoundViews(views, self.response_model)
        # Handlers encode with the full model (_serdes_response_model); FastAPI, and included
        # copies of this route, see the union of the views, which is what OpenAPI documents.
        self._serdes_views = bound
        self._serdes_response_model = self.response_model
        self.responses = {**self.responses, **selection_responses(self.responses)}
        self.response_model = bound.doc_type
        self.response_field = create_model_field(
            name="Response_" + self.unique_id, type_=bound.doc_type, mode="serialization"
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        route: Any = self
        if _effective_route_context_var is not None:
            context = _effective_route_context_var.get()
            if context is not None and context.original_route is self:
                route = context
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        body_field = route.body_field
        if (
            route.is_sse_stream
            or route.is_json_stream
            or not issubclass(response_class, JSONResponse | ORJSONResponse)
            or (body_field is not None and isinstance(body_field.field_info, params.Form))
        ):
            return super().get_route_handler()
        settings = self.serdes_settings or SerdesSettings.from_kwargs()
        declared: Views | None = getattr(self.endpoint, "__serdes_views__", None)
        if declared is not None and self._serdes_views is None:
            # First call, from APIRoute.__init__: the response model is known by now.
            self._bind_views(declared)
        views = self._serdes_views
        route.openapi_extra = operation_extra(
            route, settings, self._user_openapi_extra, views.views if views else None
        )
        plan = _build_plan(route, settings, getattr(self, "_serdes_response_model", None), views)
        return _build_handler(route, plan)


def _build_plan(
    route: Any, settings: SerdesSettings, response_model: Any, views: BoundViews | None
) -> _Plan:
    if response_model is None:
        response_model = route.response_model if route.response_field is not None else None
    adapter = TypeAdapter(response_model) if response_model is not None else None
    options = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }
    model = (
        response_model
        if isinstance(response_model, type) and issubclass(response_model, BaseModel)
        else None
    )
    return _Plan(
        adapter=adapter,
        model=model,
        options={k: v for k, v in options.items() if v not in (None, False) or k == "by_alias"},
        settings=settings,
        views=views,
        cache=_cache_policy(route, views),
        route=route.path,
        model_name=type_name(response_model) if response_model is not None else None,
        body_name=type_name(route.body_field.field_info.annotation) if route.body_field else None,
        bodies=_validated_bodies(route),
        fragments=_fragments(route, response_model),
    )


def _declares_only_a_body(dependant: Dependant) -> bool:
    """Whether FastAPI's solver would only hand the endpoint its body (if any).

    True when the endpoint (with its router's and app's dependencies) declares no dependency,
    no path, query, header or cookie parameter and no special argument (``Request``,
    ``Response``, ``BackgroundTasks``, ``SecurityScopes``...). Read from the dependant's fields
    by suffix, so a kind of parameter a later FastAPI adds keeps the endpoint on the solver.
    """
    if dependant.dependencies or len(dependant.body_params) > 1:
        return False
    for item in dataclasses.fields(dependant):
        value = getattr(dependant, item.name, None)
        if item.name.endswith("_param_name") and value is not None:
            return False
        if item.name.endswith("_params") and item.name != "body_params" and value:
            return False
    return True


def _cache_policy(route: Any, views: BoundViews | None) -> CachePolicy | None:
    """The route's cache policy; with views, ``Prefer`` joins its Vary (it picks a view)."""
    policy: CachePolicy | None = getattr(route.endpoint, "__serdes_cache__", None)
    if policy is None or views is None or "prefer" in policy.vary:
        return policy
    return dataclasses.replace(policy, vary=(*policy.vary, "prefer"))


def _build_handler(route: Any, plan: _Plan) -> Callable[[Request], Any]:
    dependant: Dependant = route.dependant
    body_field = route.body_field
    embed = route._embed_body_fields
    # A single, non-embedded body is validated straight from the request bytes by the codec
    # (pydantic-core's JSON parser for JSON); FastAPI then accepts the validated instance as
    # it is. Embedded bodies (several body parameters) are decoded to objects FastAPI validates.
    body_adapter: TypeAdapter[Any] | None = (
        getattr(body_field, "_type_adapter", None) if body_field is not None and not embed else None
    )
    overrides = route.dependency_overrides_provider
    status_code = route.status_code
    is_coroutine = _is_coroutine(dependant.call)
    accept_cache: dict[str | None, Negotiated] = {}
    # An endpoint that takes nothing but (at most) the body we validate is called directly.
    bare = _declares_only_a_body(dependant) and (body_field is None or body_adapter is not None)
    # Otherwise FastAPI's solver gets the dependant without that body (it would validate the
    # validated value again: after-validators twice) and the endpoint gets our value.
    solver_dependant = dependant
    bodies = plan.bodies if body_adapter is not None else None  # reuse needs our validation
    if body_adapter is not None and [p.name for p in dependant.body_params] == [body_field.name]:
        solver_dependant = dataclasses.replace(dependant, body_params=[])

    async def produce(
        request: Request,
        negotiated: Negotiated,
        options: Mapping[str, Any],
        recorder: Recorder | None,
    ) -> Response | Produced:
        """Decode, solve dependencies, run the endpoint, encode: one request's work."""
        scope = request.scope
        codec = negotiated.codec
        assert codec is not None
        body: Any = PydanticUndefined
        if body_field is not None:
            body = await read_request_body(
                request,
                negotiated.settings,
                body_adapter,
                recorder,
                bodies=bodies,
                body_name=plan.body_name,
                route=plan.route,
            )
        sub_response: Response | None = None
        background: Any = None
        if bare and (body_field is None or body is not PydanticUndefined):
            # Nothing for FastAPI's solver to do: no dependency, parameter or special argument,
            # and a body already validated (it would validate it a second time).
            values = {} if body_field is None else {body_field.name: body}
        else:
            ours = body is not PydanticUndefined and solver_dependant is not dependant
            solved = await solve_dependencies(
                request=request,
                dependant=solver_dependant if ours else dependant,
                body=body,
                dependency_overrides_provider=overrides,
                async_exit_stack=scope["fastapi_inner_astack"],
                embed_body_fields=embed,
            )
            if solved.errors:
                raise validation_problem(solved.errors)
            values = solved.values
            if ours:
                values[body_field.name] = body
            sub_response = solved.response
            background = solved.background_tasks
        raw = await run_endpoint_function(
            dependant=dependant, values=values, is_coroutine=is_coroutine
        )
        if isinstance(raw, Response):
            if raw.background is None:
                raw.background = background
            return raw
        headers: list[tuple[bytes, bytes]] = []
        code = status_code or 200
        if sub_response is not None:  # the endpoint may have set both
            headers = list(sub_response.headers.raw)
            code = sub_response.status_code or code
        if not is_body_allowed_for_status_code(code):
            content = b""
        elif recorder is None:
            content = _encode(plan, codec, raw, options)
        else:
            content = encode_span(
                recorder,
                lambda: _encode(plan, codec, raw, options),
                media_type=negotiated.media_type,
                codec=codec,
                model=plan.model_name,
                selection=scope.get(SELECTION_SCOPE_KEY),
                route=plan.route,
            )
        return Produced(code, content, headers, background)

    async def app(request: Request) -> Response:
        scope = request.scope
        negotiated: Negotiated | None = scope.get(SCOPE_KEY)
        if negotiated is None:
            accept = header(scope, b"accept")
            negotiated = accept_cache.get(accept)
            if negotiated is None:
                negotiated = negotiate(accept, plan.settings)
                if len(accept_cache) < 64:
                    accept_cache[accept] = negotiated
        recorder = request_recorder(scope, negotiated.settings.telemetry)
        if recorder is not None:
            scope[ROUTE_SCOPE_KEY] = plan.route
        if negotiated.codec is None:
            if recorder is not None:
                recorder.problem(406, "not-acceptable", plan.route)
            return not_acceptable(negotiated.settings)
        try:
            view_headers: list[tuple[bytes, bytes]] = []
            options = plan.options
            if plan.views is not None:
                options, view_headers = _select_view(plan, request)
            flight = flight_key(plan.cache, request, negotiated)
            if flight is None:
                produced = await produce(request, negotiated, options, recorder)
            else:
                store = shared_store(request.scope)

                async def compute() -> Response | Produced:
                    work = produce(request, negotiated, options, recorder)
                    if store is None:
                        return await work
                    # Many replicas: a short lock in the shared store makes it once per cluster.
                    return await once_per_cluster(store, flight, work)

                produced = await plan.flights.run(flight, compute, shareable)
            if isinstance(produced, Response):
                return produced
            return respond(
                request,
                negotiated,
                produced,
                views=plan.views is not None,
                cache=plan.cache,
                view_headers=view_headers,
            )
        except ProblemError as exc:
            if recorder is not None:
                recorder.problem(exc.status, exc.type, plan.route)
            response = exc.to_response()
            response.raw_headers.append(VARY_ACCEPT)
            return response

    return app


def _fragments(route: Any, response_model: Any) -> Fragments | None:
    """The route's fragment cache when it declared one; its response must be a list."""
    declared = getattr(route.endpoint, "__serdes_fragments__", None)
    if declared is None:
        return None
    version, max_bytes = declared
    args = typing.get_args(response_model)
    if typing.get_origin(response_model) is not list or len(args) != 1:
        raise TypeError(
            f"cached_fragments() on {route.path!r} needs a list response (list[Item]), "
            f"got {response_model!r}"
        )
    return Fragments(version, args[0], max_bytes)


def _validated_bodies(route: Any) -> ValidatedBodies | None:
    """The route's reuse cache when it opted in; its body must be one frozen model."""
    max_entries = getattr(route.endpoint, "__serdes_body_reuse__", None)
    if max_entries is None:
        return None
    field = route.body_field
    model = field.field_info.annotation if field is not None else None
    if route._embed_body_fields or not (
        isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.model_config.get("frozen")
    ):
        raise TypeError(
            f"reuse_validated_bodies() on {route.path!r} needs a single body parameter whose type "
            f"is a frozen pydantic model (model_config = ConfigDict(frozen=True)), got {model!r}"
        )
    return ValidatedBodies(max_entries)


def _select_view(plan: _Plan, request: Request) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
    """Dump options and response headers for the view or fields the client selected."""
    bound = plan.views
    assert bound is not None
    views = bound.views
    query = request.query_params
    prefer = header(request.scope, b"prefer")
    prefer_minimal = prefer is not None and _prefers_minimal(prefer)
    include, chosen, preferred = bound.select(
        query.get(views.query_view), query.get(views.query_fields), prefer_minimal
    )
    request.scope[SELECTION_SCOPE_KEY] = chosen
    options = dict(plan.options)
    options.pop("include", None)
    if include is not None:
        options["include"] = include
    if chosen.view in views.compact_views:
        options["exclude_none"] = True
    applied = chosen.view if chosen.paths is None or chosen.view else "fields"
    headers = [(b"serdes-view", str(applied).encode("latin-1"))]
    if preferred:
        headers.append((b"preference-applied", b"return=minimal"))
    return options, headers


def _prefers_minimal(prefer: str) -> bool:
    """Whether a ``Prefer`` header (RFC 7240) asks for ``return=minimal``."""
    for member in split_list(prefer):
        name, _, value = member.partition(";")[0].partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
            return True
    return False


def _encode(plan: _Plan, codec: Codec, raw: Any, options: Mapping[str, Any] | None = None) -> bytes:
    return encode_value(
        codec,
        raw,
        plan.adapter,
        plan.options if options is None else options,
        model=plan.model,
        fragments=plan.fragments,
    )


def encode_value(
    codec: Codec,
    raw: Any,
    adapter: TypeAdapter[Any] | None,
    options: Mapping[str, Any],
    *,
    model: type[BaseModel] | None = None,
    fragments: Fragments | None = None,
) -> bytes:
    """A response value validated into ``adapter``'s type (instances of ``model`` are trusted)
    and encoded; a value the codec refuses is logged and becomes a 500 problem."""
    value = raw
    if adapter is not None and (model is None or type(raw) is not model):
        # Trust instances of the response model (FastAPI validated them); validate the rest.
        try:
            value = adapter.validate_python(raw, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(errors=exc.errors(include_url=False), body=raw) from None
    try:
        if fragments is not None and isinstance(value, list):
            joined = fragments.encode(value, codec, options)
            if joined is not None:
                return joined
        return codec.encode(value, adapter, options)
    except EncodeError as exc:
        logger.error("fastapi-serdes: refusing to encode a response: %s", exc)
        raise encode_failed(str(exc)) from None


def _without_body(send: Send) -> Send:
    """A send that drops body bytes (HEAD) but keeps every header, Content-Length included."""

    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


def _is_coroutine(call: Any) -> bool:
    if inspect.isroutine(call):
        return inspect.iscoroutinefunction(call)
    if inspect.isclass(call):
        return False
    return inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
