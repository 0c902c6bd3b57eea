"""The response cache scaled out: N uvicorn replicas sharing one Redis, under a mixed load.

``python -m benchmarks.cluster --seconds 60 --processes 4`` starts the replicas
(``uvicorn benchmarks.cluster_app:app`` on free loopback ports, one worker each), seeds the origin,
runs a bounded async load generator (random replica per request, ~90 % reads / 10 % writes over a
few hundred items with a skewed popularity), and checks:

- **read-your-writes across replicas**: a GET that starts after a write of an item completed
  (its response received) returns that version or a later one;
- **no errors**: every answer is a 2xx, no connection fails;
- **each cold entry computed once for the whole cluster**: a path never written is computed
  exactly once (the ``computed:<path>`` counters the app increments in Redis);
- **hits from the first request**: a GET of a path that some replica stored (or served) after the
  last write touching it is a hit on every replica, its first request included (no learning).

The report gives requests, rps, p50/p95 latency per kind, hit ratios per replica and the figures
of each check; the exit status is 1 when a check fails. Redis: ``--redis-url`` (default
``$REDIS_URL`` or the local 6379 when it answers, else a ``redis-server`` of our own),
``--own-redis`` to always start one, ``--cluster`` for a local 3-node Redis Cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.cluster import RedisCluster

from benchmarks.redis_servers import answers, cluster, free_ports, redis_server, wait_until

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: The Host every request carries, whichever replica it goes to (as behind a load balancer).
HOST = "api.cluster.test"


@dataclass(frozen=True)
class Options:
    """What to run: how long, how many replicas, the load's shape, which Redis."""

    seconds: float = 60.0
    processes: int = 4
    concurrency: int = 32
    items: int = 300
    owners: int = 20
    write_ratio: float = 0.10
    skew: float = 1.1
    redis_url: str | None = None
    own_redis: bool = False
    cluster: bool = False
    store_timeout: float | None = None  # the RedisStore timeout (None: the library's default)
    near_bytes: int | None = None  # the replicas' in-process tier (None: without one)
    origin_ms: float = 10.0  # how long a GET computes after reading the origin
    seed: int = 17


# --- processes ----------------------------------------------------------------------------------


@contextmanager
def process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running (output to ``log``, never a pipe a chatty process could fill); stopped
    afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def started(
    proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool]
) -> Callable[[], bool]:
    """``ready``, failing at once with the process's output when it has exited."""

    def check() -> bool:
        if proc.poll() is not None:
            output = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode}: {output}")
        return ready()

    return check


def choose_redis(stack: ExitStack, directory: Path, options: Options) -> tuple[str, bool]:
    """The URL of the Redis the run uses (starting one when asked, or when none answers), and
    whether we started it."""
    if options.cluster:
        ports = stack.enter_context(cluster(directory))
        return f"redis://127.0.0.1:{ports[0]}/0", True
    if not options.own_redis:
        url = options.redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL
        try:
            with redis.Redis.from_url(url, socket_timeout=1) as client:
                if client.ping():
                    return url, False
        except (redis.RedisError, OSError):
            if options.redis_url is not None:
                raise
    (port,) = free_ports(1)
    stack.enter_context(
        redis_server("--port", str(port), "--dir", str(directory), ready=lambda: answers(port))
    )
    return f"redis://127.0.0.1:{port}/0", True


def origin_client(url: str, cluster: bool) -> redis.Redis | RedisCluster:
    if cluster:
        return RedisCluster.from_url(url, decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def start_replicas(stack: ExitStack, directory: Path, count: int, env: dict[str, str]) -> list[int]:
    """``count`` uvicorn processes serving the cluster app, once each answers; their ports."""
    ports = free_ports(count)
    procs = []
    for index, port in enumerate(ports):
        argv = [sys.executable, "-m", "uvicorn", "benchmarks.cluster_app:app", "--host",
                "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
                "--log-level", "warning", "--timeout-graceful-shutdown", "2"]  # fmt: skip
        log = directory / f"replica-{index}.log"
        procs.append((stack.enter_context(process(argv, log, env)), log, port))
    for proc, log, port in procs:

        def ready(port: int = port) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False  # not listening yet

        wait_until(started(proc, log, ready), f"replica on {port}")
    return ports


# --- the load -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Read:
    kind: str  # "item", "list" or "page"
    path: str
    replica: int
    start: float
    floors: dict[int, tuple[int, int]]  # item -> (highest completed version, its writer replica)
    end: float = 0.0
    status: int = 0
    cache: str = ""  # the Cache-Status header
    got: dict[int, int] = field(default_factory=dict)  # item -> version answered


@dataclass(slots=True)
class Write:
    item: int
    replica: int
    start: float
    end: float = 0.0
    version: int = 0


@dataclass
class Load:
    """What the load generator saw."""

    reads: list[Read] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Every item a write was sent for (answered or not: the origin may have changed).
    attempted: set[int] = field(default_factory=set)
    t0: float = 0.0  # when the load started (monotonic)
    t0_wall: float = 0.0  # the same, on the wall clock (for the replicas' logs)
    elapsed: float = 0.0


class Generator:
    """The bounded load: ``concurrency`` tasks, each sending one request at a time."""

    def __init__(self, options: Options, ports: Sequence[int]) -> None:
        self.options = options
        self.ports = list(ports)
        self.random = random.Random(options.seed)
        weights = [1 / (rank + 1) ** options.skew for rank in range(options.items)]
        self.item_weights = list(itertools.accumulate(weights))
        owner_weights = [1 / (rank + 1) ** options.skew for rank in range(options.owners)]
        self.owner_weights = list(itertools.accumulate(owner_weights))
        # Only even items are ever written: the odd ones (and the odd owners, whose items are
        # all odd) keep paths that are never invalidated, for the computed-once check.
        self.writable = list(range(0, options.items, 2))
        self.writable_weights = list(itertools.accumulate(weights[: len(self.writable)]))
        self.completed: dict[int, tuple[int, int]] = {}  # item -> (version, replica)
        self.load = Load()

    def members(self, owner: int) -> range:
        return range(owner, self.options.items, self.options.owners)

    async def run(self) -> Load:
        # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) closes them, so
        # a request never races the server's close of the connection it reuses.
        limits = httpx.Limits(max_connections=self.options.concurrency, keepalive_expiry=2.0)
        # One Host for every replica, as behind a load balancer: the host is part of the cache
        # key, and 127.0.0.1:<port> would give each replica entries of its own.
        headers = {"host": HOST}
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10.0, limits=limits
            )
            for port in self.ports
        ]
        start = self.load.t0 = time.monotonic()
        self.load.t0_wall = time.time()
        deadline = start + self.options.seconds
        try:
            await asyncio.gather(
                *(self.worker(clients, deadline) for _ in range(self.options.concurrency))
            )
        finally:
            for client in clients:
                await client.aclose()
        self.load.elapsed = time.monotonic() - start
        return self.load

    async def worker(self, clients: list[httpx.AsyncClient], deadline: float) -> None:
        rng = self.random
        while time.monotonic() < deadline:
            replica = rng.randrange(len(clients))
            client = clients[replica]
            draw = rng.random()
            if draw < self.options.write_ratio:
                (item,) = rng.choices(self.writable, cum_weights=self.writable_weights)
                await self.write(client, replica, item)
            elif draw < self.options.write_ratio + (1 - self.options.write_ratio) * 0.7:
                (item,) = rng.choices(range(self.options.items), cum_weights=self.item_weights)
                await self.read(client, replica, "item", f"/items/{item}", (item,))
            else:
                (owner,) = rng.choices(range(self.options.owners), cum_weights=self.owner_weights)
                if rng.random() < 2 / 3:
                    path = f"/items?owner={owner}"
                    await self.read(client, replica, "list", path, self.members(owner))
                else:
                    path = f"/owners/{owner}"
                    await self.read(client, replica, "page", path, self.members(owner))

    async def write(self, client: httpx.AsyncClient, replica: int, item: int) -> None:
        record = Write(item, replica, time.monotonic())
        self.load.attempted.add(item)
        try:
            response = await client.put(f"/items/{item}", json={"note": f"by {replica}"})
        except httpx.HTTPError as exc:
            self.load.errors.append(f"PUT /items/{item} on replica {replica}: {exc!r}")
            return
        record.end = time.monotonic()
        if response.status_code != 200:
            self.load.errors.append(
                f"PUT /items/{item} on replica {replica}: {response.status_code}"
            )
            return
        record.version = int(response.json()["version"])
        self.load.writes.append(record)
        if record.version > self.completed.get(item, (0, 0))[0]:
            self.completed[item] = (record.version, replica)

    async def read(
        self, client: httpx.AsyncClient, replica: int, kind: str, path: str, items: Sequence[int]
    ) -> None:
        completed = self.completed
        floors = {item: completed[item] for item in items if item in completed}
        record = Read(kind, path, replica, time.monotonic(), floors)
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            self.load.errors.append(f"GET {path} on replica {replica}: {exc!r}")
            return
        record.end = time.monotonic()
        record.status = response.status_code
        record.cache = response.headers.get("cache-status", "")
        if response.status_code != 200:
            self.load.errors.append(f"GET {path} on replica {replica}: {response.status_code}")
            return
        body: Any = response.json()
        if kind == "item":
            record.got = {body["id"]: body["version"]}
        elif kind == "list":
            record.got = {each["id"]: each["version"] for each in body}
        else:
            record.got = {int(k): v for k, v in body["versions"].items()}
        self.load.reads.append(record)


# --- the checks ---------------------------------------------------------------------------------


def outcome(cache_status: str) -> str:
    """What ``Cache-Status`` says: hit, stale, stored (a miss the response cache stored),
    not-stored (a miss it did not store), none (no Cache-Status: the answer a single-flight
    follower shared, which leaves storing to its leader), or miss."""
    if not cache_status:
        return "none"
    parts = [part.strip() for part in cache_status.split(";")]
    if "hit" in parts[1:]:
        return "hit"
    if "fwd=stale" in parts:
        return "stale"
    if "stored" in parts:
        return "stored"
    if any(part.startswith("detail=") for part in parts):
        return "not-stored"
    return "miss"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Report:
    """The figures of a run and the checks that failed (empty: every check passed)."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return "\n".join(self.lines)


def affecting(path: str, items: int, owners: int) -> list[int]:
    """The items whose writes change what ``path`` answers."""
    if path.startswith("/items/"):
        return [int(path.rsplit("/", 1)[1])]
    owner = int(path.rsplit("=", 1)[1]) if "=" in path else int(path.rsplit("/", 1)[1])
    return list(range(owner, items, owners))


def violations(load: Load) -> list[tuple[Read, int, str]]:
    """Reads that answered an item older than a write of it completed before the read started:
    (the read, the item, what it should have been)."""
    found = []
    for read in load.reads:
        for item, (floor, writer) in read.floors.items():
            got = read.got.get(item)
            if got is None or got < floor:
                found.append((read, item,
                    f"GET {read.path} on replica {read.replica} at +{read.start - load.t0:.3f}: "
                    f"item {item} expected >= v{floor} (written through replica {writer}), got "
                    f"{'nothing' if got is None else f'v{got}'} (Cache-Status: {read.cache!r})"))  # fmt: skip
    return found


def timeline(load: Load, read: Read, options: Options, events: int = 14) -> list[str]:
    """What happened on ``read.path`` up to ``read``: the writes of the items it shows and its
    reads (replica, start..end relative to the load's start, outcome, versions)."""
    t0 = load.t0
    items = set(affecting(read.path, options.items, options.owners))
    seen: list[tuple[float, str]] = [
        (
            w.start,
            f"PUT item {w.item} replica {w.replica} +{w.start - t0:.3f}..+{w.end - t0:.3f}"
            f" -> v{w.version}",
        )
        for w in load.writes
        if w.item in items and w.start <= read.end
    ]
    for r in load.reads:
        if r.path == read.path and r.start <= read.end:
            shown = r.got if len(r.got) <= 3 else {i: v for i, v in r.got.items() if v > 1}
            seen.append(
                (
                    r.start,
                    f"GET replica {r.replica} +{r.start - t0:.3f}..+{r.end - t0:.3f}"
                    f" {r.cache!r} {shown}",
                )
            )
    return [line for _, line in sorted(seen)[-events:]]  # fmt: skip


def missed_hits(load: Load, options: Options) -> dict[int, list[tuple[Read, str]]]:
    """Per replica, the reads that should have been hits and were not: some read of the same
    path was stored or served from the cache and completed before this one started, and no
    write touching the path overlapped the time from that read's start to this one's end."""
    writes_of: dict[int, list[Write]] = defaultdict(list)
    for write in load.writes:
        writes_of[write.item].append(write)
    reads_of: dict[str, list[Read]] = defaultdict(list)
    for read in load.reads:
        reads_of[read.path].append(read)
    missed: dict[int, list[tuple[Read, str]]] = defaultdict(list)
    for path, reads in reads_of.items():
        writes = sorted(
            (w for item in affecting(path, options.items, options.owners) for w in writes_of[item]),
            key=lambda w: w.start,
        )
        write_starts = [w.start for w in writes]
        latest_end = list(itertools.accumulate((w.end for w in writes), max))
        warm = sorted(
            (r for r in reads if outcome(r.cache) in ("hit", "stored")), key=lambda r: r.end
        )
        warm_ends = [r.end for r in warm]
        latest_warm_start = list(itertools.accumulate((r.start for r in warm), max))
        for read in reads:
            before = bisect.bisect_left(warm_ends, read.start)
            if not before:
                continue
            # A write that started before this read ended may have dropped the entry first.
            written = bisect.bisect_left(write_starts, read.end)
            fence = latest_end[written - 1] if written else float("-inf")
            if latest_warm_start[before - 1] >= fence and outcome(read.cache) != "hit":
                last = max(warm[:before], key=lambda r: r.start)
                missed[read.replica].append((read,
                    f"GET {path} on replica {read.replica} at +{read.start - load.t0:.3f}: "
                    f"{read.cache!r}, after a warm read on replica {last.replica} at "
                    f"+{last.start - load.t0:.3f}..+{last.end - load.t0:.3f}"))  # fmt: skip
    return missed


def check(load: Load, computed: dict[str, int], options: Options, started_at: float) -> Report:
    report = Report()
    out = report.lines.append
    reads, writes = load.reads, load.writes
    total = len(reads) + len(writes) + len(load.errors)
    began = time.strftime("%H:%M:%S", time.localtime(load.t0_wall))
    out(f"load from {began},{load.t0_wall % 1 * 1000:03.0f} (+0.000 below)")
    out(f"{total} requests in {load.elapsed:.1f} s: {total / load.elapsed:.0f} rps "
        f"({len(reads)} reads, {len(writes)} writes, {len(load.errors)} errors), "
        f"{options.processes} replicas, {options.concurrency} concurrent")  # fmt: skip
    report.figures.update(requests=total, rps=total / load.elapsed, errors=len(load.errors))

    # Latency per kind.
    by_kind: dict[str, list[float]] = defaultdict(list)
    for read in reads:
        by_kind[f"GET {read.kind}"].append(read.end - read.start)
    for write in writes:
        by_kind["PUT item"].append(write.end - write.start)
    out("latency (ms)     count     p50     p95")
    for kind, values in sorted(by_kind.items()):
        p50, p95 = percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000
        out(f"  {kind:<12} {len(values):>7} {p50:>7.1f} {p95:>7.1f}")
        report.figures[f"p50 {kind}"], report.figures[f"p95 {kind}"] = p50, p95

    # Hit ratio per replica, over all its reads and over its first 50.
    kinds = ("stored", "not-stored", "none", "stale", "miss")
    out(f"hit ratio        reads    hits   first 50  ({' / '.join(kinds)})")
    per_replica: dict[int, list[Read]] = defaultdict(list)
    for read in sorted(reads, key=lambda r: r.start):
        per_replica[read.replica].append(read)
    for replica, mine in sorted(per_replica.items()):
        outcomes = Counter(outcome(r.cache) for r in mine)
        first = Counter(outcome(r.cache) for r in mine[:50])
        ratio = outcomes["hit"] / len(mine)
        out(f"  replica {replica}   {len(mine):>7} {ratio:>7.1%} {first['hit'] / len(mine[:50]):>9.1%}"
            f"  ({' / '.join(str(outcomes[kind]) for kind in kinds)})")  # fmt: skip
        report.figures[f"hit ratio replica {replica}"] = ratio
    all_hits = sum(outcome(r.cache) == "hit" for r in reads)
    report.figures["hit ratio"] = all_hits / len(reads) if reads else 0.0
    out(f"  all         {len(reads):>7} {report.figures['hit ratio']:>7.1%}")

    missed = missed_hits(load, options)
    expected_misses = sum(len(m) for m in missed.values())
    out(f"reads that should have been hits (stored or served before, not written since) and were "
        f"not: {expected_misses}" + "".join(f"; replica {r}: {len(m)}" for r, m in sorted(missed.items())))  # fmt: skip
    report.figures["missed hits"] = expected_misses
    if expected_misses:
        report.failures.append(f"{expected_misses} reads of warm entries were not hits")
        examples = sorted((m for ms in missed.values() for m in ms), key=lambda m: m[0].start)
        for _, example in examples[:5]:
            out(f"    {example}")
        out(f"    {examples[0][0].path} and the writes it shows, up to the first:")
        report.lines.extend(f"      {line}" for line in timeline(load, examples[0][0], options))

    # Read-your-writes.
    stale = violations(load)
    out(f"read-your-writes violations: {len(stale)} of {len(reads)} reads")
    report.figures["violations"] = len(stale)
    if stale:
        report.failures.append(f"{len(stale)} reads answered an item older than a completed write")
        for _, _, example in stale[:8]:
            out(f"    {example}")
        earliest = stale[0][0]
        out(f"    {earliest.path} and the writes it shows, up to the first violation:")
        report.lines.extend(f"      {line}" for line in timeline(load, earliest, options))

    # Errors.
    if load.errors:
        report.failures.append(f"{len(load.errors)} errors")
        for example in load.errors[:8]:
            out(f"    error: {example}")
    versions = Counter((w.item, w.version) for w in writes)
    duplicated = [key for key, n in versions.items() if n > 1]
    if duplicated:
        report.failures.append(f"{len(duplicated)} write versions answered twice: {duplicated[:5]}")

    # Computed once per cold entry, across the cluster.
    written = load.attempted
    read_paths = {r.path for r in reads}
    cold: Counter[int] = Counter()
    warm: Counter[int] = Counter()
    for path in read_paths:
        count = computed.get(path, 0)
        never_written = not (set(affecting(path, options.items, options.owners)) & written)
        (cold if never_written else warm)[count] += 1
    once = cold.get(1, 0)
    out(f"computed once for the cluster: {once} of {sum(cold.values())} never-written paths "
        f"(distribution {dict(sorted(cold.items()))}); written paths: {dict(sorted(warm.items()))}")  # fmt: skip
    report.figures["cold paths"] = sum(cold.values())
    report.figures["cold paths computed once"] = once
    if once != sum(cold.values()):
        report.failures.append(
            f"{sum(cold.values()) - once} never-written paths were not computed exactly once: "
            f"{dict(sorted(cold.items()))}"
        )
        twice = sorted(
            (p for p in read_paths if not (set(affecting(p, options.items, options.owners)) & written)
             and computed.get(p, 0) != 1),
            key=lambda p: -computed.get(p, 0),
        )  # fmt: skip
        out("    e.g. " + ", ".join(f"{p}: {computed.get(p, 0)}" for p in twice[:8]))
        for path in twice[:3]:
            history = sorted((r for r in reads if r.path == path), key=lambda r: r.start)[:8]
            out(f"    {path}: " + ", ".join(
                f"[replica {r.replica} +{r.start - load.t0:.3f}..+{r.end - load.t0:.3f} "
                f"{outcome(r.cache)}]" for r in history))  # fmt: skip
    out(
        "checks: "
        + ("all passed" if not report.failures else "FAILED: " + "; ".join(report.failures))
    )
    return report


# --- running it ---------------------------------------------------------------------------------


def seed_origin(client: redis.Redis | RedisCluster, prefix: str, items: int) -> None:
    pipe = client.pipeline(transaction=False)
    for item in range(items):
        pipe.hset(f"{prefix}origin:item:{item}", mapping={"version": 1, "note": "seed"})
    pipe.execute()


def read_counters(
    client: redis.Redis | RedisCluster, prefix: str, paths: Sequence[str]
) -> dict[str, int]:
    keys = [f"{prefix}origin:computed:{path}" for path in paths]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    values = pipe.execute()
    return {path: int(v) for path, v in zip(paths, values, strict=True) if v is not None}


def forget(client: redis.Redis | RedisCluster, prefix: str) -> None:
    """Delete this run's keys (on a Redis we did not start)."""
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def replica_logs(directory: Path, keep: int = 5) -> list[str]:
    """What the replicas logged (the library's warnings: a store that failed, a circuit open)."""
    lines = []
    for log in sorted(directory.glob("replica-*.log")):
        logged = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if logged:
            lines.append(f"{log.stem} logged {len(logged)} lines, e.g.:")
            lines.extend(f"    {line[:200]}" for line in logged[:keep])
    return lines


def measure(options: Options, log: Callable[[str], None] = print) -> Report:
    """Start Redis (when needed) and the replicas, run the load, check; stop everything."""
    prefix = f"cluster-load-{uuid.uuid4().hex[:8]}:"
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serdes-cluster-")))
        url, ours = choose_redis(stack, directory, options)
        client = origin_client(url, options.cluster)
        stack.callback(client.close)
        if not ours:
            stack.callback(forget, client, prefix)
        seed_origin(client, prefix, options.items)
        env = dict(os.environ, REDIS_URL=url, CLUSTER_PREFIX=prefix,
                   CLUSTER_REDIS_CLUSTER="1" if options.cluster else "0",
                   # Beyond the run: every recomputation is then one an invalidation asked for.
                   CLUSTER_TTL=str(int(options.seconds) + 60),
                   CLUSTER_ITEMS=str(options.items), CLUSTER_OWNERS=str(options.owners),
                   CLUSTER_STORE_TIMEOUT=str(options.store_timeout or ""),
                   CLUSTER_NEAR_BYTES=str(options.near_bytes or ""),
                   CLUSTER_ORIGIN_MS=str(options.origin_ms))  # fmt: skip
        started_at = time.monotonic()
        ports = start_replicas(stack, directory, options.processes, env)
        log(f"redis {url}{' (cluster)' if options.cluster else ''}, replicas on {ports} "
            f"(ready in {time.monotonic() - started_at:.1f} s), prefix {prefix}")  # fmt: skip
        load = asyncio.run(Generator(options, ports).run())
        paths = sorted({read.path for read in load.reads})
        computed = read_counters(client, prefix, paths)
        report = check(load, computed, options, started_at)
        report.lines.extend(replica_logs(directory))
        for line in report.lines:
            log(line)
        return report
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster",
        description="N uvicorn replicas sharing one Redis under a mixed load: read-your-writes, "
        "errors, computed once per cluster, hits from the first request.",
    )
    defaults = Options()
    parser.add_argument(
        "--seconds", type=float, default=defaults.seconds, help="load duration (default 60)"
    )
    parser.add_argument(
        "--processes", type=int, default=defaults.processes, help="uvicorn replicas (default 4)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help="requests in flight (default 32)",
    )
    parser.add_argument(
        "--items", type=int, default=defaults.items, help="items in the origin (default 300)"
    )
    parser.add_argument(
        "--owners", type=int, default=defaults.owners, help="owners of the items (default 20)"
    )
    parser.add_argument(
        "--write-ratio",
        type=float,
        default=defaults.write_ratio,
        help="share of writes (default 0.1)",
    )
    parser.add_argument(
        "--redis-url",
        help="the Redis to use (default $REDIS_URL or 6379 if it answers, else our own)",
    )
    parser.add_argument(
        "--own-redis", action="store_true", help="always start a redis-server of our own"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="start a local 3-node Redis Cluster and use it"
    )
    parser.add_argument(
        "--store-timeout",
        type=float,
        help="the replicas' RedisStore timeout in seconds (default: the library's, 0.05)",
    )
    parser.add_argument(
        "--near-bytes",
        type=int,
        help="give each replica's RedisStore an in-process tier of this many bytes",
    )
    parser.add_argument(
        "--origin-ms",
        type=float,
        default=defaults.origin_ms,
        help="how long a GET computes after reading the origin, in ms (default 10)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="the load's random seed")
    args = parser.parse_args(argv)
    return Options(
        seconds=args.seconds, processes=args.processes, concurrency=args.concurrency,
        items=args.items, owners=args.owners, write_ratio=args.write_ratio,
        redis_url=args.redis_url, own_redis=args.own_redis, cluster=args.cluster,
        store_timeout=args.store_timeout, near_bytes=args.near_bytes, origin_ms=args.origin_ms,
        seed=args.seed,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    report = measure(parse_args(argv))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
