"""The app each replica of the cluster load test serves (``benchmarks/cluster.py`` starts it).

``uvicorn benchmarks.cluster_app:app`` with its settings in the environment:

- ``REDIS_URL``: the Redis holding both the response cache and the origin (default
  ``redis://127.0.0.1:6379/0``); ``CLUSTER_REDIS_CLUSTER=1`` when it names a Redis Cluster node.
- ``CLUSTER_PREFIX``: this run's key prefix (default ``cluster-load:``): the cache's entries live
  under ``<prefix>cache:``, the origin under ``<prefix>origin:``.
- ``CLUSTER_TTL``: the cached routes' ``ttl`` in seconds (default 30; the harness sets it beyond
  the run, so that every recomputation of an entry is one an invalidation asked for).
- ``CLUSTER_ORIGIN_MS``: how long a GET takes to compute after reading the origin, in ms (default
  10, a database query's worth; 0 for none).
- ``CLUSTER_STORE_TIMEOUT``: the ``RedisStore`` timeout in seconds (default: the library's).
- ``CLUSTER_NEAR_BYTES``: the ``RedisStore``'s in-process tier, in bytes (default: none).
- ``CLUSTER_ITEMS`` / ``CLUSTER_OWNERS``: how many items the origin holds (the harness seeds them)
  and how many owners they are spread over (item ``i`` belongs to owner ``i % owners``).

The origin is shared by every replica: a hash per item (``origin:item:<id>``, its ``version``
and ``note``). Each write increments the version atomically, so versions of an item are strictly
increasing. Every computed GET increments ``origin:computed:<path>``: the harness reads those
counters to tell how many times each cache entry was computed across the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached, invalidate
from fastapi_serdes.cache.redis_store import DEFAULT_TIMEOUT, RedisStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLUSTER = os.environ.get("CLUSTER_REDIS_CLUSTER", "") == "1"
PREFIX = os.environ.get("CLUSTER_PREFIX", "cluster-load:")
TTL = float(os.environ.get("CLUSTER_TTL", "30"))
STORE_TIMEOUT = float(os.environ.get("CLUSTER_STORE_TIMEOUT", "0") or 0) or DEFAULT_TIMEOUT
NEAR_BYTES = int(os.environ.get("CLUSTER_NEAR_BYTES", "0") or 0) or None
ITEMS = int(os.environ.get("CLUSTER_ITEMS", "300"))
OWNERS = int(os.environ.get("CLUSTER_OWNERS", "20"))
ORIGIN_SECONDS = float(os.environ.get("CLUSTER_ORIGIN_MS", "10")) / 1000
ORIGIN = f"{PREFIX}origin:"

# The library's warnings (a store that failed, its circuit opening) with the time, to set beside
# the harness's report.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
logging.getLogger("fastapi_serdes").addHandler(_handler)

# One atomic step per write: the new version and the note that goes with it.
_WRITE = """
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'note', ARGV[1])
return version
"""


class Item(BaseModel):
    id: int
    owner: int
    version: int
    note: str


class Note(BaseModel):
    note: str


class OwnerPage(BaseModel):
    owner: int
    versions: dict[int, int]


def item_key(item_id: int) -> str:
    """The origin's hash for an item."""
    return f"{ORIGIN}item:{item_id}"


def computed_key(path: str) -> str:
    """The counter of how many times ``path`` was computed, across the cluster."""
    return f"{ORIGIN}computed:{path}"


def owner_of(item_id: int) -> int:
    return item_id % OWNERS


def origin_client() -> Redis | RedisCluster:
    """A client of the origin's Redis (a plain one: the origin is the truth, not a cache)."""
    if CLUSTER:
        return RedisCluster.from_url(REDIS_URL, decode_responses=True)
    return Redis.from_url(REDIS_URL, decode_responses=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.origin = origin_client()
    try:
        yield
    finally:
        await app.state.origin.aclose()
        await store.aclose()


def origin(request: Request) -> Any:
    return request.app.state.origin


def _item(item_id: int, fields: dict[str, str]) -> Item:
    return Item(
        id=item_id,
        owner=owner_of(item_id),
        version=int(fields.get("version", 0)),
        note=fields.get("note", ""),
    )


async def _owner_items(request: Request, owner: int) -> list[Item]:
    ids = list(range(owner, ITEMS, OWNERS))
    pipe = origin(request).pipeline(transaction=False)
    for item_id in ids:
        pipe.hgetall(item_key(item_id))
    found = await pipe.execute()
    return [_item(i, fields) for i, fields in zip(ids, found, strict=True) if fields]


def _owner_tags(request: Request) -> list[str]:
    return [f"owner:{request.query_params.get('owner', '')}"]


router = APIRouter(route_class=SerdesRoute)


@router.get("/items/{item_id}")
@cached(ttl=TTL)
async def get_item(item_id: int, request: Request) -> Item:
    client = origin(request)
    await client.incr(computed_key(f"/items/{item_id}"))
    item = _item(item_id, await client.hgetall(item_key(item_id)))
    await asyncio.sleep(ORIGIN_SECONDS)  # the rest of the query: a write may land meanwhile
    return item


@router.get("/items")
@cached(ttl=TTL, tags=_owner_tags)
async def list_items(owner: int, request: Request) -> list[Item]:
    await origin(request).incr(computed_key(f"/items?owner={owner}"))
    items = await _owner_items(request, owner)
    await asyncio.sleep(ORIGIN_SECONDS)
    return items


@router.get("/owners/{owner}")
@cached(ttl=TTL)
async def owner_page(owner: int, request: Request) -> OwnerPage:
    await origin(request).incr(computed_key(f"/owners/{owner}"))
    found = await _owner_items(request, owner)
    await asyncio.sleep(ORIGIN_SECONDS)
    return OwnerPage(owner=owner, versions={item.id: item.version for item in found})


@router.put("/items/{item_id}")
async def put_item(item_id: int, body: Note, request: Request) -> Item:
    """Write the origin, then drop what depends on it on other paths (the list by its tag, the
    owner's page by route); the middleware drops the item's own path after this returns."""
    client = origin(request)
    version = await client.eval(_WRITE, 1, item_key(item_id), body.note)
    owner = owner_of(item_id)
    await invalidate(request, tags=[f"owner:{owner}"])
    await invalidate(request, route=owner_page, owner=owner)
    return Item(id=item_id, owner=owner, version=int(version), note=body.note)


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
app.include_router(router)

store = RedisStore(
    REDIS_URL,
    cluster=CLUSTER,
    prefix=f"{PREFIX}cache:",
    timeout=STORE_TIMEOUT,
    near_bytes=NEAR_BYTES,
)
app.add_middleware(SerdesMiddleware, cache=store)


@app.get("/health")
async def health() -> dict[str, bool]:
    """Uncached: the harness polls it until the replica answers."""
    return {"ok": True}
