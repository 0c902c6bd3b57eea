"""``SerdesStats``: a readable summary of serialization cost, without an observability stack.

A :class:`SerdesStats` is an OpenTelemetry metric reader (the ``otel`` extra): add it to the
SDK ``MeterProvider`` the library records to, and :meth:`SerdesStats.snapshot` summarises the
library's own metrics per route and media type: count, mean, p50, p95, bytes, compression ratio
and cache hit rate. Histograms are aggregated as base-2 exponential histograms (at most 160
buckets each, percentiles within a few percent) and the SDK caps the attribute sets per
instrument, so memory stays bounded however long the process runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

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

from . import (
    ATTR_CACHE_RESULT,
    ATTR_CODING,
    ATTR_MEDIA_TYPE,
    ATTR_ROUTE,
    CACHE_HIT,
    INSTRUMENTATION_NAME,
    METRIC_CACHE_LOOKUPS,
    METRIC_COMPRESS_DURATION,
    METRIC_COMPRESS_RATIO,
    METRIC_COMPRESS_SIZE,
    METRIC_DECODE_DURATION,
    METRIC_DECODE_SIZE,
    METRIC_ENCODE_DURATION,
    METRIC_ENCODE_SIZE,
    METRIC_PROBLEMS,
)

# metric name -> (operation, what it measures)
_HISTOGRAMS = {
    METRIC_DECODE_DURATION: ("decode", "duration"),
    METRIC_ENCODE_DURATION: ("encode", "duration"),
    METRIC_COMPRESS_DURATION: ("compress", "duration"),
    METRIC_DECODE_SIZE: ("decode", "bytes"),
    METRIC_ENCODE_SIZE: ("encode", "bytes"),
    METRIC_COMPRESS_SIZE: ("compress", "bytes"),
    METRIC_COMPRESS_RATIO: ("compress", "ratio"),
}


class SerdesStats(InMemoryMetricReader):
    """A metric reader whose :meth:`snapshot` summarises fastapi-serdes' metrics.

    Example::

        stats = SerdesStats()
        meter_provider = MeterProvider(metric_readers=[stats])
        app.add_middleware(SerdesMiddleware, telemetry=Telemetry(meter_provider=meter_provider))
        ...
        stats.snapshot()  # {"routes": [...], "problems": [...]}

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
            ``{"routes": [...], "problems": [...]}``. Each route entry has ``route``,
            ``media_type`` and, per operation seen (``decode``, ``encode``, ``compress``),
            ``count``, ``mean_ms``, ``p50_ms``, ``p95_ms``, ``bytes_total``, ``bytes_mean``
            (and ``ratio`` and ``coding`` for compression), plus ``cache`` with ``hits``,
            ``misses``, ``stale`` and ``hit_rate``. Durations are in milliseconds.
        """
        routes: dict[tuple[str, str], dict[str, Any]] = {}
        problems: list[dict[str, Any]] = []
        for metric in self._library_metrics():
            name = metric.name
            for point in metric.data.data_points:
                attributes = dict(point.attributes or {})
                if name == METRIC_PROBLEMS and isinstance(point, NumberDataPoint):
                    problems.append({**attributes, "count": int(point.value)})
                    continue
                key = (
                    str(attributes.get(ATTR_ROUTE, "")),
                    str(attributes.get(ATTR_MEDIA_TYPE, "")),
                )
                row = routes.setdefault(
                    key, {"route": key[0] or None, "media_type": key[1] or None}
                )
                if name == METRIC_CACHE_LOOKUPS and isinstance(point, NumberDataPoint):
                    cache = row.setdefault("cache", {"hits": 0, "misses": 0, "stale": 0})
                    result = attributes.get(ATTR_CACHE_RESULT)
                    field = (
                        "hits"
                        if result == CACHE_HIT
                        else "stale"
                        if result == "stale"
                        else "misses"
                    )
                    cache[field] += int(point.value)
                elif name in _HISTOGRAMS and isinstance(point, ExponentialHistogramDataPoint):
                    operation, measure = _HISTOGRAMS[name]
                    target = row.setdefault(operation, {})
                    if operation == "compress":
                        coding = str(attributes.get(ATTR_CODING, ""))
                        target = target.setdefault(coding, {})
                    target.update(_summary(measure, point))
        for row in routes.values():
            cache = row.get("cache")
            if cache is not None:
                total = cache["hits"] + cache["misses"] + cache["stale"]
                cache["hit_rate"] = round(cache["hits"] / total, 4) if total else None
        ordered = sorted(routes.values(), key=lambda r: (r["route"] or "", r["media_type"] or ""))
        return {"routes": ordered, "problems": problems}

    def _library_metrics(self) -> Iterable[Any]:
        data = self.get_metrics_data()
        if data is None:
            return
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                if scope_metrics.scope.name == INSTRUMENTATION_NAME:
                    yield from scope_metrics.metrics


def _summary(measure: str, point: ExponentialHistogramDataPoint) -> dict[str, Any]:
    count = point.count
    if not count:
        return {}
    mean = point.sum / count
    if measure == "duration":
        ms = 1000.0
        return {
            "count": count,
            "mean_ms": round(mean * ms, 4),
            "p50_ms": round(percentile(point, 0.5) * ms, 4),
            "p95_ms": round(percentile(point, 0.95) * ms, 4),
        }
    if measure == "bytes":
        return {"bytes_total": int(point.sum), "bytes_mean": round(mean, 1)}
    return {"ratio": round(mean, 4)}


def percentile(point: ExponentialHistogramDataPoint, q: float) -> float:
    """The ``q`` quantile of a base-2 exponential histogram of non-negative values.

    Bucket ``i`` holds values in ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``; the
    answer is interpolated within its bucket and clamped to the recorded min and max.
    """
    count = point.count
    if count == 0:
        return math.nan
    rank = q * count
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
