"""Telemetry at its edges: providers that hand out no-op tracers and meters, spans and
instruments that raise (a request never fails for them), and what is left out of labels."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ValidationError

from fastapi_serdes import DecodeError, Telemetry
from fastapi_serdes import telemetry as telemetry_module
from fastapi_serdes.telemetry import (
    INSTRUMENTATION_NAME,
    SPAN_DECODE,
    SPAN_ENCODE,
    Recorder,
    safe_message,
)
from fastapi_serdes.telemetry.spans import CompressTrace, coding_sizes, decode_span, media_type_of
from fastapi_serdes.telemetry.stats import SerdesStats


class NoOpTracerProvider(trace.TracerProvider):
    """A configured provider whose tracers record nothing (as with OTEL_SDK_DISABLED=true)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


class NoOpMeterProvider(metrics.MeterProvider):
    def get_meter(self, *args: Any, **kwargs: Any) -> metrics.Meter:
        return metrics.NoOpMeter(INSTRUMENTATION_NAME)


class Broken:
    """A span, histogram or counter whose every method raises."""

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError(f"telemetry backend down ({name})")

        return refuse


class BrokenTracer:
    def start_span(self, name: str, attributes: Any = None) -> Any:
        return Broken()


class BrokenMeter:
    def create_histogram(self, *args: Any) -> Any:
        return Broken()

    def create_counter(self, *args: Any) -> Any:
        return Broken()


@pytest.fixture
def sdk() -> Iterator[tuple[InMemorySpanExporter, TracerProvider, SerdesStats, MeterProvider]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    stats = SerdesStats()
    meter_provider = MeterProvider(metric_readers=[stats])
    yield exporter, tracer_provider, stats, meter_provider
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_repr_says_what_is_on() -> None:
    assert repr(Telemetry(metrics=False)) == "Telemetry(tracing=True, metrics=False)"


def test_providers_handing_out_no_op_tracers_and_meters_mean_nobody_listens() -> None:
    telemetry = Telemetry(tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
    assert telemetry.active() is None


def test_metrics_off_records_spans_only(
    sdk: tuple[InMemorySpanExporter, TracerProvider, SerdesStats, MeterProvider],
) -> None:
    _, tracer_provider, _, meter_provider = sdk
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, metrics=False
    )
    recorder = telemetry.active()
    assert recorder is not None
    assert recorder.tracer is not None
    assert recorder.meter is None
    assert telemetry.active() is recorder  # settled: the same recorder every time


def test_a_failing_backend_never_fails_the_measured_call(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(BrokenTracer(), BrokenMeter())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="fastapi_serdes"):
        assert recorder.measure(SPAN_ENCODE, lambda: b"abc", {}, {}) == b"abc"
        assert recorder.measure(SPAN_DECODE, lambda: {"a": 1}, {}, {}) == {"a": 1}
        with pytest.raises(DecodeError, match="bad bytes"):
            recorder.measure(SPAN_DECODE, _raise(DecodeError("bad bytes")), {}, {})
        recorder.compressed(0.1, 100, 10, {})
        recorder.end_cache(recorder.start_cache(object(), None, None)[0], "hit", {})
        recorder.problem(406, "https://x/not-acceptable", "/r")
    warnings = [r for r in caplog.records if "telemetry failed" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every call


def _raise(exc: Exception) -> Any:
    def call() -> Any:
        raise exc

    return call


def test_without_a_span_ending_or_failing_is_nothing() -> None:
    recorder = Recorder(None, None)
    recorder.end(None, {"a": 1})
    recorder.fail(None, RuntimeError("x"))
    recorder.problem(404, "https://x/not-found", None)  # no meter: nothing to count
    assert recorder.start("serdes.encode", {}) is None


def test_only_client_errors_are_counted_and_labels_leave_out_what_is_unknown(
    sdk: tuple[InMemorySpanExporter, TracerProvider, SerdesStats, MeterProvider],
) -> None:
    exporter, tracer_provider, stats, meter_provider = sdk
    recorder = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider).active()
    assert recorder is not None
    recorder.problem(500, "https://x/encode-failed", "/r")
    recorder.problem(413, "https://x/body-too-large", None)
    (problem,) = stats.snapshot()["problems"]
    assert problem == {
        "http.response.status_code": 413,
        "serdes.problem": "body-too-large",
        "count": 1,
    }
    span, labels = recorder.start_cache(object(), None, None)
    recorder.end_cache(span, "miss", labels)
    assert labels == {"serdes.cache.store": "object"}
    (cache_span,) = exporter.get_finished_spans()
    assert dict(cache_span.attributes or {}) == {
        "serdes.cache.store": "object",
        "serdes.cache.result": "miss",
    }


def test_an_empty_identity_body_has_no_ratio(
    sdk: tuple[InMemorySpanExporter, TracerProvider, SerdesStats, MeterProvider],
) -> None:
    exporter, tracer_provider, stats, meter_provider = sdk
    recorder = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider).active()
    assert recorder is not None
    assert coding_sizes(20, 0, decoding=False) == {"serdes.bytes_in": 0, "serdes.bytes_out": 20}
    compress = CompressTrace(
        recorder, coding="gzip", level=None, content_type=None, route=None, streaming=False
    )
    compress.add(0.001, 0, 20)  # an empty body still has a gzip header and trailer
    compress.finish()
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert "serdes.compress.ratio" not in attributes
    assert "serdes.compress.level" not in attributes
    assert "serdes.media_type" not in attributes
    assert "http.route" not in attributes
    (row,) = stats.snapshot()["routes"]
    assert row["route"] is None
    assert "ratio" not in row["compress"]["gzip"]
    assert row["compress"]["gzip"]["count"] == 1


def test_a_decode_without_content_type_has_no_media_type_label(
    sdk: tuple[InMemorySpanExporter, TracerProvider, SerdesStats, MeterProvider],
) -> None:
    exporter, tracer_provider, _, meter_provider = sdk
    recorder = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider).active()
    assert recorder is not None
    assert media_type_of(None) is None
    assert media_type_of(b"Application/MsgPack; x=1") == "application/msgpack"
    value = decode_span(
        recorder, lambda: [1], content_type=None, codec=object(), model=None, size=3, route=None
    )
    assert value == [1]
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"serdes.codec": "object", "serdes.bytes_in": 3}


class Point(BaseModel):
    x: int


def test_a_validation_error_is_named_without_its_input() -> None:
    with pytest.raises(ValidationError) as caught:
        Point.model_validate({"x": "secret-value"})
    message = safe_message(caught.value)
    assert message == "1 validation error(s) for Point"
    assert "secret" not in message
    assert safe_message(KeyError("secret")) == "KeyError"


def test_while_a_provider_is_pending_the_recorder_is_kept_across_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tracing waits for a global provider (the API's stand-in), metrics have theirs: every
    # check looks again, and keeps the same recorder (its instruments) while nothing changed.
    monkeypatch.setattr(telemetry_module, "_RECHECK_SECONDS", 0.0)
    meter_provider = MeterProvider()
    telemetry = Telemetry(
        tracer_provider=trace.ProxyTracerProvider(), meter_provider=meter_provider
    )
    first = telemetry.active()
    assert first is not None
    assert first.tracer is None
    assert first.meter is not None
    assert telemetry.active() is first
    meter_provider.shutdown()
