"""How FastAPI's serialisation answers in the negotiated codec, for ``SerdesRoute``.

FastAPI calls the response field (:class:`NegotiatingField`) and the response class
(:func:`negotiating_class`) the route swaps in without the request: the request's
:class:`Encoding` reaches them through a context variable the route sets around the handler
call. JSON clients get FastAPI's own serialisation; other codecs encode the value FastAPI
validated.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import params
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from ._types import Codec, Scope
from .cache import CachePolicy, SingleFlight, credentialed
from .cache.conditional import etag_for, not_modified
from .cache.fragments import Fragments
from .problems import EncodeError, ProblemError
from .settings import SerdesSettings, header
from .state import RequestState
from .telemetry import Recorder
from .telemetry.spans import encode_span, type_name
from .vary import route_vary
from .views import BoundViews

logger = logging.getLogger("fastapi_serdes")


def encode_failed(reason: str) -> ProblemError:
    """The 500 problem for a value the codec cannot represent (``reason``: the codec's
    :class:`EncodeError` message, naming the codec and the field)."""
    return ProblemError.of("encode-failed", f"The response could not be encoded: {reason}")


@dataclass(slots=True)
class Plan:
    """What a route needs per request, compiled once when its handler is built."""

    adapter: TypeAdapter[Any] | None
    settings: SerdesSettings
    views: BoundViews | None
    cache: CachePolicy | None
    fragments: Fragments | None
    route: str  # the route template, for telemetry
    model_name: str | None  # the response model's name, for telemetry
    body_name: str | None  # the type of a body the library may decode (None: none, or a form)
    flights: SingleFlight = field(default_factory=SingleFlight)


def plan_for(
    route: Any, settings: SerdesSettings, response_field: Any, views: BoundViews | None
) -> Plan:
    """The plan of a route (as included) answering with ``response_field``'s type."""
    model = response_field.field_info.annotation if response_field is not None else None
    body = getattr(route.body_field, "field_info", None)
    if isinstance(body, params.Form):
        body = None  # forms are FastAPI's alone
    policy: CachePolicy | None = getattr(route.endpoint, "__serdes_cache__", None)
    if policy is not None and views is not None and "prefer" not in policy.vary:
        policy = replace(policy, vary=(*policy.vary, "prefer"))  # Prefer picks a view
    return Plan(
        adapter=TypeAdapter(model) if model is not None else None,
        settings=settings,
        views=views,
        cache=policy,
        fragments=_fragments(route, model),
        route=route.path,
        model_name=type_name(model) if model is not None else None,
        body_name=type_name(body.annotation) if body is not None else None,
    )


def _fragments(route: Any, model: Any) -> Fragments | None:
    """The route's fragment cache when it declared one; its response must be a list."""
    declared = getattr(route.endpoint, "__serdes_fragments__", None)
    if declared is None:
        return None
    args = typing.get_args(model)
    if typing.get_origin(model) is not list or len(args) != 1:
        raise TypeError(
            f"cached_fragments() on {route.path!r} needs a list response (list[Item]), "
            f"got {model!r}"
        )
    version, max_bytes = declared
    return Fragments(version, args[0], max_bytes)


@dataclass(slots=True)
class Encoding:
    """One request's answer format, read by the response field and class FastAPI calls."""

    state: RequestState
    plan: Plan
    codec: Codec
    # The negotiated media type; None when its codec is JSON: FastAPI's own serialisation.
    media_type: str | None
    recorder: Recorder | None
    options: dict[str, Any] | None = None  # the selected view's dump options
    view_headers: Sequence[tuple[bytes, bytes]] = ()
    used: bool = False  # FastAPI serialised the endpoint's value through us

    def dump_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options if self.options is None else {**options, **self.options}

    def encode(self, value: Any, options: dict[str, Any], *, typed: bool) -> bytes:
        """A value FastAPI validated (``typed``: of the response type; else the JSON-able
        content of a response class), in the negotiated (non-JSON) codec."""
        plan = self.plan
        # pydantic's defaults stay implicit: a codec's fast paths look at what is set.
        opts = {k: v for k, v in options.items() if v not in (None, False) or k == "by_alias"}
        adapter, fragments = (plan.adapter, plan.fragments) if typed else (None, None)

        def encode() -> bytes:
            return encode_validated(self.codec, value, adapter, opts, fragments)

        if self.recorder is None:
            return encode()
        return encode_span(
            self.recorder,
            encode,
            media_type=self.media_type,
            codec=self.codec,
            model=plan.model_name,
            selection=self.state.selection,
            route=plan.route,
        )


# Set and reset by the route around each call of FastAPI's handler (as FastAPI's own effective
# route context is).
ENCODING: ContextVar[Encoding | None] = ContextVar("fastapi_serdes_encoding", default=None)


class NegotiatingField:
    """FastAPI's response field, serialising in the request's codec and view; FastAPI validates
    with the original field."""

    __slots__ = ("_field", "validate")

    def __init__(self, original: Any) -> None:
        self._field = original
        # Read by FastAPI on every request: bound here, not found through __getattr__ (a
        # failed slot lookup first: about 4 us a request).
        self.validate = original.validate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._field, name)

    def serialize_json(self, value: Any, **options: Any) -> bytes:
        encoding = ENCODING.get()
        if encoding is not None:
            encoding.used = True
            options = encoding.dump_options(options)
            if encoding.media_type is not None:
                return encoding.encode(value, options, typed=True)
        return bytes(self._field.serialize_json(value, **options))

    def serialize(self, value: Any, **options: Any) -> Any:
        # An explicit JSON response class renders what this returns.
        encoding = ENCODING.get()
        if encoding is not None:
            options = encoding.dump_options(options)
        return self._field.serialize(value, **options)


def negotiating_class(cls: type[Response]) -> type[Response]:
    """A subclass of a JSON response class that renders in the request's codec; JSON clients
    get the class's own rendering (a custom ``render`` or ``media_type`` included)."""

    def render(self: Response, content: Any) -> bytes | memoryview:
        encoding = ENCODING.get()
        if encoding is not None:
            encoding.used = True
            if encoding.media_type is not None:
                self.media_type = encoding.media_type
                return encoding.encode(content, {}, typed=False)
        return cls.render(self, content)

    return type(cls.__name__, (cls,), {"render": render, "__module__": cls.__module__})


def encode_validated(
    codec: Codec,
    value: Any,
    adapter: TypeAdapter[Any] | None,
    options: dict[str, Any],
    fragments: Fragments | None = None,
) -> bytes:
    """A valid value encoded; a value the codec refuses is logged and becomes a 500 problem."""
    try:
        if fragments is not None and isinstance(value, list):
            joined = fragments.encode(value, codec, options)
            if joined is not None:
                return joined
        return codec.encode(value, adapter, options)
    except EncodeError as exc:
        logger.error("fastapi-serdes: refusing to encode a response: %s", exc)
        raise encode_failed(str(exc)) from None


def respond(request: Request, response: Response, encoding: Encoding) -> Response:
    """What FastAPI's handler answered, with what the negotiation adds: the negotiated
    ``Content-Type``, ``Vary``, the view's headers, and for a GET's 200 its ETag (or the 304)."""
    scope, state = request.scope, encoding.state
    code = response.status_code
    headers = response.raw_headers
    media_type = encoding.media_type
    if media_type is not None and is_body_allowed_for_status_code(code):
        headers[:] = [(k, v) for k, v in headers if k != b"content-type"]
        headers.append((b"content-type", media_type.encode("latin-1")))
    get_ok = code == 200 and scope["method"] in ("GET", "HEAD")
    policy = _storable(encoding.plan.cache, scope) if get_ok else None
    views = encoding.plan.views is not None
    if policy is None:
        route_vary(headers, views=views)
    else:  # a per-principal entry varies on the credentials the request carried
        request_headers = scope["headers"] if policy.key else None
        route_vary(headers, views=views, declared=policy.vary, request_headers=request_headers)
    headers.extend(encoding.view_headers)
    return _tagged(request, state, response, policy) if get_ok else response


def _storable(cache: CachePolicy | None, scope: Scope) -> CachePolicy | None:
    """The route's cache policy, unless a shared entry would hold what a credentialed request
    got (only a per-principal key may)."""
    if cache is None or (cache.key is None and credentialed(scope)):
        return None
    return cache


def _tagged(
    request: Request, state: RequestState, response: Response, policy: CachePolicy | None
) -> Response:
    """A GET's 200 with its strong ETag (marked for the response cache to store under
    ``policy``), or the 304 when the client holds it."""
    headers = response.raw_headers
    etag = etag_for(bytes(response.body))
    headers.append((b"etag", etag.encode("latin-1")))
    if policy is not None:
        state.policy = policy
        if policy.tags is not None:
            state.tags = list(policy.tags(request))
        if policy.cache_control is not None and not any(k == b"cache-control" for k, _ in headers):
            headers.append((b"cache-control", policy.cache_control.encode("latin-1")))
    kept = not_modified(headers, header(request.scope, b"if-none-match"), etag)
    if kept is None:
        return response
    answer = Response(status_code=304, background=response.background)
    answer.raw_headers = kept
    return answer
