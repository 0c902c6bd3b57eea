"""``SerdesStats``: a readable summary of serialization cost, without an observability stack.

A metric reader (the ``otel`` extra) that summarises the library's own metrics per route and
media type, and per route; served as JSON, or as an HTML page (:mod:`.stats_page`) to browsers.
Histograms are base-2 exponential (at most 160 buckets, percentiles within a few percent) and
the SDK caps the attribute sets per instrument, so memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from starlette.responses import HTMLResponse, JSONResponse, Response

try:
    from opentelemetry.sdk.metrics import Histogram
    from opentelemetry.sdk.metrics.export import (
        ExponentialHistogramDataPoint,
        InMemoryMetricReader,
        NumberDataPoint,
    )
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "SerdesStats needs the OpenTelemetry SDK: pip install 'fastapi-serdes[otel]'"
    ) from exc

from ..negotiation import choose_media_type
from . import (
    ATTR_CACHE_RESULT,
    ATTR_CODING,
    ATTR_MEDIA_TYPE,
    ATTR_ROUTE,
    ATTR_STATUS,
    CACHE_HIT,
    CACHE_STALE,
    HISTOGRAMS,
    INSTRUMENTATION_NAME,
    METRIC_CACHE_LOOKUPS,
    METRIC_DECODE_ERRORS,
    METRIC_PROBLEMS,
)
from .stats_page import render_page

#: What :meth:`SerdesStats.response` can answer, the default first (clients that say nothing
#: more specific, ``*/*`` included, get JSON; a browser's ``text/html`` gets the page).
OFFERS: Final = ("application/json", "text/html")


class SerdesStats(InMemoryMetricReader):
    """A metric reader whose :meth:`snapshot` summarises fastapi-serdes' metrics.

    Example::

        stats = SerdesStats()
        meter_provider = MeterProvider(metric_readers=[stats])
        app.add_middleware(SerdesMiddleware, telemetry=Telemetry(meter_provider=meter_provider))


        @app.get("/stats")
        def serdes_stats(request: Request) -> Response:
            return stats.response(request.headers.get("accept"))

    Args:
        max_buckets: buckets per exponential histogram (more: finer percentiles, more memory).
    """

    def __init__(self, *, max_buckets: int = 160) -> None:
        super().__init__(
            preferred_aggregation={
                Histogram: ExponentialBucketHistogramAggregation(max_size=max_buckets)
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """The summary since the process started, as plain JSON-ready data.

        Returns:
            ``{"routes": [...], "problems": [...], "by_route": [...]}``: per route and media
            type, each operation's count, durations (in milliseconds), bytes, compression
            ratio, cache lookups and decode failures; every counted problem (status, slug,
            route, count); per route (None: answered before routing), the same summed over its
            media types with the 4xx answers. The how-to guide *Trace and measure
            serialization* lists every field.
        """
        routes: dict[tuple[str, str], dict[str, Any]] = {}
        problems: list[dict[str, Any]] = []
        for metric in self._library_metrics():
            for point in metric.data.data_points:
                attributes = dict(point.attributes or {})
                if metric.name == METRIC_PROBLEMS and isinstance(point, NumberDataPoint):
                    problems.append({**attributes, "count": int(point.value)})
                else:
                    _add_point(_row(routes, attributes), metric.name, point, attributes)
        ordered = sorted(routes.values(), key=lambda r: (r["route"] or "", r["media_type"] or ""))
        for row in ordered:
            if "cache" in row:
                row["cache"]["hit_rate"] = _hit_rate(row["cache"])
        return {"routes": ordered, "problems": problems, "by_route": by_route(ordered, problems)}

    def response(self, accept: str | None) -> Response:
        """The snapshot for a client sending ``accept``: JSON by default, the HTML page when
        the client prefers ``text/html`` (a browser). Either way ``Vary: Accept``."""
        snapshot = self.snapshot()
        headers = {"Vary": "Accept"}
        if choose_media_type(accept, OFFERS) == "text/html":
            # The page is self-contained: no script, no stylesheet or font to fetch.
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
            return HTMLResponse(render_page(snapshot), headers=headers)
        return JSONResponse(snapshot, headers=headers)

    def _library_metrics(self) -> Iterable[Any]:
        data = self.get_metrics_data()
        if data is None:
            return
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name == INSTRUMENTATION_NAME:
                    yield from scope_metrics.metrics


def by_route(rows: list[dict[str, Any]], problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-route totals of a snapshot: its rows (per route and media type) summed over the
    media types, with the counted problems of each route."""
    totals: dict[str, dict[str, Any]] = {}

    def total(route: str | None) -> dict[str, Any]:
        empty = {"encoded": 0, "decoded": 0, "decode_failures": 0, "client_errors": 0}
        return totals.setdefault(route or "", {"route": route, **empty, "errors_by_status": {}})

    for row in rows:
        entry = total(row["route"])
        entry["encoded"] += row.get("encode", {}).get("count", 0)
        entry["decoded"] += row.get("decode", {}).get("count", 0)
        entry["decode_failures"] += row.get("decode_failures", 0)
        if "cache" in row:
            summed = entry.setdefault("cache", {"hits": 0, "misses": 0, "stale": 0})
            for field in ("hits", "misses", "stale"):
                summed[field] += row["cache"][field]
            summed["hit_rate"] = _hit_rate(summed)
    for problem in problems:
        status, route = problem.get(ATTR_STATUS), problem.get(ATTR_ROUTE)
        if isinstance(status, int) and 400 <= status <= 499:
            entry = total(route if isinstance(route, str) else None)
            entry["client_errors"] += problem["count"]
            by_status = entry["errors_by_status"]
            by_status[str(status)] = by_status.get(str(status), 0) + problem["count"]
    for entry in totals.values():
        entry["errors_by_status"] = dict(sorted(entry["errors_by_status"].items()))
    return sorted(totals.values(), key=lambda e: (e["route"] is None, e["route"] or ""))


def _row(
    routes: dict[tuple[str, str], dict[str, Any]], attributes: dict[str, Any]
) -> dict[str, Any]:
    """The row of the route and media type in ``attributes``."""
    key = (str(attributes.get(ATTR_ROUTE, "")), str(attributes.get(ATTR_MEDIA_TYPE, "")))
    return routes.setdefault(key, {"route": key[0] or None, "media_type": key[1] or None})


def _add_point(row: dict[str, Any], name: str, point: Any, attributes: dict[str, Any]) -> None:
    """Add one data point of the metric ``name`` to a row of the snapshot."""
    if name == METRIC_CACHE_LOOKUPS and isinstance(point, NumberDataPoint):
        cache = row.setdefault("cache", {"hits": 0, "misses": 0, "stale": 0})
        result = attributes.get(ATTR_CACHE_RESULT)
        field = "hits" if result == CACHE_HIT else "stale" if result == CACHE_STALE else "misses"
        cache[field] += int(point.value)
    elif name == METRIC_DECODE_ERRORS and isinstance(point, NumberDataPoint):
        row["decode_failures"] = row.get("decode_failures", 0) + int(point.value)
    elif name in HISTOGRAMS and isinstance(point, ExponentialHistogramDataPoint):
        operation, measure, _, _ = HISTOGRAMS[name]
        target = row.setdefault(operation, {})
        if operation == "compress":
            target = target.setdefault(str(attributes.get(ATTR_CODING, "")), {})
        target.update(_summary(measure, point))


def _hit_rate(cache: dict[str, Any]) -> float | None:
    lookups = cache["hits"] + cache["misses"] + cache["stale"]
    return round(cache["hits"] / lookups, 4) if lookups else None


def _summary(measure: str, point: ExponentialHistogramDataPoint) -> dict[str, Any]:
    count = point.count
    if not count:
        return {}
    mean = point.sum / count
    if measure == "duration":
        seconds = {
            "mean_ms": mean,
            "min_ms": point.min,
            "p50_ms": percentile(point, 0.5),
            "p95_ms": percentile(point, 0.95),
            "max_ms": point.max,
        }
        return {"count": count, **{k: round(v * 1000.0, 4) for k, v in seconds.items()}}
    if measure == "bytes":
        return {"bytes_total": int(point.sum), "bytes_mean": round(mean, 1)}
    return {"ratio": round(mean, 4)}


def percentile(point: ExponentialHistogramDataPoint, q: float) -> float:
    """The ``q`` quantile of a base-2 exponential histogram of non-negative values.

    Bucket ``i`` holds values in ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``; the
    answer is interpolated within its bucket and clamped to the recorded min and max.
    """
    if point.count == 0:
        return math.nan
    rank = q * point.count
    seen = point.zero_count
    if rank <= seen:
        return 0.0
    base = 2.0 ** (2.0**-point.scale)
    offset = point.positive.offset
    for i, bucket in enumerate(point.positive.bucket_counts):
        if bucket and seen + bucket >= rank:
            lower = base ** (offset + i)
            upper = lower * base
            value = lower + (upper - lower) * (rank - seen) / bucket
            return float(min(max(value, point.min), point.max))
        seen += bucket
    return float(point.max)
