"""The example video platform, end to end through ASGI: seeding, pagination, problems, msgpack,
views."""

import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from example_app.database import (
    DB_PATH_ENV,
    connect,
    get_connection,
    prepare_database,
    resolve_db_path,
)
from example_app.main import create_app
from example_app.models import User
from example_app.pagination import decode_cursor, encode_cursor
from example_app.projection import partial, select_list
from example_app.routers import users, videos
from example_app.seed import SEEDED_SCHEMA_VERSION

PROBLEM_JSON = "application/problem+json"
MSGPACK = "application/msgpack"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("example_app") / "videos.sqlite3")
    assert prepare_database(path) is True
    return path


class RecordStatuses:
    """Outermost middleware: the (method, path, status) of every answer this module's tests get,
    for :func:`test_openapi_lists_every_status_the_routes_send`."""

    def __init__(self, app: ASGIApp, seen: set[tuple[str, str, int]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.add((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording)


@pytest.fixture(scope="module")
def app(db_path: str) -> FastAPI:
    app = create_app(db_path)
    app.state.statuses_seen = set()
    app.add_middleware(RecordStatuses, seen=app.state.statuses_seen)
    return app


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
        for table in ("users", "videos", "video_tags", "video_metadata")
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
    ((with_metadata,),) = query(
        db_path, "SELECT COUNT(*) FROM video_metadata JOIN videos ON videos.id = video_id"
    )
    assert with_metadata == videos


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


def test_seeding_a_version_1_database_adds_the_video_metadata(tmp_path: Path) -> None:
    path = str(tmp_path / "v1.sqlite3")
    assert prepare_database(path) is True
    fresh = dump(path)
    with closing(connect(path)) as conn:  # what a database seeded before video metadata holds
        conn.execute("DROP TABLE video_metadata")
        conn.execute("PRAGMA user_version = 1")
    assert prepare_database(path) is True
    assert dump(path) == fresh
    assert query(path, "PRAGMA user_version") == [(SEEDED_SCHEMA_VERSION,)]


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
    response = await client.get("/videos/7", params={"view": "detailed"})
    assert response.status_code == 200
    video = response.json()
    tags = query(db_path, "SELECT tag FROM video_tags WHERE video_id = 7 ORDER BY position")
    assert video["id"] == 7
    assert video["tags"] == [tag for (tag,) in tags]
    assert video["status"] in {"processing", "published", "unlisted"}
    assert video["resolution"].endswith("p")
    ((width, height, fps, codec, audio_codec, kbps),) = query(
        db_path,
        "SELECT width, height, fps, codec, audio_codec, bitrate_kbps FROM video_metadata"
        " WHERE video_id = 7",
    )
    assert video["metadata"] == {
        "width": width,
        "height": height,
        "fps": fps,
        "codec": codec,
        "audio_codec": audio_codec,
        "bitrate_kbps": kbps,
    }
    assert f"{height}p" == video["resolution"]
    ((username, display_name, verified),) = query(
        db_path,
        "SELECT username, display_name, verified FROM users WHERE id = ?",
        video["owner_id"],
    )
    assert video["owner"] == {
        "id": video["owner_id"],
        "username": username,
        "display_name": display_name,
        "verified": bool(verified),
    }


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


# --- views -----------------------------------------------------------------------------------

USER_KEYS = {
    "minimal": {"id", "username", "display_name"},
    "standard": {"id", "username", "display_name", "email", "bio", "country", "created_at",
                 "follower_count", "verified"},
}  # fmt: skip
USER_KEYS["detailed"] = USER_KEYS["standard"] | {"recent_videos"}
VIDEO_KEYS = {
    "minimal": {"id", "title"},
    "standard": {"id", "owner_id", "title", "description", "duration_seconds", "view_count",
                 "like_ratio", "published_at", "status", "resolution"},
}  # fmt: skip
VIDEO_KEYS["detailed"] = VIDEO_KEYS["standard"] | {"tags", "metadata", "owner"}
VIEW_CASES = [
    (path, view, keys[view])
    for path, keys in [
        ("/users/1", USER_KEYS),
        ("/users", USER_KEYS),
        ("/videos/7", VIDEO_KEYS),
        ("/videos", VIDEO_KEYS),
    ]
    for view in ("minimal", "standard", "detailed")
]


def page_of(path: str, limit: int) -> dict[str, int]:
    """``?limit=`` for the list routes, nothing for the others."""
    return {"limit": limit} if path in ("/users", "/videos") else {}


def items_of(path: str, body: Any) -> list[dict[str, Any]]:
    """The resources in a response: the page's items for a list route, else the one resource."""
    if path in ("/users", "/videos"):
        assert set(body) == {"items", "next_cursor"}  # the view never touches the envelope
        items: list[dict[str, Any]] = body["items"]
        assert len(items) == 5
        return items
    return [body]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "view", "keys"), VIEW_CASES)
async def test_each_view_has_its_keys(
    client: httpx.AsyncClient, path: str, view: str, keys: set[str]
) -> None:
    response = await client.get(path, params={"view": view, **page_of(path, 5)})
    assert response.status_code == 200, response.text
    assert response.headers["serdes-view"] == view
    assert "Prefer" in response.headers["vary"]
    for item in items_of(path, response.json()):
        assert set(item) == keys


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/users/1", "/users", "/videos/7", "/videos"])
async def test_default_view_is_standard(client: httpx.AsyncClient, path: str) -> None:
    default = await client.get(path)
    standard = await client.get(path, params={"view": "standard"})
    assert default.headers["serdes-view"] == "standard"
    assert default.json() == standard.json()


@pytest.mark.anyio
async def test_views_are_projections_of_the_same_data(client: httpx.AsyncClient) -> None:
    detailed = (await client.get("/videos", params={"view": "detailed", "limit": 20})).json()
    minimal = (await client.get("/videos", params={"view": "minimal", "limit": 20})).json()
    assert minimal["next_cursor"] == detailed["next_cursor"]
    assert minimal["items"] == [
        {"id": video["id"], "title": video["title"]} for video in detailed["items"]
    ]


@pytest.mark.anyio
async def test_recent_videos_are_the_latest_published(
    client: httpx.AsyncClient, db_path: str
) -> None:
    ((owner_id,),) = query(
        db_path, "SELECT owner_id FROM videos GROUP BY owner_id ORDER BY COUNT(*) DESC LIMIT 1"
    )
    expected = query(
        db_path,
        "SELECT id FROM videos WHERE owner_id = ? AND status = 'published'"
        " ORDER BY published_at DESC LIMIT 5",
        owner_id,
    )
    assert len(expected) == 5
    user = (await client.get(f"/users/{owner_id}", params={"view": "detailed"})).json()
    assert [video["id"] for video in user["recent_videos"]] == [
        video_id for (video_id,) in expected
    ]
    assert set(user["recent_videos"][0]) == {
        "id", "title", "duration_seconds", "view_count", "published_at"
    }  # fmt: skip
    # The list route fetches them for a whole page at once; each user still gets their own.
    page = (await client.get("/users", params={"view": "detailed", "limit": 200})).json()
    for listed in page["items"]:
        ids = [video["id"] for video in listed["recent_videos"]]
        assert len(ids) <= 5
        assert ids == sorted(ids, reverse=True)
    by_id = {listed["id"]: listed for listed in page["items"]}
    if owner_id in by_id:
        assert by_id[owner_id]["recent_videos"] == user["recent_videos"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "fields", "expected"),
    [
        ("/users/1", "username", {"username"}),
        ("/videos/7", "title,owner.username,metadata.codec", {"title", "owner", "metadata"}),
        ("/users", "display_name,recent_videos.title", {"display_name", "recent_videos"}),
        ("/videos", "owner.display_name,tags", {"owner", "tags"}),
    ],
)
async def test_fields_select_nested_paths(
    client: httpx.AsyncClient, path: str, fields: str, expected: set[str]
) -> None:
    response = await client.get(path, params={"fields": fields, **page_of(path, 3)})
    assert response.status_code == 200, response.text
    assert response.headers["serdes-view"] == "fields"
    body = response.json()
    items = body.get("items", [body])
    assert items
    for item in items:
        assert set(item) == expected
        if "owner" in item:
            assert set(item["owner"]) == {fields.split("owner.")[1].split(",")[0]}
        if "metadata" in item:
            assert item["metadata"]["codec"] in {"h264", "vp9", "av1"}
            assert set(item["metadata"]) == {"codec"}
        for video in item.get("recent_videos", []):
            assert set(video) == {"title"}


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/users", "/videos"])
async def test_cursor_pagination_without_the_id_in_the_fields(
    client: httpx.AsyncClient, db_path: str, path: str
) -> None:
    # The id is not selected, but the query still loads it: the next cursor is made from it.
    ((total,),) = query(db_path, f"SELECT COUNT(*) FROM {path[1:]}")
    field = "username" if path == "/users" else "title"
    seen, cursor = 0, None
    for _ in range(100):
        params: dict[str, Any] = {"fields": field, "limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await client.get(path, params=params)).json()
        assert all(set(item) == {field} for item in page["items"])
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == total


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/users/1", "/videos/7", "/users", "/videos"])
async def test_prefer_return_minimal(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Prefer": "return=minimal"})
    assert response.status_code == 200
    assert response.headers["serdes-view"] == "minimal"
    assert response.headers["preference-applied"] == "return=minimal"
    minimal = (await client.get(path, params={"view": "minimal"})).json()
    assert response.json() == minimal
    assert "preference-applied" not in (await client.get(path)).headers


@pytest.mark.anyio
async def test_sign_up_with_prefer_return_minimal(client: httpx.AsyncClient) -> None:
    new_user = {"username": "minimal_signup", "display_name": "Min", "email": "m@example.com"}
    response = await client.post("/users", json=new_user, headers={"Prefer": "return=minimal"})
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "return=minimal"
    created = response.json()
    assert created == {"id": created["id"], "username": "minimal_signup", "display_name": "Min"}
    detailed = await client.get(f"/users/{created['id']}", params={"view": "detailed"})
    assert detailed.json()["recent_videos"] == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "params", "needle"),
    [
        ("/users/1", {"view": "detailled"}, "did you mean 'detailed'"),
        ("/videos", {"view": "full"}, "unknown view 'full'"),
        ("/users", {"fields": "id,usernme"}, "did you mean 'username'"),
        ("/videos/7", {"fields": "metadata.codek"}, "did you mean 'metadata.codec'"),
        ("/videos/7", {"fields": "owner.email"}, "unknown field 'owner.email'"),
        ("/users/1", {"fields": "recent_videos.title.x"}, "has no nested fields"),
        ("/videos", {"view": "minimal", "fields": "tags"}, "not in view 'minimal'"),
        ("/users", {"fields": ",".join(["id"] * 51)}, "at most 50"),
        ("/videos", {"fields": "owner.id.a.b.c"}, "deeper than 4"),
    ],
)
async def test_bad_selection_is_a_400_problem(
    client: httpx.AsyncClient, path: str, params: dict[str, str], needle: str
) -> None:
    problem = assert_problem(await client.get(path, params=params), 400)
    assert problem["type"] == "https://fastapi-serdes.dev/problems/invalid-selection"
    assert needle in problem["detail"]
    assert problem["views"] == ["detailed", "minimal", "standard"]
    assert "id" in problem["fields"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/users/1?view=minimal",
        "/users/1?view=detailed",
        "/users?limit=10&view=detailed",
        "/videos/7?view=detailed",
        "/videos?limit=10&view=minimal",
        "/videos?limit=10&fields=id,owner.username,metadata.fps",
    ],
)
async def test_msgpack_views_match_json(client: httpx.AsyncClient, path: str) -> None:
    as_json = await client.get(path)
    as_msgpack = await client.get(path, headers={"Accept": MSGPACK})
    assert as_msgpack.status_code == 200
    assert as_msgpack.headers["content-type"].startswith(MSGPACK)
    assert as_msgpack.headers["serdes-view"] == as_json.headers["serdes-view"]
    assert msgpack.unpackb(as_msgpack.content) == as_json.json()


@pytest.mark.anyio
async def test_openapi_documents_the_views(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, resource, envelope in [
        ("/users", "User", "UserPage"),
        ("/videos", "Video", "VideoPage"),
    ]:
        operation = spec["paths"][path]["get"]
        params = {param["name"]: param for param in operation["parameters"]}
        assert params["view"]["schema"]["enum"] == ["detailed", "minimal", "standard"]
        assert params["view"]["schema"]["default"] == "standard"
        assert "fields" in params
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        refs = {ref["$ref"].rsplit("/", 1)[1] for ref in schema["anyOf"]}
        assert refs == {f"{envelope}Minimal", f"{envelope}Standard", envelope}
        keys = USER_KEYS if resource == "User" else VIDEO_KEYS
        assert set(schemas[f"{resource}Minimal"]["properties"]) == keys["minimal"]
        assert set(schemas[f"{resource}Standard"]["properties"]) == keys["standard"]
        assert set(schemas[resource]["properties"]) == keys["detailed"]


# --- loading only what the view shows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "always", "expected"),
    [
        (None, ("id",), "id, owner_id, title, status"),
        (frozenset({"title"}), ("id",), "id, title"),
        (frozenset({"status", "title"}), ("id",), "id, title, status"),
        (frozenset({"title"}), ("id", "owner_id"), "id, owner_id, title"),
        (frozenset({"tags", "owner"}), ("id",), "id"),  # nested data: not columns of this table
        (frozenset({"id; DROP TABLE videos"}), ("id",), "id"),  # never text from the request
    ],
)
def test_select_list(fields: frozenset[str] | None, always: tuple[str, ...], expected: str) -> None:
    assert select_list(("id", "owner_id", "title", "status"), fields, always) == expected


def test_partial_validates_what_was_loaded_and_leaves_the_rest_unset() -> None:
    user = partial(User, {"id": "3", "username": "ok_name", "created_at": "2020-01-02T03:04:05Z"})
    assert user.id == 3
    assert user.created_at.year == 2020
    assert user.model_fields_set == {"id", "username", "created_at"}
    assert user.model_dump(include={"id", "username"}) == {"id": 3, "username": "ok_name"}
    with pytest.raises(AttributeError):
        _ = user.email
    with pytest.raises(ValidationError, match="username"):
        partial(User, {"id": 1, "username": "Not Valid"})


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app runs while the test does (the connection is traced)."""
    seen: list[str] = []

    def traced(request: Request) -> Iterator[sqlite3.Connection]:
        conn = connect(request.app.state.db_path)
        conn.set_trace_callback(seen.append)
        try:
            yield conn
        finally:
            conn.close()

    app.dependency_overrides[get_connection] = traced
    try:
        yield seen
    finally:
        del app.dependency_overrides[get_connection]


def select_lists(statements: list[str], table: str) -> list[str]:
    """The select lists of the statements that read ``table`` directly."""
    return re.findall(rf"^SELECT (.+?) FROM {table}\b", "\n".join(statements), re.MULTILINE)


def tables_read(statements: list[str]) -> set[str]:
    return set(re.findall(r"\bFROM (\w+)", "\n".join(statements)))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "params", "columns", "tables"),
    [
        ("/users", {"view": "minimal"}, "id, username, display_name", {"users"}),
        ("/users", {"fields": "bio"}, "id, bio", {"users"}),
        ("/users", {}, ", ".join(users.COLUMNS), {"users"}),
        ("/users", {"view": "detailed"}, ", ".join(users.COLUMNS), {"users", "videos"}),
        ("/users", {"fields": "recent_videos.title"}, "id", {"users", "videos"}),
        ("/users/1", {"view": "minimal"}, "id, username, display_name", {"users"}),
        ("/videos", {"view": "minimal"}, "id, title", {"videos"}),
        ("/videos", {}, ", ".join(videos.COLUMNS), {"videos"}),
        ("/videos", {"fields": "tags"}, "id", {"videos", "video_tags"}),
        ("/videos", {"fields": "metadata.fps"}, "id", {"videos", "video_metadata"}),
        ("/videos", {"fields": "title,owner.username"}, "id, owner_id, title", {"videos", "users"}),
        (
            "/videos",
            {"view": "detailed"},
            ", ".join(videos.COLUMNS),
            {"videos", "video_tags", "video_metadata", "users"},
        ),
        ("/videos/7", {"view": "minimal"}, "id, title", {"videos"}),
    ],
)
async def test_queries_load_only_what_the_selection_needs(
    client: httpx.AsyncClient,
    statements: list[str],
    path: str,
    params: dict[str, str],
    columns: str,
    tables: set[str],
) -> None:
    # no-cache: the response cache must not answer, the queries are what is measured here.
    response = await client.get(
        path, params={**params, **page_of(path, 20)}, headers={"cache-control": "no-cache"}
    )
    assert response.status_code == 200, response.text
    table = path.split("/")[1]
    assert select_lists(statements, table)[0] == columns
    assert tables_read(statements) == tables


def test_otlp_mode_never_exports_on_the_request_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A collector that hangs must cost requests nothing: spans are exported by a background
    # thread (a bounded batch queue), never by the thread that ends them.
    import threading

    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from example_app import telemetry as example_telemetry

    release = threading.Event()
    exporting_threads: list[threading.Thread] = []

    class HangingExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            exporting_threads.append(threading.current_thread())
            release.wait(5)  # a collector that does not answer
            return SpanExportResult.FAILURE

        def shutdown(self) -> None:
            release.set()

    class NoMetrics:
        pass

    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    monkeypatch.setattr(
        example_telemetry, "_exporters", lambda mode: (HangingExporter(), NoMetrics())
    )
    monkeypatch.setattr(
        example_telemetry,
        "PeriodicExportingMetricReader",
        lambda exporter, interval: InMemoryMetricReader(),
    )
    observability = example_telemetry.setup("otlp")
    assert observability.fastapi is not None
    tracer = observability.fastapi["tracer_provider"].get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("request"):
            pass
    assert threading.current_thread() not in exporting_threads
    release.set()
    observability.shutdown()


# --- edits: invalidation by route, conditional writes ------------------------------------------


@pytest.mark.anyio
async def test_editing_a_video_refreshes_every_cached_answer_that_shows_it(
    client: httpx.AsyncClient,
) -> None:
    # A video on its owner's page (their most recent): its title shows in three cached answers.
    owner = 3
    video_id = (await client.get(f"/users/{owner}?view=detailed")).json()["recent_videos"][0]["id"]
    path = f"/videos/{video_id}"
    listed = f"/videos?owner_id={owner}"
    for cached_path in [path, listed, f"/users/{owner}?view=detailed"]:
        await client.get(cached_path)
        hit = await client.get(cached_path)
        assert hit.headers["cache-status"] == "fastapi-serdes; hit", cached_path
    etag = (await client.get(path)).headers["etag"]
    edited = await client.patch(path, json={"title": "Edited title"}, headers={"if-match": etag})
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Edited title"
    assert (await client.get(path)).json()["title"] == "Edited title"
    titles = {item["id"]: item["title"] for item in (await client.get(listed)).json()["items"]}
    assert titles[video_id] == "Edited title"
    page = (await client.get(f"/users/{owner}?view=detailed")).json()
    assert page["recent_videos"][0] == {**page["recent_videos"][0], "title": "Edited title"}
    assert page["recent_videos"][0]["id"] == video_id
    # The client's tag is the old one now: a second edit on it is refused, nothing changes.
    stale = await client.patch(path, json={"title": "Lost"}, headers={"if-match": etag})
    assert stale.status_code == 412
    assert stale.json()["type"] == "https://fastapi-serdes.dev/problems/precondition-failed"
    assert (await client.get(path)).json()["title"] == "Edited title"
    assert (await client.patch("/videos/999999", json={"title": "x"})).status_code == 404
    assert (await client.patch(path, json={"title": ""})).status_code == 422


# --- OpenAPI lists what the routes send (keep this section last: it checks the whole module) ---


def operation_of(spec: dict[str, Any], method: str, path: str) -> tuple[str, str] | None:
    """The documented operation that answers ``method path``, or None (an undocumented route
    such as /openapi.json, or no route at all)."""
    method = "get" if method == "HEAD" else method.lower()  # HEAD is answered as GET
    for template, operations in spec["paths"].items():
        pattern = re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template))
        if method in operations and re.fullmatch(pattern, path):
            return method, template
    return None


@pytest.mark.anyio
async def test_openapi_lists_every_status_the_routes_send(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Conditional GETs on every GET route, and a few answers the tests above may not give.
    for path in ["/users", "/users/1", "/videos", "/videos/7", "/health/live", "/health/ready"]:
        etag = (await client.get(path)).headers["etag"]
        revalidated = await client.get(path, headers={"if-none-match": etag})
        assert revalidated.status_code == 304, path
    assert (await client.get("/users/999999")).status_code == 404
    assert (await client.get("/videos/999999")).status_code == 404
    user = {"username": "twice_signed", "display_name": "T", "email": "t@example.com"}
    assert (await client.post("/users", json=user)).status_code == 201
    conflict = await client.post("/users", json=user)
    assert conflict.json() == users.username_taken("twice_signed").to_dict()
    assert (await client.get("/users", headers={"accept": "text/csv"})).status_code == 406

    spec = (await client.get("/openapi.json")).json()
    sent: dict[tuple[str, str], set[int]] = {}
    for method, path, status in app.state.statuses_seen:
        operation = operation_of(spec, method, path)
        if operation is not None:
            sent.setdefault(operation, set()).add(status)
    undocumented = {
        f"{method.upper()} {path}": sorted(
            status
            for status in statuses
            if str(status) not in spec["paths"][path][method]["responses"]
        )
        for (method, path), statuses in sent.items()
    }
    assert {op: statuses for op, statuses in undocumented.items() if statuses} == {}
    # What the issue names was sent, and so is documented, with the app's own examples.
    assert {404, 304} <= sent[("get", "/users/{user_id}")], sent
    assert {404, 304} <= sent[("get", "/videos/{video_id}")]
    assert 409 in sent[("post", "/users")]
    not_found = spec["paths"]["/users/{user_id}"]["get"]["responses"]["404"]
    example = not_found["content"]["application/problem+json"]["examples"]["not-found"]["value"]
    assert example == users.user_not_found(7).to_dict()
    assert "content" not in spec["paths"]["/users"]["get"]["responses"]["304"]
