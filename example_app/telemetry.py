"""Telemetry for the example: ``$EXAMPLE_OTEL`` picks the exporter, ``GET /stats`` summarises.

- unset or ``none``: no exporter; metrics feed ``/stats`` only (no spans);
- ``console``: spans and metrics printed to stdout (metrics every ``$EXAMPLE_OTEL_INTERVAL_MS``,
  default 10 s);
- ``otlp``: spans and metrics sent to ``$OTEL_EXPORTER_OTLP_ENDPOINT`` over OTLP/HTTP (the
  ``example`` extra brings the exporter).

The providers belong to this app (never set globally), so two apps in one process, or the
tests, never share them. FastAPI's own telemetry uses them too: the library's spans nest under
its server span.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from fastapi_serdes import Telemetry
from fastapi_serdes.telemetry.stats import SerdesStats

CHOICES = ("none", "console", "otlp")
router = APIRouter(tags=["stats"])


@dataclass
class Observability:
    """What ``create_app`` wires: the library's telemetry, FastAPI's, and the stats reader."""

    telemetry: Telemetry
    stats: SerdesStats
    fastapi: dict[str, Any] | None = None  # FastAPI(telemetry=...)
    providers: list[Any] = field(default_factory=list)  # shut down with the app

    def shutdown(self) -> None:
        for provider in self.providers:
            provider.shutdown()


def setup(mode: str | None = None) -> Observability:
    """Providers for ``mode`` (default ``$EXAMPLE_OTEL``): ``none``, ``console`` or ``otlp``."""
    mode = (mode or os.environ.get("EXAMPLE_OTEL") or "none").strip().lower()
    if mode not in CHOICES:
        raise ValueError(f"EXAMPLE_OTEL must be one of {CHOICES}, got {mode!r}")
    stats = SerdesStats()
    readers: list[MetricReader] = [stats]
    resource = Resource.create({"service.name": "fastapi-serdes-example"})
    if mode == "none":
        meter_provider = MeterProvider(metric_readers=readers, resource=resource)
        return Observability(
            Telemetry(meter_provider=meter_provider, tracing=False),
            stats,
            providers=[meter_provider],
        )
    span_exporter, metric_exporter = _exporters(mode)
    interval = int(os.environ.get("EXAMPLE_OTEL_INTERVAL_MS", "10000"))
    readers.append(PeriodicExportingMetricReader(metric_exporter, interval))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    tracer_provider = TracerProvider(resource=resource)
    if mode == "console":
        # Synchronous export keeps the console output in request order (a terminal never hangs).
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    else:
        # A collector over the network: never export on the request path. A bounded queue
        # (spans are dropped when it is full, requests never wait) and a timeout per export, so
        # a collector that refuses or hangs costs no request anything.
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                span_exporter,
                max_queue_size=2048,
                max_export_batch_size=512,
                schedule_delay_millis=1000,
                export_timeout_millis=5000,
            )
        )
    return Observability(
        Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
        stats,
        fastapi={"tracer_provider": tracer_provider, "meter_provider": meter_provider},
        providers=[tracer_provider, meter_provider],
    )


def _exporters(mode: str) -> tuple[Any, Any]:
    if mode == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # sys.stdout as it is now (the exporters' defaults bind it at import).
        return ConsoleSpanExporter(out=sys.stdout), ConsoleMetricExporter(out=sys.stdout)
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise RuntimeError(
            "EXAMPLE_OTEL=otlp needs the OTLP exporter: pip install 'fastapi-serdes[example]' "
            "(or opentelemetry-exporter-otlp-proto-http)"
        ) from exc
    # Timeouts of their own (seconds): an unreachable collector fails fast in the background.
    return OTLPSpanExporter(timeout=5), OTLPMetricExporter(timeout=5)


@router.get(
    "/stats",
    responses={
        200: {
            "description": "JSON by default; an HTML page with charts for `Accept: text/html`.",
            "content": {"application/json": {}, "text/html": {"schema": {"type": "string"}}},
        }
    },
)
def stats(request: Request) -> Response:
    """Serialization cost per route and media type, read from the library's metrics: JSON for
    clients, an HTML page with small charts when a browser asks for ``text/html``."""
    observability: Observability = request.app.state.observability
    return observability.stats.response(request.headers.get("accept"))
