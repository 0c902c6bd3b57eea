"""The response cache scaled out (``benchmarks/cluster.py``): four uvicorn replicas sharing one
Redis this test starts, then a 3-node Redis Cluster it starts with the stores' in-process tiers
on, under a short mixed load.

Each run checks read-your-writes across replicas, no errors, each never-written entry computed
once for the whole cluster, and hits from a replica's first request (see the harness). The checker
itself is pinned first, on made-up loads, so a run that passes is one where the checks could have
failed. Never skipped: without ``redis-server`` and ``redis-cli`` the runs fail and say so.
"""

from __future__ import annotations

import pytest

from benchmarks.cluster import Load, Options, Read, Report, Write, measure, missed_hits, violations

pytestmark = pytest.mark.server

#: The replicas and the load of a run: long enough for hundreds of writes and cold misses.
PROCESSES = 4
CONCURRENCY = 32
#: The replicas' RedisStore timeout: what is checked here is coherence and computing once, not
#: the circuit breaker (tested in test_redis_store.py); with the default 50 ms, a moment when
#: this shared 2-core machine deschedules the Redis server opens every replica's circuit.
STORE_TIMEOUT = 2.0


def quiet(_: str) -> None:
    """The report is in the assertion message when a check fails."""


def ran(report: Report) -> None:
    """The run did what a run must do to prove anything: reads, writes, cold paths, hits."""
    figures = report.figures
    # Floors, not targets: a loaded 2-core machine serves a few hundred requests in a run.
    assert figures["requests"] > 200, str(report)
    assert figures["cold paths"] > 30, str(report)
    assert 0 < figures["hit ratio"] < 1, str(report)


def test_checker_flags_a_read_older_than_a_completed_write() -> None:
    load = Load(t0=0.0)
    load.writes.append(Write(item=2, replica=0, start=1.0, end=1.1, version=2))
    # Started after the write completed: must show v2 or later.
    load.reads.append(Read("item", "/items/2", 1, 1.2, {2: (2, 0)}, 1.3, 200, "x; hit", {2: 1}))
    load.reads.append(Read("item", "/items/2", 2, 1.2, {2: (2, 0)}, 1.3, 200, "x; hit", {2: 2}))

    (found,) = violations(load)

    assert found[0].replica == 1
    assert "expected >= v2" in found[2]
    assert "got v1" in found[2]


def test_checker_expects_a_hit_after_a_stored_read_unless_a_write_overlaps() -> None:
    load = Load(t0=0.0)
    stored = "fastapi-serdes; fwd=miss; stored"
    load.reads.append(Read("item", "/items/1", 0, 1.0, {}, 1.1, 200, stored, {1: 1}))
    load.reads.append(Read("item", "/items/1", 1, 1.2, {}, 1.3, 200, stored, {1: 1}))  # missed
    load.reads.append(Read("item", "/items/2", 0, 1.0, {}, 1.1, 200, stored, {2: 1}))
    # A write of item 2 runs while the next read of it does: its miss is legitimate.
    load.writes.append(Write(item=2, replica=3, start=1.25, end=1.5, version=2))
    load.reads.append(Read("item", "/items/2", 1, 1.2, {}, 1.3, 200, stored, {2: 1}))

    missed = missed_hits(load, Options(items=4, owners=2))

    assert list(missed) == [1]
    ((read, _),) = missed[1]
    assert read.path == "/items/1"


def test_four_replicas_sharing_one_redis() -> None:
    report = measure(
        Options(
            seconds=8,
            processes=PROCESSES,
            concurrency=CONCURRENCY,
            own_redis=True,
            store_timeout=STORE_TIMEOUT,
        ),
        log=quiet,
    )

    ran(report)
    assert not report.failures, str(report)


def test_four_replicas_with_in_process_tiers_sharing_a_redis_cluster() -> None:
    # The tiers on the deployment whose invalidation is not one atomic script (the clock moves
    # twice), so the checks hold the tiers to read-your-writes where it is hardest; the tier on
    # one server is checked by tests/test_near_tier.py and tests/test_cache_coherence.py.
    report = measure(
        Options(
            seconds=8,
            processes=PROCESSES,
            concurrency=CONCURRENCY,
            cluster=True,
            near_bytes=32 << 20,
            store_timeout=STORE_TIMEOUT,
        ),
        log=quiet,
    )

    ran(report)
    assert not report.failures, str(report)
