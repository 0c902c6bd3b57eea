"""``/videos``: list (cursor-paginated; filter by owner, tag, status, title), fetch and edit one.

They answer in three views; the detailed one adds the tags, the metadata and the owner, each
fetched (one query per page) only when the selection holds it. An edit invalidates the cached
answers it changes (the video's own path by itself; the lists and its owner by route), and a
client holding the video's ETag can make it conditional with ``If-Match`` (412 when it changed).
"""

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from example_app.database import Connection, contains_pattern, placeholders
from example_app.models import (
    VIDEO_COLUMNS,
    VIDEO_VIEWS,
    Video,
    VideoPage,
    VideoStatus,
    VideoUpdate,
)
from example_app.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, after_id, cut_page
from example_app.projection import SelectionParam, partial, select_list, wants
from example_app.responses import BAD_PAGE, NOT_MODIFIED, PRECONDITION_FAILED, not_found
from example_app.routers.users import get_user, list_users
from fastapi_serdes import ProblemError, Selection, SerdesRoute, cached, invalidate

router = APIRouter(prefix="/videos", tags=["videos"], route_class=SerdesRoute)

COLUMNS = VIDEO_COLUMNS
"""The columns of ``videos``, each a ``Video`` field of the same name."""


@router.get("", responses={**NOT_MODIFIED, **BAD_PAGE})
@cached(30)
@VIDEO_VIEWS
def list_videos(
    conn: Connection,
    sel: SelectionParam,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    owner_id: Annotated[int | None, Query(description="Only this user's videos.")] = None,
    tag: Annotated[
        str | None, Query(min_length=1, max_length=50, description="Only videos with this tag.")
    ] = None,
    status: Annotated[VideoStatus | None, Query(description="Only videos in this state.")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Part of the title.")
    ] = None,
) -> VideoPage:
    """Videos in upload order, narrowed by any combination of the filters."""
    # Only fixed SQL fragments are concatenated; every value is a bound parameter.
    sql = f"SELECT {_select_list(sel)} FROM videos WHERE id > ?"
    params: list[object] = [after_id(cursor)]
    if owner_id is not None:
        sql += " AND owner_id = ?"
        params.append(owner_id)
    if tag is not None:
        sql += " AND id IN (SELECT video_id FROM video_tags WHERE tag = ?)"
        params.append(tag)
    if status is not None:
        sql += " AND status = ?"
        params.append(status.value)
    if q is not None:
        sql += " AND title LIKE ? ESCAPE '\\'"
        params.append(contains_pattern(q))
    sql += " ORDER BY id LIMIT ?"
    params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    items, next_cursor = cut_page(_videos(conn, rows, sel), limit)
    return VideoPage(items=items, next_cursor=next_cursor)


def video_not_found(video_id: int) -> ProblemError:
    """The 404 for a video id that names no video."""
    return ProblemError(404, detail=f"No video with id {video_id}.")


@router.get("/{video_id}", responses={**NOT_MODIFIED, **not_found(video_not_found(7))})
@cached(60)
@VIDEO_VIEWS
def get_video(video_id: int, conn: Connection, sel: SelectionParam) -> Video:
    """One video; 404 problem details when there is none with this id."""
    row = conn.execute(
        f"SELECT {_select_list(sel)} FROM videos WHERE id = ?", (video_id,)
    ).fetchone()
    if row is None:
        raise video_not_found(video_id)
    return _videos(conn, [row], sel)[0]


# --8<-- [start:update_video]
@router.patch("/{video_id}", responses={**not_found(video_not_found(7)), **PRECONDITION_FAILED})
@VIDEO_VIEWS
async def update_video(
    video_id: int, update: VideoUpdate, conn: Connection, sel: SelectionParam, request: Request
) -> Video:
    """Change a video's title or description; 404 when there is none with this id.

    ``PATCH /videos/{id}`` drops the video's own cached answers by itself (an unsafe method on
    the path); the lists and the owner's page, which show the title too, are dropped by route.
    """
    video, owner_id = await run_in_threadpool(_update, conn, video_id, update, sel)
    await invalidate(request, route=list_videos)
    await invalidate(request, route=list_users)
    await invalidate(request, route=get_user, user_id=owner_id)
    return video


# --8<-- [end:update_video]


def _update(
    conn: sqlite3.Connection, video_id: int, update: VideoUpdate, sel: Selection
) -> tuple[Video, int]:
    changes = update.model_dump(exclude_unset=True)
    if changes:
        assignments = ", ".join(f"{name} = ?" for name in changes)  # names are the model's
        conn.execute(f"UPDATE videos SET {assignments} WHERE id = ?", (*changes.values(), video_id))
    row = conn.execute(
        f"SELECT {_select_list(sel)} FROM videos WHERE id = ?", (video_id,)
    ).fetchone()
    if row is None:
        raise video_not_found(video_id)
    (owner_id,) = conn.execute("SELECT owner_id FROM videos WHERE id = ?", (video_id,)).fetchone()
    return _videos(conn, [row], sel)[0], owner_id


def _select_list(sel: Selection) -> str:
    """The selected columns, the id (cursors, tags, metadata) and owner_id for the owner."""
    always = ("id", "owner_id") if wants(sel, "owner") else ("id",)
    return select_list(COLUMNS, sel.fields, always)


def _videos(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], sel: Selection) -> list[Video]:
    """Videos from their rows, with the nested data the selection holds, one query for each."""
    values: list[dict[str, Any]] = [dict(row) for row in rows]
    ids = [video["id"] for video in values]
    if wants(sel, "tags"):
        tags = _tags(conn, ids)
        for video in values:
            video["tags"] = tags[video["id"]]
    if wants(sel, "metadata"):
        metadata = _by_key(conn, "SELECT * FROM video_metadata WHERE video_id IN", "video_id", ids)
        for video in values:
            video["metadata"] = metadata[video["id"]]
    if wants(sel, "owner"):
        owners = _by_key(
            conn,
            "SELECT id, username, display_name, verified FROM users WHERE id IN",
            "id",
            {video["owner_id"] for video in values},
        )
        for video in values:
            video["owner"] = owners[video["owner_id"]]
    return [partial(Video, video) for video in values]


def _tags(conn: sqlite3.Connection, ids: Sequence[int]) -> Mapping[int, list[str]]:
    """The tags of each video, in their order."""
    tags: dict[int, list[str]] = {video_id: [] for video_id in ids}
    if ids:
        for video_id, tag in conn.execute(
            f"SELECT video_id, tag FROM video_tags WHERE video_id IN ({placeholders(len(ids))})"
            " ORDER BY video_id, position",
            ids,
        ):
            tags[video_id].append(tag)
    return tags


def _by_key(
    conn: sqlite3.Connection, select_where_in: str, key: str, keys: Collection[int]
) -> Mapping[int, dict[str, Any]]:
    """The rows of ``SELECT ... WHERE key IN (keys)``, as dicts by their ``key``."""
    if not keys:
        return {}
    rows = conn.execute(f"{select_where_in} ({placeholders(len(keys))})", list(keys))
    return {row[key]: dict(row) for row in rows}
