"""``SerdesRoute``: FastAPI's own request handler, answering in the format the client asked for.

The route builds FastAPI's handler as ``APIRoute`` does (through
``fastapi.routing.get_request_handler``, so integrations that wrap it keep working), with a
response field and a response class that serialise in the negotiated codec swapped in. A client
that asks for nothing new (JSON or no ``Accept``, no view) gets FastAPI's bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar

from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from . import _compat
from ._types import Codec, Message, Receive, Scope, Send
from .cache import CachePolicy, path_tag
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
    plan_for,
    respond,
)
from .settings import Negotiated, SerdesSettings, header, negotiate
from .state import SCOPE_KEY, RequestState, state_of
from .telemetry import Telemetry, request_recorder
from .views import BoundViews, Views

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


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
        self._user_openapi_extra = user_extra_of(kwargs.get("openapi_extra"))
        self._serdes_views: BoundViews | None = None
        super().__init__(path, endpoint, **kwargs)
        self._add_problem_responses()

    def _add_problem_responses(self, problem_details: bool = False) -> None:
        """Document the problem responses when the route's settings, or ``problem_details``
        (``SerdesMiddleware``'s switch), make errors problem documents."""
        settings = self.serdes_settings
        if not problem_details and (settings is None or not settings.problem_details):
            return
        extra = route_problem_responses(self)
        if self._serdes_views is not None:
            extra = {**extra, **selection_responses(extra)}
        self.responses = {**extra, **self.responses}  # a response the user declared wins

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # A HEAD answered as GET is a partial match only: a HEAD route the app declared wins.
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
        """Whether this route answers HEAD as GET: it declares GET and not HEAD, and the settings
        in force (the middleware's, else the route's own) say ``answer_head``."""
        methods = self.methods or ()
        if "GET" not in methods or "HEAD" in methods:
            return False
        state = state_of(scope)
        settings = state.negotiated.settings if state is not None else self.serdes_settings
        return settings is not None and settings.answer_head

    def _bind_views(self) -> None:
        """Bind the endpoint's ``Views`` (first call, from ``APIRoute.__init__``): the handler
        serialises with the full model; OpenAPI, and included copies, see the views' union."""
        declared: Views | None = getattr(self.endpoint, "__serdes_views__", None)
        if declared is None or self._serdes_views is not None:
            return
        if self.response_field is None:
            raise ValueError(
                f"route {self.path!r}: views need a response model (a return annotation or "
                "response_model=)"
            )
        bound = declared.bound.get(self.response_model)
        if bound is None:  # found again by included copies, whose model is the union
            bound = BoundViews(declared, self.response_model)
            declared.bound[bound.doc_type] = bound
        self._serdes_views = bound
        self.response_model = bound.doc_type
        self.response_field = self._field(bound.doc_type)

    def _field(self, model: Any) -> Any:
        return create_model_field("Response_" + self.unique_id, model, mode="serialization")

    def get_route_handler(self) -> Handler:
        route: Any = _compat.effective_route(self)
        response_class = route.response_class
        default = isinstance(response_class, DefaultPlaceholder)
        if default:
            response_class = response_class.value
        if not _negotiable(route, response_class):
            return super().get_route_handler()  # FastAPI's as it is
        settings = self.serdes_settings or SerdesSettings.from_kwargs()
        self._bind_views()
        views = self._serdes_views
        route.openapi_extra = operation_extra(
            route, settings, self._user_openapi_extra, views.views if views else None
        )
        field = route.response_field if views is None else self._field(views.response_type)
        negotiating = negotiating_class(response_class)
        with _compat.swapped(
            route,
            response_field=NegotiatingField(field) if field else None,
            response_class=Default(negotiating) if default else negotiating,
        ):
            inner = super().get_route_handler()
        plan = plan_for(route, settings, field, views)
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


def _negotiating_handler(inner: Handler, plan: Plan) -> Handler:
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
        state = state_for(request.scope)
        negotiated = state.negotiated
        recorder = request_recorder(request.scope, negotiated.settings.telemetry)
        state.route = plan.route  # for telemetry
        try:
            codec = negotiated.codec
            if codec is None:
                raise not_acceptable(negotiated.settings)
            media_type = None if JSON_MEDIA_TYPE in codec.media_types else negotiated.media_type
            encoding = Encoding(state, plan, codec, media_type, recorder)
            if plan.views is not None:
                chosen = plan.views.choose(request)
                encoding.options, encoding.view_headers, state.selection = chosen
            if plan.body_name is not None:
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
            response = await (
                inner(request) if flight is None else _once(request, inner, encoding, flight)
            )
        finally:
            ENCODING.reset(token)
        # Not used: the endpoint's own Response, which passes as it is.
        return respond(request, response, encoding) if encoding.used else response

    return app


async def _once(request: Request, inner: Handler, encoding: Encoding, flight: str) -> Response:
    """Concurrent equal GETs of a ``@cached`` route: one computes, the others share its answer
    when it may be shared (otherwise each computes its own)."""
    state, policy = encoding.state, encoding.plan.cache
    cache = shared_cache(request.scope)
    tags = [path_tag(request.scope)]
    if policy is not None and policy.tags is not None:
        tags.extend(policy.tags(request))

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

    result = await encoding.plan.flights.run(flight, compute, share)
    if not isinstance(result, Produced):
        return result
    if await _predates_an_invalidation(result, state, tags):
        return await inner(request)
    encoding.used = True
    state.borrowed = True
    return result.to_response()


async def _predates_an_invalidation(
    produced: Produced, state: RequestState, tags: list[str]
) -> bool:
    """Whether a shared answer was computed before an invalidation of its tags that this request
    began after: then this request computes its own, to see what the invalidating write changed."""
    theirs, ours = produced.since, state.since
    if theirs is None or ours is None or theirs >= ours or state.cache is None:
        return False
    return await state.cache.invalidated_since(tags, theirs)


def _without_body(send: Send) -> Send:
    """A send that drops body bytes (HEAD) but keeps every header, Content-Length included."""

    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only
