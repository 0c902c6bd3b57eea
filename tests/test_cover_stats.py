"""SerdesStats' summaries at their edges: zero durations, values no positive bucket holds, empty
points, and library metrics the snapshot does not know."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.point import Buckets
from opentelemetry.sdk.metrics.export import ExponentialHistogramDataPoint

from fastapi_serdes.telemetry import INSTRUMENTATION_NAME, METRIC_ENCODE_DURATION
from fastapi_serdes.telemetry.stats import SerdesStats, _summary, percentile

LABELS = {"http.route": "/r", "serdes.media_type": "application/json"}


@pytest.fixture
def meter_and_stats() -> Iterator[tuple[Any, SerdesStats]]:
    stats = SerdesStats()
    provider = MeterProvider(metric_readers=[stats])
    yield provider.get_meter(INSTRUMENTATION_NAME), stats
    provider.shutdown()


def test_a_median_among_zero_durations_is_zero(meter_and_stats: tuple[Any, SerdesStats]) -> None:
    meter, stats = meter_and_stats
    histogram = meter.create_histogram(METRIC_ENCODE_DURATION, "s")
    for value in (0.0, 0.0, 0.0, 0.0, 0.5):
        histogram.record(value, LABELS)
    (row,) = stats.snapshot()["routes"]
    assert row["encode"]["count"] == 5
    assert row["encode"]["p50_ms"] == 0.0
    assert row["encode"]["max_ms"] == 500.0
    assert row["encode"]["p95_ms"] == pytest.approx(500.0, rel=0.05)


def test_a_rank_past_the_positive_buckets_answers_the_recorded_maximum() -> None:
    # The SDK's histograms take no negative values, but a point may still count some (in its
    # negative buckets): the walk over the positive ones then runs out, and answers the max.
    point = ExponentialHistogramDataPoint(
        {}, 0, 0, 4, 0.5, 0, 0, Buckets(0, [1]), Buckets(0, [3]), 0, -0.5, 0.75
    )
    assert percentile(point, 0.95) == 0.75


def test_an_empty_point_summarises_to_nothing() -> None:
    empty = ExponentialHistogramDataPoint(
        {}, 0, 0, 0, 0, 0, 0, Buckets(0, []), Buckets(0, []), 0, 0, 0
    )
    assert _summary("duration", empty) == {}
    assert _summary("bytes", empty) == {}


def test_a_point_of_zeros_only() -> None:
    zeros = ExponentialHistogramDataPoint(
        {}, 0, 0, 4, 0.0, 0, 4, Buckets(0, []), Buckets(0, []), 0, 0.0, 0.0
    )
    assert percentile(zeros, 0.95) == 0.0


def test_other_metrics_of_the_library_scope_are_ignored(
    meter_and_stats: tuple[Any, SerdesStats],
) -> None:
    meter, stats = meter_and_stats
    meter.create_counter("serdes.something.new").add(3, LABELS)
    meter.create_histogram("serdes.other.duration", "s").record(0.25, LABELS)
    snapshot = stats.snapshot()
    (row,) = snapshot["routes"]
    assert row == {"route": "/r", "media_type": "application/json"}
    (total,) = snapshot["by_route"]
    assert (total["encoded"], total["decoded"], total["decode_failures"]) == (0, 0, 0)
    assert "cache" not in total
