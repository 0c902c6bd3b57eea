"""The benchmark harness runs end to end: one quick round gives a checked row per contender."""

from benchmarks.harness import Settings
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


def test_compression_workloads_check_every_row() -> None:
    result = run_suite(Settings(rounds=1, batch=1), only="enc ", log=lambda _: None)

    assert not result.broken, result.broken
    assert not result.failed, [(row.workload, row.label, row.error) for row in result.failed]
    assert {w.name for w in result.workloads} >= {"enc br-4 medium", "enc browser large"}
    for workload in result.workloads:
        assert workload.baseline == "stock"
        assert workload.peer is not None
