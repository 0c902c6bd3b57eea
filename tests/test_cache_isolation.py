"""Issue 16, "prove it stays fixed": no cached response ever reaches a client it was not
computed for.

A Hypothesis state machine drives a small app with a shared ``@cached`` route and a per-principal
one, on ``MemoryStore`` and on the real Redis (two replicas sharing one prefix), through every
dimension that can change the bytes: the principal, the format (Accept), the content coding
(Accept-Encoding), the view (``?view=``, ``?fields=``, ``Prefer``), repeated and reordered query
parameters, and concurrent cold requests; with invalidation (tags, unsafe methods) and data that
changes. Every answer embeds what it was computed for and is compared with what the app would
compute for that exact request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI, Request
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule
from pydantic import BaseModel
from redis import Redis

from fastapi_serdes import (
    ALL,
    MemoryStore,
    SerdesMiddleware,
    SerdesRoute,
    Views,
    cached,
    invalidate,
)
from fastapi_serdes.cache.redis_store import RedisStore

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Every key this module writes to Redis starts with this; deleted at the end of each example.
RUN_PREFIX = f"test-serdes-isolation:{uuid.uuid4().hex}:"

PAD = "pad " * 500  # above the compression threshold: the detailed view is compressed
MINIMAL = ("route", "principal", "n", "m", "c", "view", "fields", "version")
EVERYTHING = (*MINIMAL, "pad")
PRINCIPALS = (None, "Bearer alice", "Bearer bob")
MEDIA_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}
CODINGS = ("identity", "gzip", "br", "zstd")
TAGS = {  # tag -> the paths whose entries it drops
    "echo": ("/shared", "/mine"),
    "shared": ("/shared",),
    "mine": ("/mine",),
    "path:/shared": ("/shared",),
    "path:/mine": ("/mine",),
}


class Echo(BaseModel):
    """What an answer was computed for, and the data version it saw."""

    route: str
    principal: str
    n: str
    m: str
    c: str
    view: str
    fields: str
    version: int
    pad: str = PAD


echo_views = Views(Echo, minimal=list(MINIMAL), detailed=ALL, default="detailed")


def authorization(request: Request) -> str | None:
    return request.headers.get("authorization")


async def turns() -> None:
    """Let concurrent requests overlap: event-loop turns, not time."""
    for _ in range(5):
        await asyncio.sleep(0)


def make_app(
    store: Any, data: dict[str, int], hold: Callable[[], Awaitable[None]] = turns
) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store)
    router = APIRouter(route_class=SerdesRoute)

    async def echo(route: str, request: Request, **query: str) -> Echo:
        version = data["version"]  # read first: what this computation saw
        await hold()
        return Echo(route=route, principal=authorization(request) or "-", version=version, **query)

    @router.get("/shared")
    @cached(60, tags=lambda request: ["echo", "shared"])
    @echo_views
    async def shared(
        request: Request,
        n: str = "-",
        m: str = "-",
        c: str = "-",
        view: str = "-",
        fields: str = "-",
    ) -> Echo:
        return await echo("shared", request, n=n, m=m, c=c, view=view, fields=fields)

    @router.get("/mine")
    @cached(60, key=authorization, tags=lambda request: ["echo", "mine"])
    @echo_views
    async def mine(
        request: Request,
        n: str = "-",
        m: str = "-",
        c: str = "-",
        view: str = "-",
        fields: str = "-",
    ) -> Echo:
        return await echo("mine", request, n=n, m=m, c=c, view=view, fields=fields)

    async def write() -> dict[str, int]:
        data["version"] += 1  # the data changes; the middleware then invalidates the path
        return {"version": data["version"]}

    router.put("/shared")(write)
    router.put("/mine")(write)

    @router.post("/touch")
    async def touch(request: Request, tag: str, bump: bool = False) -> dict[str, int]:
        if bump:
            data["version"] += 1
        return {"deleted": await invalidate(request, tags=[tag])}

    app.include_router(router)
    return app


# Query pairs: repeated names, any order; the app reads the last value of each name.
query_pair = st.one_of(
    st.tuples(st.sampled_from(["n", "m"]), st.sampled_from(["1", "2", "3"])),
    st.tuples(st.just("view"), st.sampled_from(["minimal", "detailed"])),
    # Always within the minimal view, and always naming the principal.
    st.tuples(
        st.just("fields"), st.sampled_from(["principal,n", "principal,m,version", "principal,c"])
    ),
)
queries = st.lists(query_pair, max_size=5)


class Client:
    """One request's headers, from a principal, a format, a coding and a view preference."""

    def __init__(self, principal: str | None, fmt: str, coding: str, prefer: bool) -> None:
        self.principal, self.fmt, self.coding, self.prefer = principal, fmt, coding, prefer

    def headers(self) -> dict[str, str]:
        headers = {"accept": MEDIA_TYPES[self.fmt], "accept-encoding": self.coding}
        if self.principal is not None:
            headers["authorization"] = self.principal
        if self.prefer:
            headers["prefer"] = "return=minimal"
        return headers

    def __repr__(self) -> str:
        return f"Client({self.principal!r}, {self.fmt!r}, {self.coding!r}, {self.prefer!r})"


clients = st.builds(
    Client,
    st.sampled_from(PRINCIPALS),
    st.sampled_from(sorted(MEDIA_TYPES)),
    st.sampled_from(CODINGS),
    st.booleans(),
)


class Isolation(RuleBasedStateMachine):
    """Subclasses say how to build the store and how many replicas share it."""

    replicas: ClassVar[int] = 1

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.data = {"version": 0}
        #: path -> the data version when its entries were last dropped: an answer older than
        #: that was stored before the invalidation.
        self.floor = {"/shared": 0, "/mine": 0}
        self.cold = itertools.count()
        self.stores = self.make_stores()
        self.http = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=make_app(store, self.data)), base_url="http://t"
            )
            for store in self.stores
        ]

    def make_stores(self) -> list[Any]:
        raise NotImplementedError

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        async def close() -> None:
            for http in self.http:
                await http.aclose()
            for store in self.stores:
                await store.aclose()

        try:
            self.run(close())
            self.cleanup()
        finally:
            self.loop.close()

    def cleanup(self) -> None:
        pass

    # --- the oracle --------------------------------------------------------------------------

    def check(self, path: str, query: str, client: Client, response: httpx.Response) -> None:
        """The answer is exactly what the app computes for this request (its data version may
        be older, as long as it is not older than the path's last invalidation)."""
        where = f"GET {path}?{query} by {client!r}"
        assert response.status_code == 200, (where, response.status_code, response.text)
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type == MEDIA_TYPES[client.fmt], (where, media_type)
        coding = response.headers.get("content-encoding")
        assert coding in (None, client.coding if client.coding != "identity" else None), (
            where,
            coding,
        )
        if client.fmt == "json":
            body = json.loads(response.content)
        else:
            body = msgpack.unpackb(response.content, raw=False)
        read = dict(parse_qsl(query, keep_blank_values=True))  # the last value of each name
        full = {
            "route": path.lstrip("/"),
            "principal": client.principal or "-",
            **{name: read.get(name, "-") for name in ("n", "m", "c", "view", "fields")},
            "pad": PAD,
        }
        if "fields" in read:
            shown: tuple[str, ...] = tuple(read["fields"].split(","))
        elif "view" in read:
            shown = MINIMAL if read["view"] == "minimal" else EVERYTHING
        else:
            shown = MINIMAL if client.prefer else EVERYTHING
        version = body.pop("version", None)
        expected = {name: full[name] for name in shown if name != "version"}
        assert body == expected, (where, response.headers.get("cache-status"))
        if "version" in shown:
            assert self.floor[path] <= version <= self.data["version"], (
                where,
                version,
                self.floor[path],
                self.data["version"],
            )

    # --- rules -------------------------------------------------------------------------------

    @initialize()
    def warm_up(self) -> None:
        # Each replica learns both paths (a process looks a path up once its route answered).
        for http in self.http:
            for path in self.floor:
                self.run(http.get(path))

    asked = Bundle("asked")

    def ask(self, path: str, pairs: list[tuple[str, str]], client: Client, replica: int) -> None:
        query = "&".join(f"{k}={v}" for k, v in pairs)
        http = self.http[replica % self.replicas]
        response = self.run(http.get(f"{path}?{query}", headers=client.headers()))
        self.check(path, query, client, response)

    @rule(
        target=asked,
        path=st.sampled_from(["/shared", "/mine"]),
        pairs=queries,
        client=clients,
        replica=st.integers(0, 1),
    )
    def get(
        self, path: str, pairs: list[tuple[str, str]], client: Client, replica: int
    ) -> tuple[str, list[tuple[str, str]], Client]:
        self.ask(path, pairs, client, replica)
        return path, pairs, client

    @rule(
        target=asked,
        before=asked,
        change=st.sampled_from(["nothing", "principal", "fmt", "coding", "prefer"]),
        client=clients,
        replica=st.integers(0, 1),
        data=st.data(),
    )
    def get_a_neighbour(
        self,
        before: tuple[str, list[tuple[str, str]], Client],
        change: str,
        client: Client,
        replica: int,
        data: st.DataObject,
    ) -> tuple[str, list[tuple[str, str]], Client]:
        """A request asked before, with its query pairs reordered and one other thing changed
        (or none): the likeliest to share an entry by mistake."""
        path, pairs, theirs = before
        pairs = data.draw(st.permutations(pairs), label="reordered")
        mine = Client(theirs.principal, theirs.fmt, theirs.coding, theirs.prefer)
        if change != "nothing":
            setattr(mine, change, getattr(client, change))
        self.ask(path, pairs, mine, replica)
        return path, pairs, mine

    @rule(
        path=st.sampled_from(["/shared", "/mine"]),
        pairs=queries,
        crowd=st.lists(st.tuples(clients, st.integers(0, 1)), min_size=2, max_size=8).filter(
            lambda crowd: len({client.principal for client, _ in crowd}) >= 2
        ),
        previous=st.one_of(st.none(), asked),
    )
    def concurrent_requests(
        self,
        path: str,
        pairs: list[tuple[str, str]],
        crowd: list[tuple[Client, int]],
        previous: tuple[str, list[tuple[str, str]], Client] | None,
    ) -> None:
        """Several principals (formats, codings, replicas) ask for one URL at once: a cold one
        (a query value never asked before), or one asked before (cached, or just invalidated)."""
        if previous is None:
            pairs = [*pairs, ("c", f"cold{next(self.cold)}")]
        else:
            path, pairs, _ = previous
        query = "&".join(f"{k}={v}" for k, v in pairs)

        async def burst() -> list[httpx.Response]:
            return await asyncio.gather(
                *(
                    self.http[replica % self.replicas].get(
                        f"{path}?{query}", headers=client.headers()
                    )
                    for client, replica in crowd
                )
            )

        for (client, _), response in zip(crowd, self.run(burst()), strict=True):
            self.check(path, query, client, response)

    @rule(tag=st.sampled_from(sorted(TAGS)), bump=st.booleans(), replica=st.integers(0, 1))
    def invalidate_tag(self, tag: str, bump: bool, replica: int) -> None:
        http = self.http[replica % self.replicas]
        params: dict[str, Any] = {"tag": tag, "bump": bump}
        assert self.run(http.post("/touch", params=params)).status_code == 200
        # (self.data is the app's data: the endpoint bumped it when asked to.)
        for path in TAGS[tag]:
            self.floor[path] = self.data["version"]

    @rule(path=st.sampled_from(["/shared", "/mine"]), replica=st.integers(0, 1))
    def put(self, path: str, replica: int) -> None:
        http = self.http[replica % self.replicas]
        response = self.run(http.put(path))
        assert response.status_code == 200
        assert response.json() == {"version": self.data["version"]}
        self.floor[path] = self.data["version"]

    @rule()
    def data_changes(self) -> None:
        self.data["version"] += 1  # no invalidation: cached answers may lag, never mix


class MemoryIsolation(Isolation):
    def make_stores(self) -> list[Any]:
        return [MemoryStore()]


class RedisIsolation(Isolation):
    """Two replicas sharing one Redis prefix: entries, invalidations and single flights are
    shared by both."""

    replicas = 2
    examples: ClassVar[Callable[[], int]] = itertools.count().__next__

    def make_stores(self) -> list[Any]:
        self.prefix = f"{RUN_PREFIX}{self.examples()}:"
        # A generous timeout: this is about isolation; a store that failed open under load
        # would skip an invalidation and serve an entry older than it.
        return [
            RedisStore(REDIS_URL, prefix=self.prefix, timeout=5.0) for _ in range(self.replicas)
        ]

    def cleanup(self) -> None:
        with Redis.from_url(REDIS_URL) as raw:
            keys = list(raw.scan_iter(match=f"{self.prefix}*"))
            if keys:
                raw.delete(*keys)


BUDGET = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_no_response_reaches_another_client_memory_store() -> None:
    MemoryIsolation.TestCase.settings = BUDGET
    MemoryIsolation.TestCase().runTest()


@pytest.mark.redis
def test_no_response_reaches_another_client_redis_store() -> None:
    RedisIsolation.TestCase.settings = BUDGET
    RedisIsolation.TestCase().runTest()


# --- Leaks this module found (both fixed; kept as regression tests) ----------------------------


def test_percent_encoded_names_do_not_share_an_entry() -> None:
    async def main() -> list[str]:
        app = make_app(MemoryStore(), {"version": 0})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = []
            for query in ("n=1&%6E=2", "%6E=2&n=1"):
                response = await http.get(f"/shared?{query}&fields=n")
                answers.append(response.json()["n"])
            return answers

    assert asyncio.run(main()) == ["2", "1"]  # FastAPI reads the last value of a name


@pytest.mark.redis
def test_an_invalidated_answer_is_not_served_from_an_old_single_flight() -> None:
    prefix = f"{RUN_PREFIX}flight:"

    async def main() -> list[int]:
        leading = asyncio.Event()  # replica 1 holds the cluster lock
        polled = asyncio.Event()  # replica 2 read what is published under flight:<key>

        class Leader(RedisStore):
            async def acquire(self, key: str, ttl: float) -> bool:
                got = await super().acquire(key, ttl)
                leading.set()
                return got

        class Follower(RedisStore):
            async def get(self, key: str) -> bytes | None:
                value = await super().get(key)
                if key.startswith("flight:"):
                    polled.set()
                return value

        data = {"version": 0}

        async def hold() -> None:  # the recomputation waits until replica 2 has polled
            if data["version"] > 0:
                await asyncio.wait_for(polled.wait(), 5)

        stores = [cls(REDIS_URL, prefix=prefix, timeout=5.0) for cls in (Leader, Follower)]
        one, two = (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=make_app(store, data, hold)),
                base_url="http://t",
            )
            for store in stores
        )
        try:
            await one.get("/shared?fields=version")  # computed for version 0, and published
            await one.put("/shared")  # version 1; the path's entries are dropped
            leading.clear()

            async def follower() -> httpx.Response:
                await leading.wait()
                return await two.get("/shared?fields=version")

            answers = await asyncio.gather(one.get("/shared?fields=version"), follower())
            return [answer.json()["version"] for answer in answers]
        finally:
            for http in (one, two):
                await http.aclose()
            for store in stores:
                await store.aclose()
            with Redis.from_url(REDIS_URL) as raw:
                keys = list(raw.scan_iter(match=f"{prefix}*"))
                if keys:
                    raw.delete(*keys)

    assert asyncio.run(main()) == [1, 1]  # both answers computed after the invalidation
