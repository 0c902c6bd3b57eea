"""Telemetry workloads: what fastapi-serdes' spans and metrics cost, off, unconfigured and on.

- ``serdes off``: ``SerdesMiddleware(telemetry=False)``, the build without telemetry;
- ``serdes``: the default, with no OpenTelemetry SDK configured (the API's no-op providers);
- ``serdes otel``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` to an exporter that
  drops everything, and an SDK ``MeterProvider`` read by ``SerdesStats``;
- ``fastapi otel``: stock FastAPI with its own built-in telemetry on the same kind of providers;
- ``serdes+fastapi otel``: both, what an app with a global SDK gets (FastAPI's server span with
  the library's spans under it).

Providers are passed explicitly, never set globally, so the other contenders stay unconfigured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.types import ASGIApp

from benchmarks.apps import JSON, Contender, add_routes
from benchmarks.harness import Entry, Workload, make_request
from benchmarks.payloads import Payloads, User

_PATHS = {"small": "/users/small", "medium": "/users/medium"}
_SDK = ("opentelemetry.sdk.trace:TracerProvider", "fastapi_serdes:Telemetry")


def _providers() -> tuple[Any, Any]:
    """SDK providers that do all the work of recording and drop the result."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from fastapi_serdes.telemetry.stats import SerdesStats

    class DropExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    return tracer_provider, MeterProvider(metric_readers=[SerdesStats()])


def _app(payloads: Payloads, *, serdes: Any, fastapi_otel: bool, providers: Any = None) -> FastAPI:
    from fastapi_serdes import SerdesMiddleware, SerdesRoute

    telemetry: dict[str, Any] | None = None  # FastAPI's default: on only with a global SDK
    if fastapi_otel:
        tracer_provider, meter_provider = providers
        telemetry = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, telemetry=telemetry)
    router = APIRouter(route_class=SerdesRoute if serdes is not None else APIRoute)
    add_routes(router, payloads)
    app.include_router(router)
    if serdes is not None:
        app.add_middleware(SerdesMiddleware, telemetry=serdes)
    return app


def build_serdes_off(payloads: Payloads) -> ASGIApp:
    return _app(payloads, serdes=False, fastapi_otel=False)


def build_serdes_otel(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import Telemetry

    tracer_provider, meter_provider = _providers()
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return _app(payloads, serdes=telemetry, fastapi_otel=False)


def build_fastapi_otel(payloads: Payloads) -> ASGIApp:
    return _app(payloads, serdes=None, fastapi_otel=True, providers=_providers())


def build_serdes_fastapi_otel(payloads: Payloads) -> ASGIApp:
    from fastapi_serdes import Telemetry

    providers = _providers()
    telemetry = Telemetry(tracer_provider=providers[0], meter_provider=providers[1])
    return _app(payloads, serdes=telemetry, fastapi_otel=True, providers=providers)


TELEMETRY_CONTENDERS = [
    Contender("serdes-tel-off", build_serdes_off, None, "serdes with telemetry=False", _SDK[1:]),
    Contender(
        "serdes-otel",
        build_serdes_otel,
        None,
        "serdes, SDK providers (BatchSpanProcessor to a dropping exporter, SerdesStats)",
        _SDK,
    ),
    Contender(
        "fastapi-otel",
        build_fastapi_otel,
        None,
        "stock FastAPI with its built-in telemetry on the same SDK providers",
        _SDK,
    ),
    Contender(
        "serdes+fastapi-otel",
        build_serdes_fastapi_otel,
        None,
        "serdes-otel plus FastAPI's built-in telemetry (server span + serdes spans)",
        _SDK,
    ),
]

# (label, contender) per workload; the peer is named last.
_PLANS: dict[str, tuple[list[tuple[str, str]], str]] = {
    "off": (
        [("stock", "stock"), ("serdes off", "serdes-tel-off"), ("serdes no-sdk", "serdes")],
        "serdes off",
    ),
    "on": (
        [
            ("stock", "stock"),
            ("serdes off", "serdes-tel-off"),
            ("serdes otel", "serdes-otel"),
            ("serdes+fastapi otel", "serdes+fastapi-otel"),
            ("fastapi otel", "fastapi-otel"),
        ],
        "fastapi otel",
    ),
}


def build_telemetry_workloads(
    available: Mapping[str, Contender], payloads: Payloads
) -> list[Workload]:
    """``tel <off|on> json <size>``: small and medium JSON GETs; ratios against the peer."""
    from benchmarks.workloads import expect

    workloads = []
    for size, path in _PATHS.items():
        value = payloads.by_size(size)
        adapter: TypeAdapter[Any] = TypeAdapter(User if size == "small" else list[User])
        for mode, (plan, peer) in _PLANS.items():
            entries = tuple(
                Entry(
                    label,
                    contender,
                    make_request("GET", path, {"accept": JSON}),
                    expect(200, JSON, adapter, value),
                )
                for label, contender in plan
                if contender in available
            )
            labels = {e.label for e in entries}
            workloads.append(
                Workload(
                    f"tel {mode} json {size}",
                    entries,
                    baseline="stock" if "stock" in labels else None,
                    peer=peer if peer in labels else None,
                )
            )
    return workloads
