"""One computation per cluster at its edges: a lock that is never freed, and a result that must
not be handed to other requests. The store is a stand-in that answers as Redis would."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response

from fastapi_serdes.cache import single_flight
from fastapi_serdes.cache.single_flight import Produced, once_per_cluster, shareable

pytestmark = pytest.mark.anyio


class Store:
    """A store whose lock is held by another replica (or free), and that has nothing published."""

    def __init__(self, *, lock_free: bool) -> None:
        self.lock_free = lock_free
        self.released: list[str] = []

    async def acquire(self, key: str, ttl: float) -> bool:
        return self.lock_free

    async def release(self, key: str) -> None:
        self.released.append(key)

    async def get(self, key: str) -> bytes | None:
        return None


class Cache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.published: list[str] = []

    async def put(self, key: str, data: bytes, **kwargs: Any) -> bool:
        self.published.append(key)
        return True


async def test_past_the_lock_ttl_a_follower_computes_for_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The leader died holding the lock and published nothing: once the lock's TTL has passed,
    # the follower stops waiting and computes (without taking or releasing the lock).
    monkeypatch.setattr(single_flight, "_LOCK_TTL", 0.05)
    monkeypatch.setattr(single_flight, "_POLL_INTERVAL", 0.01)
    store = Store(lock_free=False)
    cache = Cache(store)

    async def work() -> Response:
        return Response(b"mine", media_type="application/json")

    result = await once_per_cluster(cache, "k", work(), shareable, [], None)  # type: ignore[arg-type]
    assert isinstance(result, Response)
    assert result.body == b"mine"
    assert store.released == []
    assert cache.published == []


@pytest.mark.parametrize(
    "response",
    [
        Response(b"oops", status_code=500),
        Response(b"x", headers={"set-cookie": "s=1"}),
        Response(b"x", headers={"cache-control": "private"}),
        Response(b"x", headers={"cache-control": "no-store"}),
    ],
    ids=["error", "set-cookie", "private", "no-store"],
)
async def test_an_answer_not_for_everyone_is_not_published(response: Response) -> None:
    store = Store(lock_free=True)
    cache = Cache(store)

    async def work() -> Response:
        return response

    assert shareable(response) is None
    result = await once_per_cluster(cache, "k", work(), shareable, [], None)  # type: ignore[arg-type]
    assert result is response
    assert cache.published == []
    assert store.released == ["lock:k"]


async def test_a_shareable_answer_is_published_for_the_others() -> None:
    store = Store(lock_free=True)
    cache = Cache(store)

    async def work() -> Response:
        headers = {"cache-control": "public, max-age=60"}
        return Response(b"[1]", media_type="application/json", headers=headers)

    result = await once_per_cluster(cache, "k", work(), shareable, [], None)  # type: ignore[arg-type]
    assert isinstance(result, Response)
    assert cache.published == ["flight:k"]
    copy = shareable(result)
    assert isinstance(copy, Produced)
    assert copy.to_response().body == b"[1]"
