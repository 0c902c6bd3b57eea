"""``SerdesRoute``: FastAPI's own request handler, answering in the format the client asked for.

The route builds FastAPI's handler as ``APIRoute`` does (through
``fastapi.routing.get_request_handler``, so integrations that wrap it keep working), with two
parts swapped in: a response field and a response class that serialise in the negotiated codec.
Everything else is FastAPI's: reading JSON and form bodies, dependencies, validation and its
errors, the exception handlers, background tasks, the ``Response`` parameter.

Per request the route only does what the client asked for beyond stock FastAPI:

- a MessagePack body is decoded (within the size and container limits) and handed to FastAPI
  as the parsed value of a JSON body;
- the response is encoded in the negotiated codec, with the view or fields selected;
- a GET's 200 gets a strong ``ETag`` (or a 304), ``Vary`` names what chose the representation,
  and a ``@cached`` route's answer is marked for the response cache.

A client that asks for nothing new (JSON or no ``Accept``, no view) gets FastAPI's bytes.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar

from fastapi import params
from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from . import _compat
from ._types import Codec, Message, Receive, Scope, Send
from .cache import CachePolicy, path_tag
from .cache.fragments import Fragments
from .cache.single_flight import Produced, flight_key, once_per_cluster, shareable, shared_cache
from .codecs import JSON_MEDIA_TYPE
from .openapi import operation_extra, route_problem_responses, selection_responses, user_extra_of
from .problems import ProblemError
from .request_body import decode_request_body
from .response_encoding import (
    ENCODING,
    Encoding,
    NegotiatingField,
    Plan,
    negotiating_class,
    respond,
)
from .settings import Negotiated, SerdesSettings, header, negotiate
from .state import SCOPE_KEY, RequestState, state_of
from .telemetry import Telemetry, request_recorder
from .telemetry.spans import type_name
from .views import BoundViews, Views


def not_acceptable(settings: SerdesSettings) -> ProblemError:
    """406 listing the media types on offer (strict settings only)."""
    return ProblemError.of(
        "not-acceptable",
        "None of the media types in Accept can be produced; accept one of "
        f"{', '.join(settings.offers)}.",
        headers={"Vary": "Accept"},
        available=list(settings.offers),
    )


class SerdesRoute(APIRoute):
    """An ``APIRoute`` whose responses follow ``Accept`` and whose bodies follow ``Content-Type``.

    Use it as ``APIRouter(route_class=SerdesRoute)``, or for a whole app with
    :func:`~fastapi_serdes.use_serdes_routes`. Settings come from ``SerdesMiddleware`` when it
    is installed; otherwise from :meth:`with_settings` (or the defaults and the
    ``FASTAPI_SERDES_*`` environment).
    """

    serdes_settings: ClassVar[SerdesSettings | None] = None
    #: The route's response-cache policy (``@cached``), read by ``SerdesMiddleware`` from the
    #: route table; None when it does not cache.
    serdes_cache: CachePolicy | None = None

    @classmethod
    def with_settings(
        cls,
        *,
        codecs: Sequence[Codec] | None = None,
        strict: bool | None = None,
        problem_details: bool = False,
        max_body_size: int | None = None,
        telemetry: Telemetry | bool | None = True,
        answer_head: bool = False,
    ) -> type[SerdesRoute]:
        """A ``SerdesRoute`` subclass with its own settings, for routers used without middleware.

        The keyword arguments are those of :meth:`SerdesSettings.from_kwargs` (``strict`` and
        ``max_body_size`` left None take their ``FASTAPI_SERDES_*`` environment defaults).
        """
        settings = SerdesSettings.from_kwargs(
            codecs=codecs,
            strict=strict,
            problem_details=problem_details,
            max_body_size=max_body_size,
            telemetry=telemetry,
            answer_head=answer_head,
        )
        return type(cls.__name__, (cls,), {"serdes_settings": settings})

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self._user_openapi_extra = user_extra_of(kwargs.get("openapi_extra"))  # see operation_extra
        self._serdes_views: BoundViews | None = None
        self._serdes_field: Any = None  # the response field of the full model (with views)
        super().__init__(path, endpoint, **kwargs)
        self._add_problem_responses()

    def _add_problem_responses(self, problem_details: bool = False) -> None:
        """Document the problem responses when errors are problem documents (the route's own
        settings say so, or ``problem_details`` is True: ``SerdesMiddleware``'s switch)."""
        # OpenAPI is additive: the library's responses never replace one the user declared,
        # and FastAPI's own (422 HTTPValidationError) stay unless errors are problem documents.
        settings = self.serdes_settings
        if not problem_details and (settings is None or not settings.problem_details):
            return
        extra = route_problem_responses(self)
        if self._serdes_views is not None:
            extra = {**extra, **selection_responses(extra)}
        self.responses = {**extra, **self.responses}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # With answer_head: HEAD is GET without a body (RFC 9110 §9.3.2), and a GET route
        # answers it with GET's headers. A partial match only: a HEAD route the app declared,
        # before or after this one, is a full match and wins.
        if scope["type"] == "http" and scope["method"] == "HEAD" and self._answers_head(scope):
            match, child = super().matches({**scope, "method": "GET"})
            return (Match.PARTIAL if match is Match.FULL else match), child
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD" and self._answers_head(scope):
            scope["method"] = "GET"
            try:
                await super().handle(scope, receive, _without_body(send))
            finally:
                scope["method"] = "HEAD"
            return
        await super().handle(scope, receive, send)

    def _answers_head(self, scope: Scope) -> bool:
        """Whether this route answers a HEAD as GET: it declares GET and not HEAD, and the
        settings in force (the middleware's, else the route's own) say ``answer_head``."""
        methods = self.methods or ()
        if "GET" not in methods or "HEAD" in methods:
            return False
        state = state_of(scope)
        settings = state.negotiated.settings if state is not None else self.serdes_settings
        return settings is not None and settings.answer_head

    def _bind_views(self, views: Views) -> None:
        if self.response_field is None:
            raise ValueError(
                f"route {self.path!r}: views need a response model (a return annotation or "
                "response_model=)"
            )
        bound = views.bound.get(self.response_model)
        if bound is None:
            bound = BoundViews(views, self.response_model)
            views.bound[bound.doc_type] = bound
        # The handler validates and serialises with the full model (_serdes_field); OpenAPI,
        # and included copies of this route, see the union of the views.
        self._serdes_views = bound
        self._serdes_field = create_model_field(
            name="Response_" + self.unique_id, type_=bound.response_type, mode="serialization"
        )
        self.response_model = bound.doc_type
        self.response_field = create_model_field(
            name="Response_" + self.unique_id, type_=bound.doc_type, mode="serialization"
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        route: Any = _compat.effective_route(self)
        response_class = route.response_class
        if isinstance(response_class, DefaultPlaceholder):
            response_class = response_class.value
        if not _negotiable(route, response_class):
            return super().get_route_handler()  # FastAPI's as it is
        settings = self.serdes_settings or SerdesSettings.from_kwargs()
        declared: Views | None = getattr(self.endpoint, "__serdes_views__", None)
        if declared is not None and self._serdes_views is None:
            # First call, from APIRoute.__init__: the response model is known by now.
            self._bind_views(declared)
        views = self._serdes_views
        route.openapi_extra = operation_extra(
            route, settings, self._user_openapi_extra, views.views if views else None
        )
        original_field = self._serdes_field if views is not None else route.response_field
        negotiating = negotiating_class(response_class)
        with _compat.swapped(
            route,
            response_field=NegotiatingField(original_field) if original_field else None,
            response_class=(
                Default(negotiating)
                if isinstance(route.response_class, DefaultPlaceholder)
                else negotiating
            ),
        ):
            inner = super().get_route_handler()
        plan = _build_plan(route, settings, original_field, views)
        self.serdes_cache = plan.cache
        return _negotiating_handler(inner, plan)


def _negotiable(route: Any, response_class: type[Response]) -> bool:
    """Whether the route answers with one JSON document the library may encode otherwise: not
    a stream (SSE, JSON Lines), not another type of response class."""
    return not (
        getattr(route, "is_sse_stream", False)
        or getattr(route, "is_json_stream", False)
        or not issubclass(response_class, JSONResponse | ORJSONResponse)
        # A deprecated class (ORJSONResponse, UJSONResponse) warns when subclassed: keep
        # FastAPI's handler (the middleware still transcodes for MessagePack clients).
        or getattr(response_class, "__deprecated__", None) is not None
    )


def _build_plan(
    route: Any, settings: SerdesSettings, response_field: Any, views: BoundViews | None
) -> Plan:
    response_model = response_field.field_info.annotation if response_field is not None else None
    if views is not None:
        response_model = views.response_type
    adapter = TypeAdapter(response_model) if response_model is not None else None
    body_field = route.body_field
    return Plan(
        adapter=adapter,
        settings=settings,
        views=views,
        cache=_cache_policy(route, views),
        route=route.path,
        model_name=type_name(response_model) if response_model is not None else None,
        fragments=_fragments(route, response_model),
        reads_body=body_field is not None and not isinstance(body_field.field_info, params.Form),
        body_name=type_name(body_field.field_info.annotation) if body_field is not None else None,
    )


def _cache_policy(route: Any, views: BoundViews | None) -> CachePolicy | None:
    """The route's cache policy; with views, ``Prefer`` joins its Vary (it picks a view)."""
    policy: CachePolicy | None = getattr(route.endpoint, "__serdes_cache__", None)
    if policy is None or views is None or "prefer" in policy.vary:
        return policy
    return dataclasses.replace(policy, vary=(*policy.vary, "prefer"))


def _negotiating_handler(
    inner: Callable[[Request], Coroutine[Any, Any, Response]], plan: Plan
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    accept_memo: dict[str | None, Negotiated] = {}

    def state_for(scope: Scope) -> RequestState:
        state = state_of(scope)
        if state is None:  # no middleware: negotiate here, memoised per Accept value
            accept = header(scope, b"accept")
            negotiated = accept_memo.get(accept)
            if negotiated is None:
                negotiated = negotiate(accept, plan.settings)
                if len(accept_memo) < 64:
                    accept_memo[accept] = negotiated
            state = scope[SCOPE_KEY] = RequestState(negotiated)
        return state

    async def app(request: Request) -> Response:
        scope = request.scope
        state = state_for(scope)
        negotiated = state.negotiated
        recorder = request_recorder(scope, negotiated.settings.telemetry)
        if recorder is not None:
            state.route = plan.route
        try:
            codec = negotiated.codec
            if codec is None:
                raise not_acceptable(negotiated.settings)
            encoding = Encoding(negotiated, plan, JSON_MEDIA_TYPE in codec.media_types)
            encoding.recorder = recorder
            view_headers: list[tuple[bytes, bytes]] = []
            if plan.views is not None:
                encoding.options, view_headers, state.selection = plan.views.choose(request)
                encoding.selection = state.selection
            if plan.reads_body:
                await decode_request_body(
                    request, negotiated.settings, recorder, plan.route, plan.body_name
                )
        except ProblemError as exc:
            if recorder is not None:
                recorder.problem(exc.status, exc.type, plan.route)
            raise
        token = ENCODING.set(encoding)
        try:
            flight = flight_key(plan.cache, request, negotiated) if plan.cache else None
            if flight is None:
                response = await inner(request)
            else:
                response = await _once(plan, state, flight, request, inner, encoding)
        finally:
            ENCODING.reset(token)
        if not encoding.used:
            return response  # the endpoint's own Response: it passes as it is
        return respond(
            request,
            state,
            response,
            media_type=None if encoding.json else negotiated.media_type,
            views=plan.views is not None,
            cache=plan.cache,
            view_headers=view_headers,
        )

    return app


async def _once(
    plan: Plan,
    state: RequestState,
    flight: str,
    request: Request,
    inner: Callable[[Request], Coroutine[Any, Any, Response]],
    encoding: Encoding,
) -> Response:
    """Concurrent equal GETs of a ``@cached`` route: one computes, the others share its
    answer when it may be shared (otherwise each computes its own). A follower that began
    after an invalidation of the answer's tags which the leader's computation predates
    computes its own: it must see what the invalidating write changed."""
    cache = shared_cache(request.scope)
    tags = [path_tag(request.scope)]
    if plan.cache is not None and plan.cache.tags is not None:
        tags.extend(plan.cache.tags(request))

    def share(result: Response | Produced) -> Produced | None:
        if isinstance(result, Produced):
            return result
        produced = shareable(result) if encoding.used else None
        if produced is not None:
            produced.since = state.since  # the leader's clock reading
        return produced

    async def compute() -> Response | Produced:
        if cache is None:
            return await inner(request)
        # Many replicas: a short lock in the shared store makes it once per cluster.
        return await once_per_cluster(cache, flight, inner(request), share, tags, state.since)

    result = await plan.flights.run(flight, compute, share)
    if isinstance(result, Produced):
        if await _predates_an_invalidation(result, state, tags):
            return await inner(request)
        encoding.used = True
        state.borrowed = True
        return result.to_response()
    return result


async def _predates_an_invalidation(
    produced: Produced, state: RequestState, tags: list[str]
) -> bool:
    """Whether a shared answer was computed from before an invalidation of its tags that this
    request began after (its clock reading is later than the leader's, and a tag was marked
    in between)."""
    theirs, ours = produced.since, state.since
    if theirs is None or ours is None or theirs >= ours or state.cache is None:
        return False
    return await state.cache.invalidated_since(tags, theirs)


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


def _without_body(send: Send) -> Send:
    """A send that drops body bytes (HEAD) but keeps every header, Content-Length included."""

    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only
