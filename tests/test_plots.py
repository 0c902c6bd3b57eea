"""benchmarks/plots.py on a tiny hand-made result: well-formed SVG, one bar per row, the tables."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from benchmarks import plots

SVG = "{http://www.w3.org/2000/svg}"


def _row(workload: str, label: str, median: float, ratio: float, peer: float | None) -> Any:
    return {
        "workload": workload,
        "contender": label,
        "label": label,
        "error": None,
        "request_bytes": 0,
        "response_bytes": 280,
        "batch": 100,
        "median_us": median,
        "spread": 0.01,
        "vs_baseline": ratio,
        "vs_peer": peer,
        "samples_ns": [median * 1000] * 3,
    }


RESULTS: dict[str, Any] = {
    "workloads": [
        {"name": "GET json small", "baseline": "stock", "peer": None},
        {"name": "GET msgpack small", "baseline": "stock", "peer": "msgpack-asgi"},
    ],
    "rows": [
        _row("GET json small", "stock", 70.0, 1.0, None),
        _row("GET json small", "msgpack-asgi", 95.0, 0.74, None),
        _row("GET json small", "serdes", 90.0, 0.78, None),
        _row("GET msgpack small", "stock", 70.0, 1.0, 3.5),
        _row("GET msgpack small", "msgpack-asgi", 245.0, 0.29, 1.0),
        _row("GET msgpack small", "serdes", 60.0, 1.17, 4.08),
    ],
}


def _texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == cls]


def test_one_chart_per_group_with_one_bar_per_row() -> None:
    groups = plots.grouped(RESULTS)
    assert [stem for stem, _, _ in groups] == ["get-json", "get-msgpack"]
    for (_, title, workloads), expected in zip(
        groups, (["1.00x", "0.74x", "0.78x"], ["1.00x", "0.29x", "1.17x"]), strict=True
    ):
        root = ET.fromstring(plots.svg_chart(title, workloads))
        bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
        assert len(bars) == 3
        assert all(float(bar.get("width", "0")) > 0 for bar in bars)
        assert _texts(root, "ratio") == expected


def test_tables_have_one_row_per_result() -> None:
    lines = plots.markdown_tables(RESULTS).splitlines()
    rows = [line for line in lines if line.startswith("| ") and "µs/request" not in line]
    assert len(rows) == 6
    assert rows[0] == "| GET json small<br>baseline: stock | stock | 70.0 | 1% | 1.00x |  |"
    assert rows[4].startswith("|  | msgpack-asgi | 245.0 | 1% | 0.29x | 1.00x |")
    assert "peer: msgpack-asgi" in rows[3]


def test_write_all(tmp_path: Path) -> None:
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(RESULTS), encoding="utf-8")
    assert plots.main([str(source), str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["get-json.svg", "get-msgpack.svg", "tables.md"]


def test_ticks_of_a_wide_range_do_not_overlap() -> None:
    # A cache hit is thousands of times stock FastAPI, fastapi-cache2's a twentieth of it.
    rows = [
        _row("cache hit large", "stock", 6000.0, 1.0, None),
        _row("cache hit large", "fastapi-cache2", 100_000.0, 0.06, None),
        _row("cache hit large", "asgi-bytes", 2.0, 3500.0, None),
    ]
    root = ET.fromstring(plots.svg_chart("Response cache", [("cache hit large", "stock", rows)]))
    ticks = {
        float(t.get("x", "0")): t.text or ""
        for t in root.iter(f"{SVG}text")
        if (t.text or "").endswith("x") and t.get("class") is None
    }
    labels = set(ticks.values())
    assert {"1x", "0.1x", "1000x"} <= labels, labels
    positions = sorted(ticks)
    assert all(b - a >= plots.TICK_GAP for a, b in itertools.pairwise(positions))
