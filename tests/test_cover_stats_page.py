"""The stats page's compression table and the figures it prints, from real measurements and
from snapshots written by hand (the corners a short run does not reach)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from fastapi_serdes import Telemetry
from fastapi_serdes.telemetry.stats import SerdesStats
from fastapi_serdes.telemetry.stats_page import render_page
from tests.conftest import build_app


@pytest.fixture
def stats() -> Iterator[tuple[SerdesStats, MeterProvider]]:
    reader = SerdesStats()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


def duration(**figures: float) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "count": 3,
        "mean_ms": 1.0,
        "min_ms": 1.0,
        "p50_ms": 1.0,
        "p95_ms": 1.0,
        "max_ms": 1.0,
    }
    summary.update(figures)
    return summary


def page_of(*rows: dict[str, Any]) -> str:
    totals = [
        {
            "route": row["route"],
            "encoded": 1,
            "decoded": 0,
            "decode_failures": 0,
            "client_errors": 0,
            "errors_by_status": {},
        }
        for row in rows
    ]
    return render_page({"routes": list(rows), "problems": [], "by_route": totals})


def table(page: str, table_id: str) -> str:
    found = re.search(f'<table id="{table_id}">.*?</table>', page)
    assert found is not None, f"no table {table_id!r} in the page"
    return found.group(0)


@pytest.mark.anyio
async def test_measured_compression_gets_its_own_table(
    stats: tuple[SerdesStats, MeterProvider],
) -> None:
    reader, provider = stats
    app = build_app(telemetry=Telemetry(meter_provider=provider))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(3):
            response = await client.get(
                "/api/items?limit=100",
                headers={"accept": "application/msgpack", "accept-encoding": "gzip"},
            )
            assert response.headers["content-encoding"] == "gzip"
    snapshot = reader.snapshot()
    (row,) = [r for r in snapshot["routes"] if r["route"] == "/api/items"]
    ratio = row["compress"]["gzip"]["ratio"]
    assert 0 < ratio < 0.5
    compress = table(render_page(snapshot), "compress")
    assert '<td class="l">gzip</td><td>3</td>' in compress
    assert f"{ratio * 100:.1f} %" in compress
    assert f"compressed to {ratio * 100:.1f} % of the identity size" in compress


def test_a_coding_without_durations_is_left_out_and_no_table_is_empty() -> None:
    # Only sizes recorded for br (no duration histogram point): no row, and no empty table.
    row = {
        "route": "/r",
        "media_type": "application/json",
        "encode": duration(),
        "compress": {"br": {"bytes_total": 10, "bytes_mean": 10.0, "ratio": 0.5}},
    }
    page = page_of(row)
    assert 'id="compress"' not in page
    assert "<h2>Compression</h2>" not in page


def test_a_coding_without_a_ratio_shows_a_dash_and_an_empty_bar() -> None:
    row = {
        "route": "/r",
        "media_type": "application/json",
        "compress": {"zstd": {**duration(), "bytes_mean": 2 * 1024 * 1024.0}},
    }
    compress = table(page_of(row), "compress")
    assert "<td>&ndash;</td>" in compress
    assert "#2563eb" not in compress.split("<tbody>")[1]  # no blue (compressed size) bar
    assert "2.0 MiB" in compress


def test_the_ratio_chart_title_without_a_ratio_shows_a_dash() -> None:
    row = {"route": "/r", "media_type": "application/json", "compress": {"zstd": duration()}}
    compress = table(page_of(row), "compress")
    assert "<title>compressed to \u2013 of the identity size</title>" in compress


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (123.456, "123"),
        (12.345, "12.3"),
        (1.2345, "1.23"),
        (0.012345, "0.0123"),
        (0.00001, "0.00001"),  # never an exponent
    ],
)
def test_durations_keep_three_significant_figures(ms: float, shown: str) -> None:
    row = {"route": "/r", "media_type": "application/json", "encode": duration(mean_ms=ms)}
    encode = table(page_of(row), "encode")
    cells = re.findall(r"<td>([^<]*)</td>", encode)
    assert shown in cells
    assert not any("e-" in cell for cell in cells)


@pytest.mark.parametrize(
    ("mean", "shown"), [(3.0, "3 B"), (1536.0, "1.5 KiB"), (3 * 1024 * 1024.0, "3.0 MiB")]
)
def test_byte_figures_in_binary_units(mean: float, shown: str) -> None:
    row = {
        "route": "/r",
        "media_type": "application/json",
        "encode": {**duration(), "bytes_mean": mean},
    }
    assert f"<td>{shown}</td>" in table(page_of(row), "encode")


def test_durations_of_zero_still_draw_a_scale() -> None:
    zero = duration(mean_ms=0.0, min_ms=0.0, p50_ms=0.0, p95_ms=0.0, max_ms=0.0)
    row = {"route": "/r", "media_type": "application/json", "encode": zero}
    encode = table(page_of(row), "encode")
    # No positive value: the default decades, 0.001 ms to 1 ms; zero sits at the left edge.
    assert "0.001 ms" in encode
    assert ">1 ms<" in encode
    assert '<rect x="0.0" y="8" width="0.0"' in encode
