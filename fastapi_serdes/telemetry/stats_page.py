"""The stats page: a :meth:`SerdesStats.snapshot` as one self-contained HTML document.

Tables with small inline SVG charts; no JavaScript, no stylesheet, font or image to fetch, so it
renders the same behind a strict ``Content-Security-Policy`` and offline. Every text from the
snapshot is escaped (route templates are the app's, but a page must not trust them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any, Final

_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px 32px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
p.note{color:#57606a;margin:0 0 8px}
table{border-collapse:collapse;margin-bottom:4px}
th,td{padding:5px 10px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th{font-weight:600;background:#f6f8fa}th.l,td.l{text-align:left}
td.chart{padding:2px 10px}code{font:13px ui-monospace,Menlo,Consolas,monospace}
.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:-1px}
"""
_BLUE: Final = "#2563eb"
_PALE: Final = "#bfdbfe"
_GREEN: Final = "#16a34a"
_AMBER: Final = "#f59e0b"
_GREY: Final = "#d1d5db"
_STATUS_COLOURS: Final = {
    "400": "#7c3aed",
    "406": "#db2777",
    "413": "#ea580c",
    "415": "#0891b2",
    "422": "#ca8a04",
}
_RANGE_WIDTH: Final = 260
_BAR_WIDTH: Final = 160
_NONE: Final = "&ndash;"  # no figure


def render_page(snapshot: dict[str, Any]) -> str:
    """The HTML page of a snapshot (see :meth:`SerdesStats.snapshot` for its shape)."""
    routes: list[dict[str, Any]] = snapshot.get("routes", [])
    totals: list[dict[str, Any]] = snapshot.get("by_route", [])
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>fastapi-serdes stats</title><style>{_STYLE}</style></head><body>",
        "<h1>fastapi-serdes stats</h1>",
        '<p class="note">Serialization cost since the process started, per route. '
        "Durations in milliseconds. The same data as JSON: ask with "
        "<code>Accept: application/json</code>.</p>",
    ]
    if not routes and not totals:
        parts.append('<p id="empty">No measurements yet: send some requests, then reload.</p>')
    else:
        parts.append(_routes_table(totals))
        for operation, heading in (("encode", "Encoding"), ("decode", "Decoding")):
            measured = [r for r in routes if "count" in r.get(operation, {})]
            if measured:
                parts.append(_durations_table(operation, heading, measured))
        parts.append(_compression_table(routes))
    parts.append("</body></html>")
    return "".join(parts)


def _routes_table(totals: Sequence[dict[str, Any]]) -> str:
    most = max((t["client_errors"] for t in totals), default=0)
    rows = []
    for entry in totals:
        route, cache = entry["route"], entry.get("cache")
        name = _code(route) if route is not None else "<em>before routing</em>"
        counts = _cells(
            entry["encoded"], entry["decoded"], entry["decode_failures"], entry["client_errors"]
        )
        rows.append(
            f'<tr data-route="{escape(route or "")}"><td class="l">{name}</td>{counts}'
            f'<td class="chart">{_errors_bar(entry["errors_by_status"], most)}</td>'
            f"<td>{_percent(cache['hit_rate'] if cache else None)}</td>"
            f'<td class="chart">{_cache_bar(cache) if cache else ""}</td></tr>'
        )
    statuses = sorted({s for t in totals for s in t["errors_by_status"]})
    keys = "".join(_key(_status_colour(s), s) for s in statuses)
    cache_keys = _key(_GREEN, "hit") + _key(_AMBER, "stale") + _key(_GREY, "miss")
    head = (
        '<th class="l">route</th><th>encoded</th><th>decoded</th><th>decode failures</th>'
        f'<th>4xx answered</th><th class="l">by status{keys}</th><th>cache hit ratio</th>'
        f'<th class="l">{cache_keys}</th>'
    )
    return _table("routes", "Routes", head, rows)


def _durations_table(operation: str, heading: str, rows: Sequence[dict[str, Any]]) -> str:
    summaries = [r[operation] for r in rows]
    low, high = _log_range(v for s in summaries for v in (s["min_ms"], s["max_ms"]))
    decode = operation == "decode"
    body = []
    for row, s in zip(rows, summaries, strict=True):
        ms = (_ms(s[k]) for k in ("min_ms", "p50_ms", "p95_ms", "max_ms", "mean_ms"))
        cells = [s["count"], *ms, _bytes(s.get("bytes_mean"))]
        if decode:
            cells.append(row.get("decode_failures", 0))
        chart = _range_bar(s, low, high)
        body.append(f'{_row_start(row)}{_cells(*cells)}<td class="chart">{chart}</td></tr>')
    legend = _key(_GREY, "min to max") + _key(_PALE, "p50 to p95") + _key(_BLUE, "p50")
    head = (
        '<th class="l">route</th><th class="l">media type</th><th>count</th><th>min</th>'
        "<th>p50</th><th>p95</th><th>max</th><th>mean</th><th>bytes (mean)</th>"
        f"{'<th>failures</th>' if decode else ''}"
        f'<th class="l">{legend}<br>{_axis(low, high)}</th>'
    )
    return _table(operation, heading, head, body)


def _compression_table(routes: Sequence[dict[str, Any]]) -> str:
    body = []
    for row in routes:
        for coding, s in sorted(row.get("compress", {}).items()):
            if "count" in s:
                figures = (_ms(s["p50_ms"]), _ms(s["p95_ms"]), _bytes(s.get("bytes_mean")))
                body.append(
                    f'{_row_start(row)}<td class="l">{escape(coding)}</td>'
                    f"{_cells(s['count'], *figures, _percent(s.get('ratio')))}"
                    f'<td class="chart">{_ratio_bar(s.get("ratio"))}</td></tr>'
                )
    if not body:
        return ""
    head = (
        '<th class="l">route</th><th class="l">media type</th><th class="l">coding</th>'
        "<th>count</th><th>p50</th><th>p95</th><th>bytes (mean)</th><th>size / identity</th>"
        f'<th class="l">{_key(_BLUE, "compressed size")}</th>'
    )
    return _table("compress", "Compression", head, body)


def _table(table_id: str, heading: str, head: str, rows: Iterable[str]) -> str:
    """A headed table: ``head`` its header cells, ``rows`` its rows."""
    return (
        f'<h2>{heading}</h2><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _row_start(row: dict[str, Any]) -> str:
    """A table row's start: its route and media type."""
    route = row["route"] or ""
    return (
        f'<tr data-route="{escape(route)}"><td class="l">{_code(route)}</td>'
        f'<td class="l">{escape(row["media_type"] or "")}</td>'
    )


def _cells(*figures: object) -> str:
    return "".join(f"<td>{figure}</td>" for figure in figures)


# --- charts -----------------------------------------------------------------------------------


def _svg(width: int, height: int, label: str, shapes: Iterable[str]) -> str:
    label = escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{''.join(shapes)}</svg>"
    )


def _rect(x: float, width: float, colour: str, y: float = 3, height: float = 12) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y}" width="{max(width, 0.0):.1f}" height="{height}" '
        f'fill="{colour}"/>'
    )


def _log_range(values: Iterable[float]) -> tuple[float, float]:
    """Decades around the positive values: the scale every row of one chart shares."""
    positive = [v for v in values if v > 0]
    if not positive:
        return -3.0, 0.0
    low = math.floor(math.log10(min(positive)))
    high = math.ceil(math.log10(max(positive)))
    return float(low), float(max(high, low + 1))


def _x(value: float, low: float, high: float) -> float:
    if value <= 0:
        return 0.0
    position = (math.log10(value) - low) / (high - low)
    return min(max(position, 0.0), 1.0) * (_RANGE_WIDTH - 2) + 1


def _range_bar(s: dict[str, Any], low: float, high: float) -> str:
    """Min to max as a thin grey line, p50 to p95 as a pale box, p50 as a dark mark."""
    figures = {name: s[f"{name}_ms"] for name in ("min", "p50", "p95", "max")}
    lo, p50, p95, hi = (_x(value, low, high) for value in figures.values())
    label = ", ".join(f"{name} {_ms(value)} ms" for name, value in figures.items())
    shapes = [
        _rect(lo, hi - lo, _GREY, y=8, height=2),
        _rect(p50, max(p95 - p50, 2), _PALE, y=3),
        _rect(p50 - 1, 2, _BLUE, y=2, height=14),
    ]
    return _svg(_RANGE_WIDTH, 18, label, shapes)


def _axis(low: float, high: float) -> str:
    """The decades of the log scale, under the legend."""
    shapes = []
    for decade in range(int(low), int(high) + 1):
        x = _x(10.0**decade, low, high)
        anchor = "start" if decade == low else "end" if decade == high else "middle"
        shapes.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="12" y2="16" stroke="#57606a"/>')
        shapes.append(
            f'<text x="{x:.1f}" y="10" font-size="10" text-anchor="{anchor}" '
            f'fill="#57606a">{10.0**decade:g} ms</text>'
        )
    return _svg(_RANGE_WIDTH, 16, "log scale, milliseconds", shapes)


def _cache_bar(cache: dict[str, Any]) -> str:
    lookups = cache["hits"] + cache["stale"] + cache["misses"]
    label = f"{cache['hits']} hits, {cache['stale']} stale, {cache['misses']} misses"
    parts = [(cache["hits"], _GREEN), (cache["stale"], _AMBER)]
    return _bar(parts, lookups, label, background=_GREY)


def _errors_bar(by_status: dict[str, int], most: int) -> str:
    if not by_status or not most:
        return ""
    label = ", ".join(f"{count} answered {status}" for status, count in by_status.items())
    return _bar([(count, _status_colour(s)) for s, count in by_status.items()], most, label)


def _ratio_bar(ratio: float | None) -> str:
    share = _percent(ratio) if ratio is not None else "\u2013"  # _svg escapes its title
    parts = [(min(ratio, 1.0), _BLUE)] if ratio is not None else []
    return _bar(parts, 1, f"compressed to {share} of the identity size", background="#eef2f7")


def _bar(
    parts: Iterable[tuple[float, str]], whole: float, label: str, background: str | None = None
) -> str:
    """A horizontal bar of ``parts`` (amount, colour) side by side, ``whole`` its full width."""
    shapes = [_rect(0, _BAR_WIDTH, background)] if background else []
    x = 0.0
    for amount, colour in parts:
        width = _BAR_WIDTH * amount / whole if whole else 0.0
        shapes.append(_rect(x, width, colour))
        x += width
    return _svg(_BAR_WIDTH, 18, label, shapes)


def _key(colour: str, label: str) -> str:
    return f'<span class="key" style="background:{colour}"></span>{escape(label)}'


def _status_colour(status: str) -> str:
    return _STATUS_COLOURS.get(status, "#6b7280")


# --- figures ----------------------------------------------------------------------------------


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _ms(value: float) -> str:
    """Three significant figures at most, never an exponent."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    text = f"{value:.3g}"
    return f"{value:.6f}".rstrip("0") if "e" in text else text


def _bytes(value: float | None) -> str:
    if value is None:
        return _NONE
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.1f} MiB"
    if value >= 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value:.0f} B"


def _percent(value: float | None) -> str:
    return _NONE if value is None else f"{value * 100:.1f} %"
