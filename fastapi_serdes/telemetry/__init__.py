"""OpenTelemetry: every span, attribute and metric name, and the recorder the hot path calls.

Spans are ``INTERNAL`` children of the current span: the library never starts a server span.
When nobody listens :meth:`Telemetry.active` returns None, and the hot path skips everything
after that one check (not even no-op spans); while no global provider is configured it looks
again at most once a second, so one set after the app was built is picked up.

Telemetry never fails a request: whatever a span processor or an instrument raises is caught
and logged once. Attributes never carry request headers, cache keys or body content.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from ..problems import DecodeError, EncodeError, ProblemError
from ..state import state_of

logger = logging.getLogger("fastapi_serdes")

#: The instrumentation scope name of every span and instrument.
INSTRUMENTATION_NAME: Final = "fastapi_serdes"

# Span names.
SPAN_DECODE: Final = "serdes.decode"
SPAN_ENCODE: Final = "serdes.encode"
SPAN_COMPRESS: Final = "serdes.compress"
SPAN_DECOMPRESS: Final = "serdes.decompress"
SPAN_CACHE: Final = "serdes.cache"

# Attribute names (spans and metrics).
ATTR_ROUTE: Final = "http.route"
ATTR_STATUS: Final = "http.response.status_code"
ATTR_MEDIA_TYPE: Final = "serdes.media_type"
ATTR_CODEC: Final = "serdes.codec"
ATTR_MODEL: Final = "serdes.model"
ATTR_VIEW: Final = "serdes.view"
ATTR_FIELD_COUNT: Final = "serdes.field_count"
ATTR_BYTES_IN: Final = "serdes.bytes_in"
ATTR_BYTES_OUT: Final = "serdes.bytes_out"
ATTR_CODING: Final = "serdes.compress.coding"
ATTR_LEVEL: Final = "serdes.compress.level"
ATTR_RATIO: Final = "serdes.compress.ratio"
ATTR_STREAMING: Final = "serdes.compress.streaming"
ATTR_CACHE_RESULT: Final = "serdes.cache.result"
ATTR_CACHE_STORE: Final = "serdes.cache.store"
ATTR_PROBLEM: Final = "serdes.problem"

#: Values of :data:`ATTR_CACHE_RESULT`.
CACHE_HIT: Final = "hit"
CACHE_MISS: Final = "miss"
CACHE_STALE: Final = "stale"

# Metric instrument names.
METRIC_DECODE_DURATION: Final = "serdes.decode.duration"
METRIC_ENCODE_DURATION: Final = "serdes.encode.duration"
METRIC_COMPRESS_DURATION: Final = "serdes.compress.duration"
METRIC_DECODE_SIZE: Final = "serdes.decode.body.size"
METRIC_ENCODE_SIZE: Final = "serdes.encode.body.size"
METRIC_COMPRESS_SIZE: Final = "serdes.compress.body.size"
METRIC_COMPRESS_RATIO: Final = "serdes.compress.ratio"
METRIC_CACHE_LOOKUPS: Final = "serdes.cache.lookups"
METRIC_PROBLEMS: Final = "serdes.problems"
METRIC_DECODE_ERRORS: Final = "serdes.decode.errors"

#: Each histogram: name -> (the operation, what it measures, unit, description).
HISTOGRAMS: Final = {
    METRIC_DECODE_DURATION: ("decode", "duration", "s", "Request body decoding"),
    METRIC_ENCODE_DURATION: ("encode", "duration", "s", "Response encoding"),
    METRIC_COMPRESS_DURATION: ("compress", "duration", "s", "Compression CPU time"),
    METRIC_DECODE_SIZE: ("decode", "bytes", "By", "Request bodies decoded"),
    METRIC_ENCODE_SIZE: ("encode", "bytes", "By", "Response bodies encoded"),
    METRIC_COMPRESS_SIZE: ("compress", "bytes", "By", "Compressed response bodies"),
    METRIC_COMPRESS_RATIO: ("compress", "ratio", "1", "Compressed / identity"),
}
# counter name -> (unit, description)
_COUNTERS: Final = {
    METRIC_CACHE_LOOKUPS: ("{lookup}", "Response cache lookups"),
    METRIC_PROBLEMS: ("{response}", "4xx the library answered"),
    METRIC_DECODE_ERRORS: ("{body}", "Bodies that failed to decode"),
}

_RECHECK_SECONDS: Final = 1.0
# The API's stand-ins until an SDK provider is set globally (FastAPI tests for them the same way:
# the API has no public "is configured" query).
_DEFERRED: Final = (
    ("opentelemetry.trace", "ProxyTracerProvider"),
    ("opentelemetry.metrics._internal", "_ProxyMeterProvider"),
)

Attributes = dict[str, str | int | float | bool]
T = TypeVar("T")


class Telemetry:
    """Where spans and metrics go: ``SerdesMiddleware(telemetry=Telemetry(...))``.

    ``telemetry=True`` (the default) means ``Telemetry()``: the global providers.
    ``telemetry=False`` switches every span and measurement off.

    Args:
        tracer_provider: the provider of the spans (default: the global one).
        meter_provider: the provider of the histograms and counters (default: the global one).
        tracing: False for metrics without spans.
        metrics: False for spans without metrics.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        tracing: bool = True,
        metrics: bool = True,
    ) -> None:
        for name, value in (("tracing", tracing), ("metrics", metrics)):
            if not isinstance(value, bool):
                raise TypeError(f"Telemetry {name} must be True or False, got {value!r}")
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.tracing = tracing
        self.metrics = metrics
        self._recorder: Recorder | None = None
        self._settled = not tracing and not metrics
        self._next_check = 0.0

    def __repr__(self) -> str:
        return f"Telemetry(tracing={self.tracing}, metrics={self.metrics})"

    def active(self) -> Recorder | None:
        """The recorder to use for this request; None when nobody listens (the fast path)."""
        if self._settled:
            return self._recorder
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + _RECHECK_SECONDS
            self._resolve()
        return self._recorder

    def _resolve(self) -> None:
        tracer, tracing_settled = _source(
            self.tracing, self._tracer_provider, trace.get_tracer_provider, "get_tracer"
        )
        meter, metrics_settled = _source(
            self.metrics, self._meter_provider, metrics.get_meter_provider, "get_meter"
        )
        current = self._recorder
        if current is None or current.tracer is not tracer or current.meter is not meter:
            self._recorder = Recorder(tracer, meter) if tracer or meter else None
        self._settled = tracing_settled and metrics_settled


def _source(
    on: bool, provider: Any, global_provider: Callable[[], Any], getter: str
) -> tuple[Any, bool]:
    """What one signal's provider gives (a tracer or a meter; None when off or a no-op), and
    whether that is final (not while the global provider is the API's stand-in)."""
    if not on:
        return None, True
    provider = provider or global_provider()
    if (type(provider).__module__, type(provider).__name__) in _DEFERRED:
        return None, False
    from .. import __version__

    source = getattr(provider, getter)(INSTRUMENTATION_NAME, __version__)
    # The API's no-op providers give no-ops, and so does an SDK with OTEL_SDK_DISABLED=true.
    return (None if isinstance(source, trace.NoOpTracer | metrics.NoOpMeter) else source), True


def telemetry_setting(value: Telemetry | bool | None) -> Telemetry | None:
    """A ``telemetry=`` keyword: a :class:`Telemetry`, True for the global providers, or off."""
    if value is None or value is False:
        return None
    if value is True:
        return Telemetry()
    if isinstance(value, Telemetry):
        return value
    raise TypeError(f"telemetry must be a Telemetry, True, False or None, got {value!r}")


def known(attributes: Mapping[str, Any]) -> Attributes:
    """``attributes`` without the unknown ones (whose value is None)."""
    return {name: value for name, value in attributes.items() if value is not None}


class Recorder:
    """Spans and instruments for one :class:`Telemetry`, once something listens."""

    def __init__(self, tracer: trace.Tracer | None, meter: metrics.Meter | None) -> None:
        self.tracer = tracer
        self.meter = meter
        self._warned = False
        # metric name -> its histogram's record or its counter's add; none without a meter.
        self._instruments: dict[str, Callable[[float, Attributes], None]] = {}
        if meter is not None:
            for name, (_, _, unit, description) in HISTOGRAMS.items():
                self._instruments[name] = meter.create_histogram(name, unit, description).record
            for name, (unit, description) in _COUNTERS.items():
                self._instruments[name] = meter.create_counter(name, unit, description).add

    def _failed(self) -> None:
        # Telemetry must not fail a request; say so once, not on every request.
        if not self._warned:
            self._warned = True
            logger.warning("fastapi-serdes: telemetry failed; requests go on", exc_info=True)

    def start(self, name: str, attributes: Attributes) -> Span | None:
        """Start a child span of the current span; None without tracing or when starting fails."""
        if self.tracer is None:
            return None
        try:
            return self.tracer.start_span(name, attributes=attributes)
        except Exception:
            self._failed()
            return None

    def end(self, span: Span | None, attributes: Attributes | None = None) -> None:
        """Set the final attributes and end ``span`` (nothing when it is None)."""
        if span is None:
            return
        try:
            if attributes:
                span.set_attributes(attributes)
            span.end()
        except Exception:
            self._failed()

    def fail(self, span: Span | None, exc: BaseException) -> None:
        """Mark ``span`` failed with a message that never echoes input, and end it."""
        if span is None:
            return
        try:
            message = safe_message(exc)
            span.set_status(Status(StatusCode.ERROR, message))
            # The traceback's frames, without the exception's own text (it may hold input).
            frames = "".join(traceback.format_tb(exc.__traceback__))
            span.record_exception(
                exc,
                attributes={
                    "exception.message": message,
                    "exception.stacktrace": frames + type(exc).__qualname__,
                },
            )
            if isinstance(exc, ProblemError):
                span.set_attribute(ATTR_STATUS, exc.status)
            span.end()
        except Exception:
            self._failed()

    def measure(
        self, name: str, call: Callable[[], T], attributes: Attributes, labels: Attributes
    ) -> T:
        """Run ``call``, a decode (its size in ``attributes``) or an encode (its result is the
        bytes), in a span; record its duration and size with the metric ``labels``."""
        span = self.start(name, attributes)
        started = time.perf_counter()
        try:
            result = call()
        except BaseException as exc:
            self.fail(span, exc)
            if name == SPAN_DECODE:
                self._emit(METRIC_DECODE_ERRORS, 1, labels)
            raise
        elapsed = time.perf_counter() - started
        if name == SPAN_ENCODE:
            size = len(result) if isinstance(result, bytes) else 0
            self.end(span, {ATTR_BYTES_OUT: size})
            self._emit(METRIC_ENCODE_DURATION, elapsed, labels)
            self._emit(METRIC_ENCODE_SIZE, size, labels)
        else:
            self.end(span)
            self._emit(METRIC_DECODE_DURATION, elapsed, labels)
            size_in = attributes.get(ATTR_BYTES_IN, 0)
            self._emit(METRIC_DECODE_SIZE, size_in if isinstance(size_in, int) else 0, labels)
        return result

    def compressed(self, seconds: float, size_in: int, size_out: int, labels: Attributes) -> None:
        """Record one compressed response (the CPU time spent compressing, summed over chunks)."""
        self._emit(METRIC_COMPRESS_DURATION, seconds, labels)
        self._emit(METRIC_COMPRESS_SIZE, size_out, labels)
        if size_in:
            self._emit(METRIC_COMPRESS_RATIO, size_out / size_in, labels)

    def start_cache(
        self, store: object, media_type: str | None, route: str | None
    ) -> tuple[Span | None, Attributes]:
        """Start a ``serdes.cache`` lookup span; returns it with the metric attributes."""
        labels = known(
            {ATTR_CACHE_STORE: type(store).__name__, ATTR_MEDIA_TYPE: media_type, ATTR_ROUTE: route}
        )
        return self.start(SPAN_CACHE, labels), labels

    def end_cache(self, span: Span | None, result: str, labels: Attributes) -> None:
        """End a lookup span and count it: ``result`` is ``hit``, ``miss`` or ``stale``."""
        self.end(span, {ATTR_CACHE_RESULT: result})
        self._emit(METRIC_CACHE_LOOKUPS, 1, {**labels, ATTR_CACHE_RESULT: result})

    def problem(self, status: int, problem_type: str, route: str | None) -> None:
        """Count a 4xx answer of the library, labelled with the last segment of its type URI."""
        if 400 <= status <= 499:
            slug = problem_type.rsplit("/", 1)[-1]
            labels = known({ATTR_STATUS: status, ATTR_PROBLEM: slug, ATTR_ROUTE: route})
            self._emit(METRIC_PROBLEMS, 1, labels)

    def _emit(self, metric: str, value: float, labels: Attributes) -> None:
        """Record ``value`` in a histogram, or add it to a counter (when there is a meter)."""
        instrument = self._instruments.get(metric)
        if instrument is None:
            return
        try:
            instrument(value, labels)
        except Exception:
            self._failed()


def safe_message(exc: BaseException) -> str:
    """An error's description for telemetry: the library's own messages, never input values.

    Problem, decode and encode messages are written not to echo the request or response
    (they locate the problem); anything else, a pydantic error included, is named by type.
    """
    if isinstance(exc, ProblemError | DecodeError | EncodeError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} validation error(s) for {exc.title}"
    return type(exc).__qualname__


def request_recorder(scope: Mapping[str, Any], telemetry: Telemetry | None) -> Recorder | None:
    """The recorder for this request: the one SerdesMiddleware chose, else ``telemetry``'s."""
    state = state_of(scope)
    recorder = state.recorder if state is not None else None
    if recorder is None and telemetry is not None:
        recorder = telemetry.active()
    return recorder
