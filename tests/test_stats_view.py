"""The stats view: min / max, error counts and per-route cache hit ratio in ``SerdesStats``'
snapshot, JSON for clients and an HTML page for browsers, checked in a real headless Chromium."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from docs.stats_screenshot import run_chromium, visit
from fastapi_serdes import Telemetry
from fastapi_serdes.telemetry import INSTRUMENTATION_NAME
from fastapi_serdes.telemetry.stats import METRIC_DECODE_ERRORS, SerdesStats
from fastapi_serdes.telemetry.stats_page import render_page
from tests.conftest import build_app
from tests.example_server import serve_example

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass
class Metrics:
    stats: SerdesStats
    provider: MeterProvider

    def meter(self) -> Any:
        """The library's meter: what it records, recorded by hand."""
        return self.provider.get_meter(INSTRUMENTATION_NAME)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    stats = SerdesStats()
    provider = MeterProvider(metric_readers=[stats])
    yield Metrics(stats, provider)
    provider.shutdown()


def labels(route: str | None, media_type: str = "application/json", **more: Any) -> Any:
    found = {"serdes.media_type": media_type, **more}
    if route is not None:
        found["http.route"] = route
    return found


async def get(app: Any, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url, **kwargs)


# --- the snapshot ------------------------------------------------------------------------------


def test_durations_have_min_and_max_besides_the_percentiles(metrics: Metrics) -> None:
    histogram = metrics.meter().create_histogram("serdes.encode.duration", "s")
    for value in range(3, 1001):
        histogram.record(value / 1000, labels("/r"))
    (row,) = metrics.stats.snapshot()["routes"]
    encode = row["encode"]
    assert encode["min_ms"] == 3.0
    assert encode["max_ms"] == 1000.0
    assert encode["min_ms"] < encode["p50_ms"] < encode["p95_ms"] < encode["max_ms"]


def test_decode_failures_and_library_4xx_per_route(metrics: Metrics) -> None:
    failures = metrics.meter().create_counter(METRIC_DECODE_ERRORS)
    failures.add(2, labels("/a", "application/msgpack"))
    failures.add(1, labels("/a", "application/x-msgpack"))
    problems = metrics.meter().create_counter("serdes.problems")
    for status, slug, route, count in [
        (406, "not-acceptable", "/a", 3),
        (415, "unsupported-media-type", "/a", 1),
        (406, "not-acceptable-encoding", None, 2),  # answered before routing
        (500, "encode-failed", "/a", 1),  # not a client error
    ]:
        attributes = {"http.response.status_code": status, "serdes.problem": slug}
        if route is not None:
            attributes["http.route"] = route
        problems.add(count, attributes)
    snapshot = metrics.stats.snapshot()
    rows = {(r["route"], r["media_type"]): r for r in snapshot["routes"]}
    assert rows[("/a", "application/msgpack")]["decode_failures"] == 2
    by_route = {entry["route"]: entry for entry in snapshot["by_route"]}
    assert list(by_route) == ["/a", None]  # answers before routing last
    assert by_route["/a"]["decode_failures"] == 3
    assert by_route["/a"]["client_errors"] == 4
    assert by_route["/a"]["errors_by_status"] == {"406": 3, "415": 1}
    assert by_route[None]["client_errors"] == 2
    assert len(snapshot["problems"]) == 4  # the list as before, every counted answer


def test_cache_hit_ratio_per_route_over_its_media_types(metrics: Metrics) -> None:
    lookups = metrics.meter().create_counter("serdes.cache.lookups")
    for media_type, result, count in [
        ("application/json", "hit", 6),
        ("application/json", "miss", 1),
        ("application/msgpack", "miss", 2),
        ("application/msgpack", "stale", 1),
    ]:
        lookups.add(count, labels("/c", media_type, **{"serdes.cache.result": result}))
    snapshot = metrics.stats.snapshot()
    rows = {r["media_type"]: r for r in snapshot["routes"]}
    assert rows["application/json"]["cache"]["hit_rate"] == round(6 / 7, 4)
    assert rows["application/msgpack"]["cache"]["hit_rate"] == 0.0
    (entry,) = snapshot["by_route"]
    assert entry["cache"] == {"hits": 6, "misses": 3, "stale": 1, "hit_rate": 0.6}


@pytest.mark.anyio
async def test_library_answers_are_counted_through_the_app(metrics: Metrics) -> None:
    app = build_app(telemetry=Telemetry(meter_provider=metrics.provider), strict=True)
    assert (await get(app, "/api/items/1", headers={"accept": "text/csv"})).status_code == 406
    for _ in range(3):
        response = await get(app, "/api/items?limit=50", headers={"accept": "application/msgpack"})
        assert response.status_code == 200
    snapshot = metrics.stats.snapshot()
    by_route = {entry["route"]: entry for entry in snapshot["by_route"]}
    assert by_route["/api/items/{item_id}"]["errors_by_status"] == {"406": 1}
    assert by_route["/api/items"]["encoded"] == 3
    (row,) = [r for r in snapshot["routes"] if r["route"] == "/api/items"]
    assert 0 < row["encode"]["min_ms"] <= row["encode"]["p50_ms"] <= row["encode"]["max_ms"]


# --- JSON for clients, HTML for browsers --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("application/msgpack", False),  # neither offer: the default (the middleware transcodes)
        ("text/html;q=0.5, application/json", False),
        (BROWSER_ACCEPT, True),
        ("text/html", True),
    ],
)
async def test_json_by_default_html_when_a_browser_asks(
    metrics: Metrics, accept: str | None, html: bool
) -> None:
    metrics.meter().create_counter("serdes.problems").add(1, {"http.response.status_code": 406})
    response = metrics.stats.response(accept)
    assert response.headers["vary"] == "Accept"
    if html:
        assert response.media_type == "text/html"
        assert b"<!doctype html>" in response.body
        assert "default-src 'none'" in response.headers["content-security-policy"]
    else:
        assert response.media_type == "application/json"
        assert json.loads(response.body) == metrics.stats.snapshot()


@pytest.mark.anyio
async def test_the_example_apps_stats_keep_json_for_clients(tmp_path: Path) -> None:
    from example_app.main import create_app

    app = create_app(str(tmp_path / "example.sqlite3"))
    async with app.router.lifespan_context(app):
        await get(app, "/users?limit=5", headers={"accept": "application/msgpack"})
        for headers in ({}, {"accept": "*/*"}, {"accept": "application/json"}):
            response = await get(app, "/stats", headers=headers)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert set(response.json()) == {"routes", "problems", "by_route"}
        page = await get(app, "/stats", headers={"accept": BROWSER_ACCEPT})
        assert page.headers["content-type"].startswith("text/html")
        assert "<code>/users</code>" in page.text
        as_msgpack = await get(app, "/stats", headers={"accept": "application/msgpack"})
        assert set(msgpack.unpackb(as_msgpack.content)) == {"routes", "problems", "by_route"}


def test_the_page_escapes_what_it_shows_and_fetches_nothing() -> None:
    evil = "/x/<script>alert(1)</script>"
    snapshot = {
        "routes": [
            {
                "route": evil,
                "media_type": 'a"b',
                "encode": {
                    "count": 1,
                    "mean_ms": 1.0,
                    "min_ms": 1.0,
                    "p50_ms": 1.0,
                    "p95_ms": 1.0,
                    "max_ms": 1.0,
                },
            }
        ],
        "problems": [],
        "by_route": [
            {
                "route": evil,
                "encoded": 1,
                "decoded": 0,
                "decode_failures": 0,
                "client_errors": 0,
                "errors_by_status": {},
            }
        ],
    }
    page = render_page(snapshot)
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    for fetches in ("src=", "href=", "url(", "@import"):
        assert fetches not in page


def test_an_empty_page_says_so() -> None:
    assert 'id="empty"' in render_page({"routes": [], "problems": [], "by_route": []})


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[str]:
    with serve_example(tmp_path / "example.sqlite3") as base:
        yield base


class Tables(HTMLParser):
    """The rows of each table with an id, as {table id: {row's data-route: [cell texts]}}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("id"):
            self._table = found["id"]
            self.tables[self._table or ""] = {}
        elif tag == "tr" and self._table and "data-route" in found:
            self._row = []
            self.tables[self._table][found["data-route"] or ""] = self._row
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        offset += length + 12
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), (depth, interlace)
    assert colour in (2, 6), colour  # RGB or RGBA
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * size
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r[i] for i in range(len(r)) if i % size < 3) for r in rows]


@pytest.mark.server
def test_the_stats_page_in_a_headless_browser(example_server: str, tmp_path: Path) -> None:
    # The requests behind docs/how-to/stats-page.png (docs/stats_screenshot.py regenerates it
    # with the same functions; this test writes only into tmp_path).
    with httpx.Client(base_url=example_server) as client:
        visit(client)
        snapshot = client.get("/stats").json()
    by_route = {entry["route"]: entry for entry in snapshot["by_route"]}
    assert by_route["/users/{user_id}"]["cache"]["hits"] == 3  # /users/1, 2, 1, 2, 1
    assert by_route["/users"]["client_errors"] == 2  # the 406 and the 415
    assert by_route["/users"]["decode_failures"] == 1
    assert by_route[None]["errors_by_status"] == {"406": 1}  # Accept-Encoding: identity;q=0

    url = f"{example_server}/stats"
    profile = tmp_path / "chromium-profile"
    dom = run_chromium(profile, "--dump-dom", url).stdout
    tables = Tables()
    tables.feed(dom)
    assert tables.svgs >= 5  # charts: hit ratios, the 4xx bars, the duration ranges, the axis
    routes = tables.tables["routes"]
    assert {"/users", "/users/{user_id}", "/videos", "/videos/{video_id}", ""} <= set(routes)
    assert routes["/users/{user_id}"][-2] == "60.0 %"  # 3 hits in 5
    assert routes["/users"][1:5] == ["1", "3", "1", "2"]  # encoded, decoded, failures, 4xx
    assert routes[""][4] == "1"  # before routing
    encode = tables.tables["encode"]["/videos"]
    assert encode[1] == "application/msgpack"
    assert encode[2] == "1"  # encoded once (count)
    codings = {row[2] for row in [tables.tables["compress"][r] for r in ("/users", "/videos")]}
    assert codings == {"zstd", "gzip"}

    screenshot = tmp_path / "stats.png"
    run_chromium(profile, f"--screenshot={screenshot}", url)
    width, height, rows = png_pixels(screenshot.read_bytes())
    assert (width, height) == (1400, 1000)
    colours = {row[i : i + 3] for row in rows[::4] for i in range(0, len(row), 12)}
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    ink = sum(1 for row in rows for i in range(0, len(row), 3) if row[i : i + 3] != b"\xff\xff\xff")
    assert ink > width * height // 100, "less than 1 % of the screenshot is not white"
