"""The example video platform, end to end through ASGI: seeding, pagination, problems, msgpack."""

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import FastAPI

from example_app.database import DB_PATH_ENV, prepare_database, resolve_db_path
from example_app.main import create_app
from example_app.pagination import decode_cursor, encode_cursor

PROBLEM_JSON = "application/problem+json"
MSGPACK = "application/msgpack"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("example_app") / "videos.sqlite3")
    assert prepare_database(path) is True
    return path


@pytest.fixture(scope="module")
def app(db_path: str) -> FastAPI:
    return create_app(db_path)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # ASGITransport does not run the lifespan; enter it here (it finds the database seeded).
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


def query(db_path: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql, params).fetchall()


def dump(db_path: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: query(db_path, f"SELECT * FROM {table} ORDER BY 1, 2")
        for table in ("users", "videos", "video_tags")
    }


async def walk(client: httpx.AsyncClient, path: str, **params: object) -> list[int]:
    """Follow next_cursor from the first page to the last; the ids seen, in order."""
    ids: list[int] = []
    cursor: str | None = None
    for _ in range(1_000):
        page_params = dict(params) if cursor is None else {**params, "cursor": cursor}
        response = await client.get(path, params=page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["items"], "a next_cursor must never lead to an empty page"
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    return problem


# --- seeding ---------------------------------------------------------------------------------


def test_seed_creates_the_data_set(db_path: str) -> None:
    ((users,),) = query(db_path, "SELECT COUNT(*) FROM users")
    ((videos,),) = query(db_path, "SELECT COUNT(*) FROM videos")
    assert users >= 1_000
    assert videos >= 5_000
    tags_per_video = query(db_path, "SELECT COUNT(*) FROM video_tags GROUP BY video_id")
    assert len(tags_per_video) == videos
    assert {count for (count,) in tags_per_video} <= {1, 2, 3, 4, 5}
    orphans = query(db_path, "SELECT id FROM videos WHERE owner_id NOT IN (SELECT id FROM users)")
    assert orphans == []


def test_seed_is_deterministic(tmp_path: Path) -> None:
    first, second = str(tmp_path / "first.sqlite3"), str(tmp_path / "second.sqlite3")
    assert prepare_database(first) is True
    assert prepare_database(second) is True
    assert dump(first) == dump(second)


def test_seed_is_idempotent(tmp_path: Path) -> None:
    path = str(tmp_path / "again.sqlite3")
    assert prepare_database(path) is True
    before = dump(path)
    assert prepare_database(path) is False
    assert dump(path) == before


# --- app factory -----------------------------------------------------------------------------


def test_each_app_has_its_own_database(tmp_path: Path) -> None:
    one, two = create_app(str(tmp_path / "one.sqlite3")), create_app(str(tmp_path / "two.sqlite3"))
    assert one.state.db_path != two.state.db_path


def test_db_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_PATH_ENV, str(tmp_path / "env.sqlite3"))
    assert create_app().state.db_path == str(tmp_path / "env.sqlite3")
    assert resolve_db_path(str(tmp_path / "explicit.sqlite3")) == str(tmp_path / "explicit.sqlite3")
    monkeypatch.delenv(DB_PATH_ENV)
    assert resolve_db_path().endswith("fastapi_serdes_example.sqlite3")


# --- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("last_id", [1, 42, 5_000, 10**15])
def test_cursor_round_trip(last_id: int) -> None:
    cursor = encode_cursor(last_id)
    assert "=" not in cursor
    assert decode_cursor(cursor) == last_id


BAD_CURSORS = [
    "",
    "not a cursor!",
    "abc",  # valid base64url, but not digits
    encode_cursor(1) + "==",  # padded alias
    "MDE",  # "01": not canonical
    "MA",  # "0"
    "LTE",  # "-1"
    "x" * 5_000,
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_decode_cursor_rejects(cursor: str) -> None:
    with pytest.raises(ValueError, match="not a pagination cursor"):
        decode_cursor(cursor)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/users", "/videos"])
@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_bad_cursor_is_a_400_problem(
    client: httpx.AsyncClient, path: str, cursor: str
) -> None:
    problem = assert_problem(await client.get(path, params={"cursor": cursor}), 400)
    assert "cursor" in problem["detail"]
    assert len(problem["detail"]) < 300  # a huge cursor is not echoed back whole


# --- users -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_users_first_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/users")
    assert response.status_code == 200
    page = response.json()
    assert [user["id"] for user in page["items"]] == list(range(1, 51))
    assert page["next_cursor"] == encode_cursor(50)


@pytest.mark.anyio
async def test_walk_all_users(client: httpx.AsyncClient, db_path: str) -> None:
    ids = await walk(client, "/users", limit=200)
    assert ids == [user_id for (user_id,) in query(db_path, "SELECT id FROM users ORDER BY id")]


@pytest.mark.anyio
async def test_walk_users_matching_q(client: httpx.AsyncClient, db_path: str) -> None:
    expected = query(db_path, "SELECT id FROM users WHERE username LIKE '%zoe%' ORDER BY id")
    assert len(expected) > 7
    ids = await walk(client, "/users", q="zoe", limit=7)
    assert ids == [user_id for (user_id,) in expected]


@pytest.mark.anyio
async def test_user_search_wildcards_are_literal(client: httpx.AsyncClient) -> None:
    response = await client.get("/users", params={"q": "%"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_limit_out_of_range_is_rejected(client: httpx.AsyncClient, limit: int) -> None:
    response = await client.get("/users", params={"limit": limit})
    assert response.status_code == 422


@pytest.mark.anyio
async def test_get_user(client: httpx.AsyncClient, db_path: str) -> None:
    response = await client.get("/users/1")
    assert response.status_code == 200
    user = response.json()
    ((username, email),) = query(db_path, "SELECT username, email FROM users WHERE id = 1")
    assert user["id"] == 1
    assert user["username"] == username
    assert user["email"] == email
    assert set(user) == {
        "id",
        "username",
        "display_name",
        "email",
        "bio",
        "country",
        "created_at",
        "follower_count",
        "verified",
    }


@pytest.mark.anyio
async def test_missing_user_is_a_404_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/users/987654"), 404)
    assert problem["detail"] == "No user with id 987654."


@pytest.mark.anyio
async def test_create_then_get_user(client: httpx.AsyncClient) -> None:
    new_user = {
        "username": "created_in_test",
        "display_name": "Créée en test 🎬",
        "email": "created@example.com",
        "bio": "Made by test_create_then_get_user.",
        "country": "FR",
    }
    response = await client.post("/users", json=new_user)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created.items() >= new_user.items()
    assert created["follower_count"] == 0
    assert created["verified"] is False
    fetched = await client.get(f"/users/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created
    found = await client.get("/users", params={"q": "created_in_test"})
    assert found.json()["items"] == [created]


@pytest.mark.anyio
async def test_duplicate_username_is_a_409_problem(client: httpx.AsyncClient) -> None:
    new_user = {"username": "taken_name", "display_name": "First", "email": "first@example.com"}
    assert (await client.post("/users", json=new_user)).status_code == 201
    again = {**new_user, "display_name": "Second"}
    problem = assert_problem(await client.post("/users", json=again), 409)
    assert "taken_name" in problem["detail"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"username": "Bad Name", "display_name": "x", "email": "x@example.com"},
        {"username": "ok_name", "display_name": "x", "email": "not-an-email"},
        {"username": "ok_name", "display_name": "", "email": "x@example.com"},
        {"username": "ok_name", "display_name": "x", "email": "x@example.com", "country": "fr"},
        {"username": "ok_name", "display_name": "x", "email": "x@example.com", "id": 1},
    ],
)
async def test_invalid_user_is_rejected(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/users", json=body)
    assert response.status_code == 422


# --- videos ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_video(client: httpx.AsyncClient, db_path: str) -> None:
    response = await client.get("/videos/7")
    assert response.status_code == 200
    video = response.json()
    tags = query(db_path, "SELECT tag FROM video_tags WHERE video_id = 7 ORDER BY position")
    assert video["id"] == 7
    assert video["tags"] == [tag for (tag,) in tags]
    assert video["status"] in {"processing", "published", "unlisted"}
    assert video["resolution"].endswith("p")


@pytest.mark.anyio
async def test_missing_video_is_a_404_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/videos/987654"), 404)
    assert problem["detail"] == "No video with id 987654."


@pytest.mark.anyio
async def test_walk_videos_with_tag(client: httpx.AsyncClient, db_path: str) -> None:
    expected = query(
        db_path, "SELECT video_id FROM video_tags WHERE tag = 'python' ORDER BY video_id"
    )
    ids = await walk(client, "/videos", tag="python", limit=25)
    assert len(ids) == len(set(ids))
    assert ids == [video_id for (video_id,) in expected]


@pytest.mark.anyio
async def test_walk_videos_of_owner_with_status(client: httpx.AsyncClient, db_path: str) -> None:
    ((owner_id,),) = query(
        db_path, "SELECT owner_id FROM videos GROUP BY owner_id ORDER BY COUNT(*) DESC LIMIT 1"
    )
    expected = query(
        db_path,
        "SELECT id FROM videos WHERE owner_id = ? AND status = 'published' ORDER BY id",
        owner_id,
    )
    assert len(expected) > 3
    ids = await walk(client, "/videos", owner_id=owner_id, status="published", limit=3)
    assert ids == [video_id for (video_id,) in expected]


@pytest.mark.anyio
async def test_search_videos_by_title(client: httpx.AsyncClient) -> None:
    response = await client.get("/videos", params={"q": "SOURDOUGH", "limit": 200})
    assert response.status_code == 200
    titles = [video["title"] for video in response.json()["items"]]
    assert titles
    assert all("sourdough" in title.lower() for title in titles)


@pytest.mark.anyio
async def test_unknown_status_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get("/videos", params={"status": "deleted"})
    assert response.status_code == 422


# --- health ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_health(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.anyio
async def test_ready_is_a_503_problem_without_a_database(tmp_path: Path) -> None:
    broken = create_app(str(tmp_path / "no-such-dir" / "videos.sqlite3"))
    transport = httpx.ASGITransport(app=broken)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert_problem(await client.get("/health/ready"), 503)


# --- MessagePack -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/users/1", "/videos/7", "/videos?limit=20"])
async def test_msgpack_response_matches_json(client: httpx.AsyncClient, path: str) -> None:
    as_json = await client.get(path, headers={"Accept": "application/json"})
    as_msgpack = await client.get(path, headers={"Accept": MSGPACK})
    assert as_msgpack.status_code == 200
    assert as_msgpack.headers["content-type"].startswith(MSGPACK)
    assert msgpack.unpackb(as_msgpack.content) == as_json.json()


@pytest.mark.anyio
async def test_create_user_from_msgpack_body(client: httpx.AsyncClient) -> None:
    new_user = {"username": "packed_user", "display_name": "Packed", "email": "p@example.com"}
    response = await client.post(
        "/users", content=msgpack.packb(new_user), headers={"Content-Type": MSGPACK}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created.items() >= new_user.items()
    fetched = await client.get(f"/users/{created['id']}", headers={"Accept": MSGPACK})
    assert msgpack.unpackb(fetched.content) == created
