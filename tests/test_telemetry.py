"""Spans, metrics and the stats view, with SDK providers passed explicitly (no global leaks)."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from fastapi_serdes import SerdesMiddleware, SerdesRoute, SerdesSettings, Telemetry, cached
from fastapi_serdes._types import ASGIApp, Receive, Scope, Send
from fastapi_serdes.telemetry import Recorder
from fastapi_serdes.telemetry.stats import SerdesStats, percentile
from tests.asgi_driver import call
from tests.conftest import build_app

SECRET = "s3cr3t-token-value"


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    stats: SerdesStats

    def telemetry(self) -> Telemetry:
        return Telemetry(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    stats = SerdesStats()
    meter_provider = MeterProvider(metric_readers=[stats])
    yield Otel(exporter, tracer_provider, meter_provider, stats)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def with_server_span(app: ASGIApp, provider: TracerProvider) -> ASGIApp:
    """What FastAPI's or the ASGI instrumentation's server span does: current around the app."""
    tracer = provider.get_tracer("test-server")

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        span = tracer.start_span("GET", kind=SpanKind.SERVER)
        with trace.use_span(span, end_on_exit=True):
            await app(scope, receive, send)

    return wrapped


async def request(app: ASGIApp, method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, url, **kwargs)


@pytest.mark.anyio
async def test_encode_span_is_a_child_of_the_server_span(otel: Otel) -> None:
    app = with_server_span(build_app(telemetry=otel.telemetry()), otel.tracer_provider)
    # JSON is FastAPI's own serialisation: no encode span; MessagePack is the library's.
    response = await request(app, "GET", "/api/items/1", headers={"accept": "application/json"})
    assert response.status_code == 200
    assert otel.spans("serdes.encode") == []
    otel.exporter.clear()
    response = await request(app, "GET", "/api/items/1", headers={"accept": "application/msgpack"})
    assert response.status_code == 200
    (server,) = [s for s in otel.spans() if s.kind is SpanKind.SERVER]  # never a second one
    (encode,) = otel.spans("serdes.encode")
    assert encode.kind is SpanKind.INTERNAL
    assert encode.parent is not None
    assert encode.parent.span_id == server.context.span_id
    assert encode.context.trace_id == server.context.trace_id
    assert dict(encode.attributes or {}) == {
        "serdes.codec": "msgpack",
        "serdes.media_type": "application/msgpack",
        "http.route": "/api/items/{item_id}",
        "serdes.model": "Item",
        "serdes.bytes_out": len(response.content),
    }


@pytest.mark.anyio
async def test_decode_span_for_a_msgpack_body(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry(), compression=None)
    body = msgpack.packb({"id": 3, "name": "w"})
    headers = {"content-type": "application/msgpack", "accept": "application/msgpack"}
    response = await request(app, "POST", "/api/items", content=body, headers=headers)
    assert response.status_code == 201
    (decode,) = otel.spans("serdes.decode")
    attributes = dict(decode.attributes or {})
    assert attributes["serdes.codec"] == "msgpack"
    assert attributes["serdes.media_type"] == "application/msgpack"
    assert attributes["serdes.bytes_in"] == len(body)
    assert attributes["serdes.model"] == "Item"
    (encode,) = otel.spans("serdes.encode")
    assert encode.attributes is not None
    assert encode.attributes["serdes.codec"] == "msgpack"


@pytest.mark.anyio
async def test_no_decode_span_for_a_json_body(otel: Otel) -> None:
    # FastAPI reads JSON bodies itself: the library decodes nothing, so records nothing.
    app = build_app(telemetry=otel.telemetry(), compression=None)
    response = await request(app, "POST", "/api/items", json={"id": 3, "name": "w"})
    assert response.status_code == 201
    assert otel.spans("serdes.decode") == []
    assert otel.spans("serdes.encode") == []


@pytest.mark.anyio
async def test_plain_route_transcoding_has_decode_and_encode_spans(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry(), compression=None)
    body = msgpack.packb({"id": 3, "name": "w"})
    headers = {"content-type": "application/msgpack", "accept": "application/msgpack"}
    response = await request(app, "POST", "/plain", content=body, headers=headers)
    assert response.status_code == 200
    assert msgpack.unpackb(response.content)["name"] == "w"
    (decode,) = otel.spans("serdes.decode")
    assert dict(decode.attributes or {})["serdes.bytes_in"] == len(body)
    (encode,) = otel.spans("serdes.encode")
    assert dict(encode.attributes or {})["serdes.media_type"] == "application/msgpack"


@pytest.mark.anyio
async def test_route_without_middleware_records_too(otel: Otel) -> None:
    app = build_app(middleware=False, telemetry=otel.telemetry())
    accept = {"accept": "application/msgpack"}
    response = await request(app, "GET", "/api/items?limit=2", headers=accept)
    assert response.status_code == 200
    (encode,) = otel.spans("serdes.encode")
    assert dict(encode.attributes or {})["serdes.bytes_out"] == len(response.content)
    body = msgpack.packb({"id": 3, "name": "w"})
    response = await request(
        app, "POST", "/api/items", content=body, headers={"content-type": "application/msgpack"}
    )
    assert response.status_code == 201
    (decode,) = otel.spans("serdes.decode")
    assert dict(decode.attributes or {})["serdes.bytes_in"] == len(body)


@pytest.mark.anyio
async def test_compress_span_has_coding_level_and_ratio(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry())
    response = await request(
        app,
        "GET",
        "/api/items?limit=100",
        headers={"accept-encoding": "gzip", "accept": "application/msgpack"},
    )
    assert response.headers["content-encoding"] == "gzip"
    (compress,) = otel.spans("serdes.compress")
    attributes = dict(compress.attributes or {})
    assert attributes["serdes.compress.coding"] == "gzip"
    assert isinstance(attributes["serdes.compress.level"], int)
    assert attributes["serdes.compress.streaming"] is False
    assert attributes["http.route"] == "/api/items"
    assert attributes["serdes.media_type"] == "application/msgpack"
    (encode,) = otel.spans("serdes.encode")
    encoded = encode.attributes["serdes.bytes_out"] if encode.attributes else 0
    assert attributes["serdes.bytes_in"] == encoded == len(response.content)  # httpx decoded it
    assert 0 < attributes["serdes.compress.ratio"] < 0.5
    assert attributes["serdes.bytes_out"] < encoded


@pytest.mark.anyio
async def test_streaming_compress_span_ends_at_the_last_byte(otel: Otel) -> None:
    release = asyncio.Event()
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, telemetry=otel.telemetry())

    @app.get("/ndjson")
    async def ndjson() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            yield b'{"n": 1}\n' * 100
            await release.wait()
            yield b'{"n": 2}\n' * 100

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    ended_at_first_chunk: list[int] = []

    async def on_message(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("more_body"):
            ended_at_first_chunk.append(len(otel.spans("serdes.compress")))
            release.set()

    sent = await call(app, "/ndjson", headers=[("accept-encoding", "gzip")], on_message=on_message)
    assert sent.header("content-encoding") == "gzip"
    assert ended_at_first_chunk[0] == 0  # still open while the stream is running
    (compress,) = otel.spans("serdes.compress")
    attributes = dict(compress.attributes or {})
    assert attributes["serdes.compress.streaming"] is True
    assert attributes["serdes.bytes_in"] == 1800
    assert attributes["serdes.bytes_out"] == len(sent.body)


def _stream_then(end: str) -> ASGIApp:
    """A streaming app that sends one compressible chunk, then raises or returns early."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/x-ndjson")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"n": 1}\n' * 100, "more_body": True})
        if end == "raise":
            raise RuntimeError("the generator broke")
        # "return": the app stops without the last chunk (a client that went away)

    return app


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("end", "error"),
    [("raise", "RuntimeError"), ("return", "ResponseAbortedError")],
)
async def test_an_unfinished_streaming_compress_span_still_ends_as_failed(
    otel: Otel, end: str, error: str
) -> None:
    app = SerdesMiddleware(_stream_then(end), telemetry=otel.telemetry())
    if end == "raise":
        with pytest.raises(RuntimeError, match="the generator broke"):
            await call(app, "/s", headers=[("accept-encoding", "gzip")])
    else:
        await call(app, "/s", headers=[("accept-encoding", "gzip")])
    (compress,) = otel.spans("serdes.compress")
    assert compress.status.status_code is StatusCode.ERROR
    (event,) = compress.events
    assert str((event.attributes or {})["exception.type"]).endswith(error)


def cached_app(telemetry: Telemetry) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, telemetry=telemetry)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/things/{thing_id}")
    @cached(60)
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app.include_router(router)
    return app


@pytest.mark.anyio
async def test_cache_spans_miss_then_hit(otel: Otel) -> None:
    app = cached_app(otel.telemetry())
    for _ in range(3):
        assert (await request(app, "GET", "/things/1")).status_code == 200
    # The route table says the route caches: a lookup from the first request (a miss).
    results = [s.attributes["serdes.cache.result"] for s in otel.spans("serdes.cache")]
    assert results == ["miss", "hit", "hit"]
    (span, _, _) = otel.spans("serdes.cache")
    assert span.attributes is not None
    assert span.attributes["serdes.cache.store"] == "MemoryStore"
    assert span.attributes["http.route"] == "/things/{thing_id}"
    (row,) = otel.stats.snapshot()["routes"]
    assert row["cache"] == {"hits": 2, "misses": 1, "stale": 0, "hit_rate": 0.6667}


@pytest.mark.anyio
async def test_no_secret_header_cache_key_or_body_in_attributes(otel: Otel) -> None:
    app = with_server_span(build_app(telemetry=otel.telemetry()), otel.tracer_provider)
    headers = {"authorization": f"Bearer {SECRET}", "cookie": f"session={SECRET}"}
    body = json.dumps({"id": 1, "name": SECRET}).encode()
    response = await request(
        app,
        "POST",
        f"/api/items?q={SECRET}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code == 201
    bad = json.dumps({"id": SECRET, "name": SECRET}).encode()
    response = await request(
        app, "POST", "/api/items", content=bad, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    for value, status in (({"id": 1, "name": SECRET}, 201), ({"id": SECRET, "name": SECRET}, 422)):
        response = await request(
            app,
            "POST",
            f"/api/items?q={SECRET}",
            content=msgpack.packb(value),
            headers={**headers, "content-type": "application/msgpack"},
        )
        assert response.status_code == status
    assert len(otel.spans("serdes.decode")) == 2
    cached = cached_app(otel.telemetry())
    for _ in range(2):
        await request(cached, "GET", f"/things/1?token={SECRET}")
    assert otel.spans("serdes.cache")
    for span in otel.spans():
        texts = [str(v) for v in (span.attributes or {}).values()]
        texts += [str(v) for event in span.events for v in (event.attributes or {}).values()]
        texts.append(span.status.description or "")
        for text in texts:
            assert SECRET not in text, (span.name, text)
            assert "things/1" not in text  # no raw path or cache key


@pytest.mark.anyio
async def test_errors_set_the_status_and_record_the_exception(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry())
    nope = msgpack.packb({"nope": SECRET})[:-1]  # truncated
    response = await request(
        app, "POST", "/api/items", content=nope, headers={"content-type": "application/msgpack"}
    )
    assert response.status_code == 422  # FastAPI's body decode error
    (decode,) = otel.spans("serdes.decode")
    assert decode.status.status_code is StatusCode.ERROR
    (event,) = decode.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"].endswith("DecodeError")
    assert "Invalid MessagePack" in str(event.attributes["exception.message"])
    assert SECRET not in str(event.attributes["exception.stacktrace"])

    # NaN: refused by the MessagePack encoder (JSON is FastAPI's, which writes null).
    response = await request(app, "GET", "/api/items/13", headers={"accept": "application/msgpack"})
    assert response.status_code == 500
    (encode,) = [s for s in otel.spans("serdes.encode") if s.status.status_code is StatusCode.ERROR]
    assert "500 Response Encoding Failed" in (encode.status.description or "")


@pytest.mark.anyio
async def test_metrics_and_stats_snapshot(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry(), strict=True)  # strict: the 406 and the 415
    for _ in range(5):
        response = await request(
            app,
            "GET",
            "/api/items?limit=100",
            headers={"accept-encoding": "gzip", "accept": "application/msgpack"},
        )
    identity = len(response.content)  # httpx decoded it
    await request(app, "GET", "/api/items/1", headers={"accept": "text/html"})  # 406
    await request(
        app, "POST", "/api/items", content=b"x", headers={"content-type": "text/plain"}
    )  # 415
    await request(
        app, "GET", "/api/items", headers={"accept-encoding": "identity;q=0, *;q=0"}
    )  # 406 (coding)
    snapshot = otel.stats.snapshot()
    rows = {(r["route"], r["media_type"]): r for r in snapshot["routes"]}
    row = rows[("/api/items", "application/msgpack")]
    assert row["encode"]["count"] == 5
    assert row["encode"]["bytes_total"] == 5 * identity
    assert 0 < row["encode"]["p50_ms"] <= row["encode"]["p95_ms"]
    assert row["compress"]["gzip"]["count"] == 5
    assert 0 < row["compress"]["gzip"]["ratio"] < 0.5
    problems = {(p["serdes.problem"], p["http.response.status_code"]) for p in snapshot["problems"]}
    assert problems == {
        ("not-acceptable", 406),
        ("unsupported-media-type", 415),
        ("not-acceptable-encoding", 406),
    }


@pytest.mark.anyio
async def test_body_too_large_is_counted(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry(), max_body_size=10)
    # The size limit is for the bodies the library reads (MessagePack), not FastAPI's JSON.
    response = await request(
        app, "POST", "/api/items", content=b"{}" * 20, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert otel.stats.snapshot()["problems"] == []
    response = await request(
        app,
        "POST",
        "/api/items",
        content=msgpack.packb({"id": 1, "name": "x" * 20}),
        headers={"content-type": "application/msgpack"},
    )
    assert response.status_code == 413
    (problem,) = otel.stats.snapshot()["problems"]
    assert problem["count"] == 1
    assert problem["http.response.status_code"] == 413


class RaisingProcessor(SpanProcessor):
    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        raise RuntimeError("processor on_start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor on_end")


class RaisingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise RuntimeError("exporter down")


@pytest.mark.anyio
@pytest.mark.parametrize("broken", ["processor", "exporter"])
async def test_failing_telemetry_never_fails_a_request(
    broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider = TracerProvider()
    if broken == "processor":
        provider.add_span_processor(RaisingProcessor())
    else:
        provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    app = build_app(telemetry=Telemetry(tracer_provider=provider))
    msgpack_headers = {"accept": "application/msgpack", "content-type": "application/msgpack"}
    for _ in range(2):  # MessagePack: decode and encode spans (JSON has none)
        response = await request(
            app,
            "POST",
            "/api/items",
            content=msgpack.packb({"id": 1, "name": "x"}),
            headers={**msgpack_headers, "accept-encoding": "gzip"},
        )
        assert response.status_code == 201
        response = await request(app, "GET", "/api/items?limit=100", headers=msgpack_headers)
        assert response.status_code == 200
    provider.shutdown()


@pytest.mark.anyio
async def test_off_creates_no_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a span was started with telemetry off")

    monkeypatch.setattr(Recorder, "start", refuse)
    monkeypatch.setattr(trace.ProxyTracer, "start_span", refuse)
    # No SDK configured (the API's proxies), or switched off by keyword: no recorder at all.
    for app in (build_app(), build_app(telemetry=False), build_app(middleware=False)):
        # MessagePack: a response the library encodes, so one it would record if it were on.
        accept = {"accept": "application/msgpack"}
        response = await request(app, "GET", "/api/items?limit=50", headers=accept)
        assert response.status_code == 200
    assert Telemetry().active() is None
    noop = Telemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    assert noop.active() is None


def test_a_provider_configured_later_is_picked_up(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = Telemetry()
    assert telemetry.active() is None
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: otel.tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: otel.meter_provider)
    assert telemetry.active() is None  # not looked up again within the second
    telemetry._next_check = 0.0
    recorder = telemetry.active()
    assert recorder is not None
    assert recorder.tracer is not None
    assert recorder.meter is not None
    assert telemetry.active() is recorder  # settled: no more lookups


def test_settings_keyword_and_environment() -> None:
    assert SerdesSettings.from_kwargs(telemetry=False).telemetry is None
    explicit = Telemetry(tracing=False)
    assert SerdesSettings.from_kwargs(telemetry=explicit).telemetry is explicit
    off = SerdesSettings.from_kwargs(environ={"FASTAPI_SERDES_TELEMETRY": "off"})
    assert off.telemetry is None
    on = SerdesSettings.from_kwargs(telemetry=False, environ={"FASTAPI_SERDES_TELEMETRY": "on"})
    assert isinstance(on.telemetry, Telemetry)
    with pytest.raises(ValueError, match="FASTAPI_SERDES_TELEMETRY='maybe'"):
        SerdesSettings.from_kwargs(environ={"FASTAPI_SERDES_TELEMETRY": "maybe"})
    with pytest.raises(TypeError, match="telemetry must be"):
        SerdesSettings.from_kwargs(telemetry="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tracing must be True or False"):
        Telemetry(tracing=1)  # type: ignore[arg-type]


def test_percentiles_from_the_exponential_histogram(otel: Otel) -> None:
    meter = otel.meter_provider.get_meter("fastapi_serdes")
    histogram = meter.create_histogram("serdes.encode.duration", "s")
    for value in range(1, 1001):
        histogram.record(value / 1000, {"http.route": "/r", "serdes.media_type": "m"})
    (row,) = otel.stats.snapshot()["routes"]
    encode = row["encode"]
    assert encode["count"] == 1000
    assert encode["mean_ms"] == pytest.approx(500.5)
    assert encode["p50_ms"] == pytest.approx(500, rel=0.05)
    assert encode["p95_ms"] == pytest.approx(950, rel=0.05)


def test_percentile_of_an_empty_histogram_is_nan() -> None:
    from opentelemetry.sdk.metrics._internal.point import Buckets
    from opentelemetry.sdk.metrics.export import ExponentialHistogramDataPoint
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation  # noqa: F401

    empty = ExponentialHistogramDataPoint(
        {}, 0, 0, 0, 0, 0, 0, Buckets(0, []), Buckets(0, []), 0, 0, 0
    )
    assert percentile(empty, 0.5) != percentile(empty, 0.5)  # NaN


@pytest.mark.anyio
async def test_example_app_console_export_and_stats(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from example_app.main import create_app

    monkeypatch.setenv("EXAMPLE_OTEL", "console")
    app = create_app(str(tmp_path / "example.db"))
    async with app.router.lifespan_context(app):
        response = await request(
            app, "GET", "/users?limit=20", headers={"accept": "application/msgpack"}
        )
        assert response.status_code == 200
        stats = (await request(app, "GET", "/stats")).json()
    printed = capsys.readouterr().out
    assert '"name": "serdes.encode"' in printed
    assert '"serdes.codec": "msgpack"' in printed
    if importlib.util.find_spec("fastapi.telemetry") is not None:  # FastAPI's own spans
        assert '"kind": "SpanKind.SERVER"' in printed  # FastAPI's, with ours under it
    assert "serdes.encode.duration" in printed  # the metrics, flushed at shutdown
    (row,) = [r for r in stats["routes"] if r["route"] == "/users"]
    assert row["media_type"] == "application/msgpack"
    assert row["encode"]["count"] == 1


def test_example_app_otlp_without_the_exporter_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    from example_app import telemetry

    real_import = builtins.__import__

    def no_otlp(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry.exporter.otlp"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otlp)
    with pytest.raises(RuntimeError, match=r"pip install 'fastapi-serdes\[example\]'"):
        telemetry.setup("otlp")
    with pytest.raises(ValueError, match="EXAMPLE_OTEL must be one of"):
        telemetry.setup("zipkin")


@pytest.mark.anyio
async def test_decompress_span_covers_a_compressed_request_body(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry())
    raw = json.dumps({"id": 4, "name": "n" * 5000}).encode()
    packed = gzip.compress(raw)
    response = await request(
        app,
        "POST",
        "/api/items",
        content=packed,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 201
    (span,) = otel.spans("serdes.decompress")
    attributes = dict(span.attributes or {})
    assert attributes["serdes.compress.coding"] == "gzip"
    assert attributes["serdes.bytes_in"] == len(packed)
    assert attributes["serdes.bytes_out"] == len(raw)
    assert attributes["serdes.compress.ratio"] == round(len(packed) / len(raw), 4)
    assert span.status.status_code is not StatusCode.ERROR


@pytest.mark.anyio
async def test_decompress_span_of_a_corrupt_body_is_failed(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry())
    response = await request(
        app,
        "POST",
        "/api/items",
        content=gzip.compress(b'{"id": 4, "name": "x"}')[:-6] + b"garbage",
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 400
    (span,) = otel.spans("serdes.decompress")
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.anyio
async def test_no_decompress_span_for_an_identity_body(otel: Otel) -> None:
    app = build_app(telemetry=otel.telemetry())
    response = await request(app, "POST", "/api/items", json={"id": 4, "name": "x"})
    assert response.status_code == 201
    assert otel.spans("serdes.decompress") == []


@pytest.mark.anyio
async def test_serdes_route_records_on_the_fast_path(otel: Otel) -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, telemetry=otel.telemetry(), strict=True)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/item")
    def item() -> dict[str, int]:
        return {"a": 1}

    app.include_router(router)
    for _ in range(3):
        sent = await call(app, "/item", headers=[("accept", "text/html")])
        assert sent.status == 406
    # No Accept-Encoding, no body and an Accept the route refuses itself: the middleware's fast
    # path, which records nothing itself; the route asks for its recorder and counts its 406s.
    # (A JSON answer, the fast path's other case, is FastAPI's serialisation: no encode span.)
    (problem,) = otel.stats.snapshot()["problems"]
    assert problem["count"] == 3
    assert problem["serdes.problem"] == "not-acceptable"
    assert problem["http.route"] == "/item"
