"""``/videos``: list (cursor-paginated; filter by owner, tag, status, title) and fetch one."""

import sqlite3
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from example_app.database import Connection, contains_pattern
from example_app.models import Video, VideoPage, VideoStatus
from example_app.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, after_id, cut_page
from fastapi_serdes import ProblemError, SerdesRoute

router = APIRouter(prefix="/videos", tags=["videos"], route_class=SerdesRoute)

_COLUMNS = (
    "id, owner_id, title, description, duration_seconds, view_count, like_ratio,"
    " published_at, status, resolution"
)


@router.get("")
def list_videos(
    conn: Connection,
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
    sql = f"SELECT {_COLUMNS} FROM videos WHERE id > ?"
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
    items, next_cursor = cut_page(_with_tags(conn, rows), limit)
    return VideoPage(items=items, next_cursor=next_cursor)


@router.get("/{video_id}")
def get_video(video_id: int, conn: Connection) -> Video:
    """One video; 404 problem details when there is none with this id."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM videos WHERE id = ?", (video_id,)).fetchone()
    if row is None:
        raise ProblemError(404, detail=f"No video with id {video_id}.")
    return _with_tags(conn, [row])[0]


def _with_tags(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[Video]:
    """Build videos from their rows, fetching the tags of all of them in one query."""
    ids = [row["id"] for row in rows]
    tags: dict[int, list[str]] = {video_id: [] for video_id in ids}
    if ids:
        placeholders = ", ".join("?" * len(ids))
        for video_id, tag in conn.execute(
            f"SELECT video_id, tag FROM video_tags WHERE video_id IN ({placeholders})"
            " ORDER BY video_id, position",
            ids,
        ):
            tags[video_id].append(tag)
    return [Video.model_validate({**dict(row), "tags": tags[row["id"]]}) for row in rows]
