"""The benchmark harness runs end to end: one quick round gives a checked row per contender."""

import importlib.util
import re
from decimal import Decimal

from pydantic import TypeAdapter

from benchmarks.apps import contenders
from benchmarks.harness import Settings
from benchmarks.payloads import LARGE_COUNT, MEDIUM_COUNT, Plan, User, build_payloads
from benchmarks.suite import run_suite


def test_quick_run_gives_a_row_per_contender() -> None:
    # "GET msgpack small" is the workload every contender takes part in.
    result = run_suite(
        Settings(rounds=1, batch=2),
        only="GET msgpack small",
        contender_names=["stock", "msgpack-asgi", "serdes", "serdes-plain"],
        log=lambda _: None,
    )

    assert not result.broken, result.broken
    assert not result.failed, [(row.label, row.error) for row in result.failed]
    (workload,) = result.workloads
    assert {"stock", "msgpack-asgi"} <= result.contenders.keys()
    assert {entry.contender for entry in workload.entries} == result.contenders.keys()
    rows = {row.label: row for row in result.rows if row.workload == workload.name}
    assert rows.keys() == {entry.label for entry in workload.entries}
    for row in rows.values():
        assert len(row.samples_ns) == 1
        assert row.median_us > 0
        assert row.response_bytes > 0
        assert row.vs_baseline is not None
        assert row.vs_peer is not None
    assert workload.baseline is not None
    assert rows[workload.baseline].vs_baseline == 1.0


def test_every_contender_answers_every_workload_correctly() -> None:
    # One round of one request: every row's response was checked (status, content type and
    # coding, a body that decodes to the payload; cache hits byte for byte stock's) first.
    result = run_suite(Settings(rounds=1, batch=1), log=lambda _: None)

    assert not result.broken, result.broken
    assert not result.failed, [(row.workload, row.label, row.error) for row in result.failed]
    # Only optional peers may be missing, and then only when they are not installed.
    optional = {"litestar-cached": "litestar", "fastapi-cache2": "fastapi_cache"}
    for name in contenders().keys() - result.contenders.keys():
        assert name in optional or name.endswith("otel"), (name, result.skipped.get(name))
        if name in optional:
            assert importlib.util.find_spec(optional[name]) is None, result.skipped[name]
    names = {w.name for w in result.workloads}
    assert {
        "GET json large",
        "POST msgpack medium",
        "enc zstd-4 medium",
        "cache hit large",
    } <= names
    for workload in result.workloads:
        rows = [row for row in result.rows if row.workload == workload.name]
        assert len(rows) == len(workload.entries) > 0
        assert all(len(row.samples_ns) == 1 for row in rows)
        if workload.name.startswith(("GET ", "POST json", "POST msgpack", "enc ", "cache hit")):
            assert workload.baseline in {"stock", "stock (json)"}, workload.name
            json_only = workload.name.startswith(("GET json", "POST json"))
            assert workload.peer is not None or json_only, workload.name


def test_payloads_hold_what_real_api_records_hold() -> None:
    payloads = build_payloads()
    assert (len(payloads.medium), len(payloads.large)) == (MEDIUM_COUNT, LARGE_COUNT)
    medium = TypeAdapter(list[User]).dump_json(payloads.medium)
    # UUID hex with digit-e-digit runs (they look like float exponents to a byte screen).
    assert re.search(rb'"id":"[0-9a-f-]*\de\d[0-9a-f-]*"', medium)
    assert len({u.created_at.utcoffset() for u in payloads.medium}) >= 5
    assert b'"monthly_price":"12.50"' in medium
    assert {u.subscription.plan for u in payloads.medium} == set(Plan)
    assert any(u.subscription.renews_at is None for u in payloads.medium)
    assert any(u.bio is None for u in payloads.medium)
    assert all(isinstance(u.subscription.monthly_price, Decimal) for u in payloads.medium)
    # Sizes comparable to the integer-id users they replaced (~27 KB for 100 users).
    assert 30_000 < len(medium) < 45_000
