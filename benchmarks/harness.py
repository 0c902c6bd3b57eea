"""Drive ASGI apps in-process, interleave contenders round by round, and summarise with medians.

Why in-process: a real server and client add tens of microseconds of noise per request, and
httpx's ``ASGITransport`` alone costs more than the differences we want to see. Here a request is
one scope dict, a ``receive`` that hands over the body once, and a ``send`` that appends messages.

Why interleaved: the machines are shared and noisy. Each round runs every entry of a workload once,
in a freshly shuffled order, so a slow patch hits all contenders alike; ratios are the median over
rounds of the *paired* per-round ratio, never one absolute time against another.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import statistics
import time
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

_ASGI = {"version": "3.0", "spec_version": "2.4"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    query_string: bytes = b""


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        key = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None


def make_request(
    method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> Request:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    path, _, query = path.partition("?")
    return Request(method, path, tuple(raw), body, query.encode("latin-1"))


class _Exchange:
    """One request's receive/send pair. ``receive`` after the body waits for the response end."""

    __slots__ = ("body", "complete", "messages", "sent_body", "waiter")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent_body = False
        self.complete = False
        self.messages: list[Message] = []
        self.waiter: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        # Like a real server: a disconnect only arrives once the response is over (apps that
        # listen for disconnects, e.g. streaming responses, must not be cut short).
        if not self.complete:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)


def _scope(request: Request, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": _ASGI,
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode("latin-1"),
        "query_string": request.query_string,
        "root_path": "",
        "headers": list(request.headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }


async def call_app(app: ASGIApp, request: Request, state: dict[str, Any] | None = None) -> Response:
    """Run one request through ``app`` and return the assembled response."""
    exchange = _Exchange(request.body)
    await app(_scope(request, state or {}), exchange.receive, exchange.send)
    if not exchange.complete:
        raise RuntimeError("the app returned without finishing the response")
    response = Response()
    chunks = []
    for message in exchange.messages:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
    response.body = b"".join(chunks)
    return response


async def time_batch(app: ASGIApp, request: Request, n: int, state: dict[str, Any]) -> int:
    """Nanoseconds to serve ``request`` ``n`` times in a row."""
    start = time.perf_counter_ns()
    for _ in range(n):
        exchange = _Exchange(request.body)
        await app(_scope(request, state), exchange.receive, exchange.send)
    return time.perf_counter_ns() - start


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[dict[str, Any]]:
    """Run the app's lifespan startup, yield its state, run shutdown (as a server would)."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": _ASGI, "state": state}

    async def serve() -> None:
        await app(scope, inbox.get, outbox.put)

    task = asyncio.create_task(serve())

    async def step(event: str) -> bool:
        """Send ``lifespan.<event>``; False if the app does not do lifespan (it returned)."""
        inbox.put_nowait({"type": f"lifespan.{event}"})
        reply = asyncio.ensure_future(outbox.get())
        await asyncio.wait({task, reply}, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            # Per the ASGI spec an app may raise on lifespan scopes it does not support (or,
            # as uvicorn also accepts, return at once).
            if event == "startup":
                return False
            raise RuntimeError(f"lifespan {event} ended without a reply")
        message = reply.result()
        if message["type"].endswith(".failed"):
            raise RuntimeError(f"lifespan {event} failed: {message.get('message', '')}")
        return True

    supported = await step("startup")
    try:
        yield state
    finally:
        if supported:
            await step("shutdown")
        await asyncio.gather(task, return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# Workloads and interleaved rounds


class WrongResponse(Exception):
    """Raised by a check: the contender answered, but not with the expected data."""


@dataclass(frozen=True)
class Entry:
    """One contender's request in a workload, and how to tell its response is right.

    ``check`` raises :class:`WrongResponse` with a reason when the response is wrong. It runs
    once before timing, so a broken contender fails loudly instead of looking fast.
    """

    label: str
    contender: str
    request: Request
    check: Callable[[Response], None]


@dataclass(frozen=True)
class Workload:
    name: str
    entries: tuple[Entry, ...]
    baseline: str | None = None  # label of the entry ratios are taken against
    peer: str | None = None  # label of the named peer, when the target compares against one


@dataclass(frozen=True)
class Settings:
    rounds: int = 15
    target_ms: float = 40.0  # how long one timed batch should last
    batch: int | None = None  # fixed requests per batch; skips calibration (smoke tests)
    seed: int = 0


@dataclass
class Row:
    workload: str
    label: str
    contender: str
    request_bytes: int = 0
    response_bytes: int = 0
    batch: int = 0
    samples_ns: list[float] = field(default_factory=list)  # per request, one per round
    error: str | None = None
    median_us: float = float("nan")
    spread: float = float("nan")  # half the interquartile range, relative to the median
    vs_baseline: float | None = None  # throughput relative to the baseline; >1 is faster
    vs_peer: float | None = None


async def _calibrate(app: ASGIApp, request: Request, state: dict[str, Any], target_ns: int) -> int:
    """Requests per batch so that a batch lasts about ``target_ns`` (doubles as warm-up)."""
    n = 1
    while True:
        elapsed = max(await time_batch(app, request, n, state), 1)
        if elapsed >= target_ns // 4 or n >= 100_000:
            return max(1, round(n * target_ns / elapsed))
        n *= 4


def _paired_ratio(reference: Sequence[float], samples: Sequence[float]) -> float:
    return statistics.median(r / s for r, s in zip(reference, samples, strict=True))


def summarise(workloads: Sequence[Workload], rows: Sequence[Row]) -> None:
    """Fill medians, spreads and paired ratios into ``rows`` (in place)."""
    by_key = {(r.workload, r.label): r for r in rows}
    for row in rows:
        if row.error or not row.samples_ns:
            continue
        row.median_us = statistics.median(row.samples_ns) / 1000
        if len(row.samples_ns) >= 2:
            q1, _, q3 = statistics.quantiles(row.samples_ns, n=4, method="inclusive")
            row.spread = (q3 - q1) / 2 / statistics.median(row.samples_ns)
    for workload in workloads:
        for row in (by_key[(workload.name, e.label)] for e in workload.entries):
            if row.error or not row.samples_ns:
                continue
            for attr, label in (("vs_baseline", workload.baseline), ("vs_peer", workload.peer)):
                ref = by_key.get((workload.name, label)) if label else None
                if ref is not None and not ref.error and ref.samples_ns:
                    setattr(row, attr, _paired_ratio(ref.samples_ns, row.samples_ns))


async def run_workloads(
    apps: Mapping[str, ASGIApp],
    workloads: Sequence[Workload],
    settings: Settings,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Check every entry once, calibrate, then time ``settings.rounds`` interleaved rounds."""
    rows = {
        (w.name, e.label): Row(w.name, e.label, e.contender, request_bytes=len(e.request.body))
        for w in workloads
        for e in w.entries
    }
    async with contextlib.AsyncExitStack() as stack:
        states = {
            name: await stack.enter_async_context(lifespan(app)) for name, app in apps.items()
        }

        live: list[tuple[Workload, list[Entry]]] = []
        for workload in workloads:
            ok = []
            for entry in workload.entries:
                row = rows[(workload.name, entry.label)]
                try:
                    response = await call_app(
                        apps[entry.contender], entry.request, states[entry.contender]
                    )
                    entry.check(response)
                except WrongResponse as exc:
                    row.error = f"wrong response: {exc}"
                    log(f"FAILED check {workload.name} / {entry.label}: {row.error}")
                    continue
                except Exception as exc:
                    row.error = f"{type(exc).__name__}: {exc}"
                    log(f"FAILED check {workload.name} / {entry.label}:\n{traceback.format_exc()}")
                    continue
                row.response_bytes = len(response.body)
                ok.append(entry)
            live.append((workload, ok))

        target_ns = int(settings.target_ms * 1e6)
        for workload, entries in live:
            for entry in entries:
                row = rows[(workload.name, entry.label)]
                app, state = apps[entry.contender], states[entry.contender]
                row.batch = settings.batch or await _calibrate(app, entry.request, state, target_ns)

        # Leave the payloads and apps out of every later collection, and start each batch with
        # an empty young generation so one contender's garbage is not collected on another's time.
        gc.collect()
        gc.freeze()
        rng = random.Random(settings.seed)
        try:
            for round_no in range(settings.rounds):
                for workload, entries in live:
                    order = list(entries)
                    rng.shuffle(order)
                    for entry in order:
                        row = rows[(workload.name, entry.label)]
                        app, state = apps[entry.contender], states[entry.contender]
                        gc.collect(0)
                        elapsed = await time_batch(app, entry.request, row.batch, state)
                        row.samples_ns.append(elapsed / row.batch)
                log(f"round {round_no + 1}/{settings.rounds} done")
        finally:
            gc.unfreeze()

    result = list(rows.values())
    summarise(workloads, result)
    return result
