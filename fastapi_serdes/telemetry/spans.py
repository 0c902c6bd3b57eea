"""Per-operation span helpers that ``SerdesRoute`` and ``SerdesMiddleware`` call, only with a
:class:`~fastapi_serdes.telemetry.Recorder` (telemetry on)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from ..state import state_of
from . import (
    ATTR_BYTES_IN,
    ATTR_BYTES_OUT,
    ATTR_CODEC,
    ATTR_CODING,
    ATTR_FIELD_COUNT,
    ATTR_LEVEL,
    ATTR_MEDIA_TYPE,
    ATTR_MODEL,
    ATTR_RATIO,
    ATTR_ROUTE,
    ATTR_STREAMING,
    ATTR_VIEW,
    SPAN_COMPRESS,
    SPAN_DECODE,
    SPAN_ENCODE,
    Attributes,
    Recorder,
    known,
)

_DOTTED: Final = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")
T = TypeVar("T")


def coding_sizes(compressed: int, identity: int, *, decoding: bool) -> Attributes:
    """The bytes in and out of one compression (``decoding=False``) or decompression, and the
    compressed / identity ratio."""
    size_in, size_out = (compressed, identity) if decoding else (identity, compressed)
    attributes: Attributes = {ATTR_BYTES_IN: size_in, ATTR_BYTES_OUT: size_out}
    if identity:
        attributes[ATTR_RATIO] = round(compressed / identity, 4)
    return attributes


def route_of(scope: Mapping[str, Any]) -> str | None:
    """The route template that answered (``/users/{user_id}``), once routing has happened.

    ``SerdesRoute`` says it; for other routes it is the matched route's path, which misses the
    prefix of an included router on FastAPI releases that route through the original route.
    """
    state = state_of(scope)
    path = state.route if state is not None else None
    if path is None:
        path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def media_type_of(content_type: bytes | str | None) -> str | None:
    """The media type of a ``Content-Type`` value, parameters dropped (a bounded label)."""
    if content_type is None:
        return None
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return content_type.split(";", 1)[0].strip().lower()


def type_name(tp: Any) -> str:
    """A short name for a model or type annotation: ``User``, ``list[User]``."""
    if isinstance(tp, type) and not getattr(tp, "__args__", None):
        return tp.__name__
    return _DOTTED.sub(r"\1", str(tp))


def encode_span(
    recorder: Recorder,
    call: Callable[[], bytes],
    *,
    media_type: str | None,
    codec: object,
    model: str | None,
    selection: Any,
    route: str | None,
) -> bytes:
    """Run an encode in a ``serdes.encode`` span; ``selection`` is the client's view choice."""
    attributes, labels = _codec_attributes(codec, media_type, route, model)
    paths = getattr(selection, "paths", None)
    view = getattr(selection, "view", None)
    attributes |= known({ATTR_VIEW: view, ATTR_FIELD_COUNT: None if paths is None else len(paths)})
    return recorder.measure(SPAN_ENCODE, call, attributes, labels)


def decode_span(
    recorder: Recorder,
    call: Callable[[], T],
    *,
    content_type: str | None,
    codec: object,
    model: str | None,
    size: int,
    route: str | None,
) -> T:
    """Run a request body decode in a ``serdes.decode`` span."""
    attributes, labels = _codec_attributes(codec, media_type_of(content_type), route, model)
    attributes[ATTR_BYTES_IN] = size
    return recorder.measure(SPAN_DECODE, call, attributes, labels)


def _codec_attributes(
    codec: object, media_type: str | None, route: str | None, model: str | None
) -> tuple[Attributes, Attributes]:
    """The span attributes and metric labels an encode and a decode share."""
    name = getattr(codec, "name", None)  # ``json``, ``msgpack``; else the class name
    codec_name = name if isinstance(name, str) else type(codec).__name__
    labels = known({ATTR_MEDIA_TYPE: media_type, ATTR_ROUTE: route})
    return known({ATTR_CODEC: codec_name, **labels, ATTR_MODEL: model}), labels


class CompressTrace:
    """One response's compression: a ``serdes.compress`` span from the first compressed byte to
    the last (a streaming response's span ends with its last chunk), and its measurements."""

    __slots__ = ("_labels", "_recorder", "_span", "seconds", "size_in", "size_out")

    def __init__(
        self,
        recorder: Recorder,
        *,
        coding: str,
        level: int | None,
        content_type: bytes | None,
        route: str | None,
        streaming: bool,
    ) -> None:
        media_type = media_type_of(content_type)
        self._labels = known({ATTR_CODING: coding, ATTR_MEDIA_TYPE: media_type, ATTR_ROUTE: route})
        attributes = known({**self._labels, ATTR_STREAMING: streaming, ATTR_LEVEL: level})
        self._recorder = recorder
        self._span = recorder.start(SPAN_COMPRESS, attributes)
        self.seconds = 0.0
        self.size_in = 0
        self.size_out = 0

    def add(self, seconds: float, size_in: int, size_out: int) -> None:
        """Account for one compressed chunk (or the whole body)."""
        self.seconds += seconds
        self.size_in += size_in
        self.size_out += size_out

    def finish(self) -> None:
        """End the span with the byte counts and ratio; record the metrics."""
        size_in, size_out = self.size_in, self.size_out
        self._recorder.end(self._span, coding_sizes(size_out, size_in, decoding=False))
        self._recorder.compressed(self.seconds, size_in, size_out, self._labels)

    def fail(self, exc: BaseException) -> None:
        """End the span as failed (an encoder raised)."""
        self._recorder.fail(self._span, exc)
