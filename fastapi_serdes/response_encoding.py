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
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from ._types import Codec
from .cache import CachePolicy, SingleFlight
from .cache.fragments import Fragments
from .problems import EncodeError, ProblemError
from .settings import Negotiated, SerdesSettings
from .telemetry import Recorder
from .telemetry.spans import encode_span
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
