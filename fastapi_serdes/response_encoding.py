"""How FastAPI's serialisation answers in the negotiated codec, for ``SerdesRoute``.

``SerdesRoute`` builds FastAPI's own handler with two parts swapped in: a response field
(:class:`NegotiatingField`) and a JSON response class (:func:`negotiating_class`). FastAPI calls
them without the request, so the request's answer format (:class:`Encoding`: codec, view options,
telemetry) reaches them through a context variable the route sets around the handler call. JSON
clients get FastAPI's own serialisation; other codecs encode the value FastAPI validated.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import ResponseValidationError
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ._types import Codec, Scope
from .cache import CachePolicy, SingleFlight, credentialed
from .cache.conditional import etag_for, not_modified
from .cache.fragments import Fragments
from .problems import EncodeError, ProblemError
from .settings import Negotiated, SerdesSettings, header
from .state import RequestState
from .telemetry import Recorder
from .telemetry.spans import encode_span
from .vary import route_vary
from .views import BoundViews

logger = logging.getLogger("fastapi_serdes")


def encode_failed(reason: str) -> ProblemError:
    """The 500 problem for a value the codec cannot represent (logged by the caller).

    ``reason`` is the codec's :class:`EncodeError` message: it names the codec and the field.
    """
    return ProblemError.of("encode-failed", f"The response could not be encoded: {reason}")


@dataclass(slots=True)
class Plan:
    """What a route needs per request, compiled once when its handler is built."""

    adapter: TypeAdapter[Any] | None
    settings: SerdesSettings
    views: BoundViews | None = None
    cache: CachePolicy | None = None
    flights: SingleFlight = field(default_factory=lambda: SingleFlight())
    # For telemetry: the route template, and the name of the response model.
    route: str | None = None
    model_name: str | None = None
    fragments: Fragments | None = None
    # Whether the route reads a body the library may decode (not a form), and its type's name.
    reads_body: bool = False
    body_name: str | None = None


@dataclass(slots=True)
class Encoding:
    """One request's answer format, read by the response field and class FastAPI calls."""

    negotiated: Negotiated
    plan: Plan
    json: bool
    options: dict[str, Any] | None = None  # the selected view's dump options
    recorder: Recorder | None = None
    selection: Any = None
    used: bool = False  # FastAPI serialised the endpoint's value through us

    def dump_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options if self.options is None else {**options, **self.options}

    def encode(self, value: Any, options: dict[str, Any], *, typed: bool) -> bytes:
        """A value FastAPI validated (``typed``: of the response type; else the JSON-able
        content of a response class), in the negotiated (non-JSON) codec."""
        plan = self.plan
        codec = self.negotiated.codec
        assert codec is not None
        # pydantic's defaults stay implicit: a codec's fast paths look at what is set.
        opts = {k: v for k, v in options.items() if v not in (None, False) or k == "by_alias"}
        adapter, fragments = (plan.adapter, plan.fragments) if typed else (None, None)

        def encode() -> bytes:
            return encode_validated(codec, value, adapter, opts, fragments)

        recorder = self.recorder
        if recorder is None:
            return encode()
        return encode_span(
            recorder,
            encode,
            media_type=self.negotiated.media_type,
            codec=codec,
            model=plan.model_name,
            selection=self.selection,
            route=plan.route,
        )


# The answer format of the request being handled. FastAPI calls the response field and class
# without the request; a context variable is how they learn it (as FastAPI's own effective
# route context does). Set and reset around each call of FastAPI's handler.
ENCODING: ContextVar[Encoding | None] = ContextVar("fastapi_serdes_encoding", default=None)


class NegotiatingField:
    """FastAPI's response field, serialising in the request's codec and view.

    FastAPI validates with the field as it is (``validate`` is the original's); JSON is
    FastAPI's own serialisation, with the selected view's options.
    """

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
        if encoding is None:
            return bytes(self._field.serialize_json(value, **options))
        options = encoding.dump_options(options)
        encoding.used = True
        if encoding.json:
            return bytes(self._field.serialize_json(value, **options))
        return encoding.encode(value, options, typed=True)

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
        if encoding is None or encoding.json:
            return cls.render(self, content)
        self.media_type = encoding.negotiated.media_type
        return encoding.encode(content, {}, typed=False)

    return type(cls.__name__, (cls,), {"render": render, "__module__": cls.__module__})


def encode_value(
    codec: Codec, raw: Any, adapter: TypeAdapter[Any] | None, options: dict[str, Any]
) -> bytes:
    """A response value validated into ``adapter``'s type, then :func:`encode_validated`."""
    value = raw
    if adapter is not None:
        try:
            value = adapter.validate_python(raw, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(errors=exc.errors(include_url=False), body=raw) from None
    return encode_validated(codec, value, adapter, options)


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


def respond(
    request: Request,
    state: RequestState,
    response: Response,
    *,
    media_type: str | None,
    views: bool,
    cache: CachePolicy | None,
    view_headers: list[tuple[bytes, bytes]],
) -> Response:
    """What FastAPI's handler answered, with what the negotiation adds: the negotiated
    ``Content-Type`` (``media_type``, None to keep FastAPI's), ``Vary``, the ETag of a GET's
    200 and the 304 when the client holds it, the mark that lets the response cache store it."""
    scope = request.scope
    code = response.status_code
    headers = response.raw_headers
    if media_type is not None and is_body_allowed_for_status_code(code):
        headers[:] = [(k, v) for k, v in headers if k != b"content-type"]
        headers.append((b"content-type", media_type.encode("latin-1")))
    get_ok = code == 200 and scope["method"] in ("GET", "HEAD")
    policy = _storable(cache, scope) if get_ok else None
    if policy is None:
        route_vary(headers, views=views)
    else:  # a per-principal entry varies on the credentials the request carried
        request_headers = scope["headers"] if policy.key else None
        route_vary(headers, views=views, declared=policy.vary, request_headers=request_headers)
    headers.extend(view_headers)
    return _tagged(request, state, response, policy) if get_ok else response


def _tagged(
    request: Request, state: RequestState, response: Response, policy: CachePolicy | None
) -> Response:
    """A GET's 200 with its strong ETag (marked storable under ``policy``), or the 304 when
    the client holds it."""
    headers = response.raw_headers
    etag = etag_for(bytes(response.body))
    headers.append((b"etag", etag.encode("latin-1")))
    if policy is not None:
        _mark_cacheable(policy, request, state, headers)
    kept = not_modified(headers, header(request.scope, b"if-none-match"), etag)
    if kept is None:
        return response
    answer = Response(status_code=304, background=response.background)
    answer.raw_headers = kept
    return answer


def _storable(cache: CachePolicy | None, scope: Scope) -> CachePolicy | None:
    """The route's cache policy, unless a shared entry would hold what a credentialed request
    got (only a per-principal key may)."""
    if cache is None or (cache.key is None and credentialed(scope)):
        return None
    return cache


def _mark_cacheable(
    policy: CachePolicy, request: Request, state: RequestState, headers: list[Any]
) -> None:
    """Tell SerdesMiddleware, in the request's state, that this response may be stored, with
    its policy and tags."""
    state.policy = policy
    if policy.tags is not None:
        state.tags = list(policy.tags(request))
    if policy.cache_control is not None and not any(k == b"cache-control" for k, _ in headers):
        headers.append((b"cache-control", policy.cache_control.encode("latin-1")))
