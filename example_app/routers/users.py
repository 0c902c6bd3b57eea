"""``/users``: list (cursor-paginated, searchable), fetch one, and sign up; in three views."""

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from example_app.database import Connection, contains_pattern, placeholders
from example_app.models import USER_COLUMNS, USER_VIEWS, User, UserCreate, UserPage, VideoSummary
from example_app.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, after_id, cut_page
from example_app.projection import SelectionParam, partial, select_list, wants
from example_app.responses import BAD_PAGE, NOT_MODIFIED, not_found
from fastapi_serdes import ProblemError, Selection, SerdesRoute, cached
from fastapi_serdes.openapi import problem_response

router = APIRouter(prefix="/users", tags=["users"], route_class=SerdesRoute)

COLUMNS = USER_COLUMNS
"""The columns of ``users``, each a ``User`` field of the same name."""
RECENT_VIDEOS = 5


# --8<-- [start:list_users]
@router.get("", responses={**NOT_MODIFIED, **BAD_PAGE})
@cached(30)
@USER_VIEWS
def list_users(
    conn: Connection,
    sel: SelectionParam,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Part of the username.")
    ] = None,
) -> UserPage:
    """Users in sign-up order, optionally only those whose username contains ``q``."""
    # Only the selected columns, and always the id: the next cursor is made from it.
    sql = f"SELECT {select_list(COLUMNS, sel.fields)} FROM users WHERE id > ?"
    params: list[object] = [after_id(cursor)]
    if q is not None:
        sql += " AND username LIKE ? ESCAPE '\\'"
        params.append(contains_pattern(q))
    sql += " ORDER BY id LIMIT ?"
    params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    items, next_cursor = cut_page(_users(conn, rows, sel), limit)
    return UserPage(items=items, next_cursor=next_cursor)


# --8<-- [end:list_users]


def user_not_found(user_id: int) -> ProblemError:
    """The 404 for a user id that names nobody."""
    return ProblemError(404, detail=f"No user with id {user_id}.")


def username_taken(username: str) -> ProblemError:
    """The 409 for a sign-up whose username belongs to someone already."""
    return ProblemError(
        409,
        title="Username taken",
        detail=f"The username {username!r} is already taken.",
        username=username,
    )


@router.get("/{user_id}", responses={**NOT_MODIFIED, **not_found(user_not_found(7))})
@cached(60)
@USER_VIEWS
def get_user(user_id: int, conn: Connection, sel: SelectionParam) -> User:
    """One user; 404 problem details when there is none with this id."""
    row = conn.execute(
        f"SELECT {select_list(COLUMNS, sel.fields)} FROM users WHERE id = ?", (user_id,)
    ).fetchone()
    if row is None:
        raise user_not_found(user_id)
    return _users(conn, [row], sel)[0]


@router.post("", status_code=201, responses={409: problem_response(username_taken("grumpy_otter"))})
@USER_VIEWS
def create_user(user: UserCreate, conn: Connection) -> User:
    """Sign up a new user; 409 problem details when the username is taken.

    The answer is the new user in the selected view, like ``GET /users/{id}``'s.
    """
    created_at = datetime.now(UTC).replace(microsecond=0)
    try:
        rows = conn.execute(
            "INSERT INTO users (username, display_name, email, bio, country, created_at)"
            f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {', '.join(COLUMNS)}",
            (
                user.username,
                user.display_name,
                user.email,
                user.bio,
                user.country,
                created_at.isoformat(),
            ),
        ).fetchall()
    except sqlite3.IntegrityError:
        # The only constraint a valid UserCreate can break is the unique username.
        raise username_taken(user.username) from None
    return User.model_validate({**dict(rows[0]), "recent_videos": []})


# --8<-- [start:nested]
def _users(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], sel: Selection) -> list[User]:
    """Users from their rows, with their recent videos only when the selection holds them."""
    values: list[dict[str, Any]] = [dict(row) for row in rows]
    if wants(sel, "recent_videos"):
        recent = _recent_videos(conn, [user["id"] for user in values])
        for user in values:
            user["recent_videos"] = recent[user["id"]]
    return [partial(User, user) for user in values]


# --8<-- [end:nested]


def _recent_videos(
    conn: sqlite3.Connection, user_ids: Sequence[int]
) -> Mapping[int, list[VideoSummary]]:
    """The latest published videos of each user, newest first, in one query for all of them."""
    recent: dict[int, list[VideoSummary]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return recent
    # Video ids grow with published_at, so the highest ids are the most recent uploads.
    rows = conn.execute(
        "SELECT owner_id, id, title, duration_seconds, view_count, published_at FROM ("
        "  SELECT *, ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY id DESC) AS n"
        f"  FROM videos WHERE status = 'published' AND owner_id IN ({placeholders(len(user_ids))})"
        ") WHERE n <= ? ORDER BY owner_id, id DESC",
        [*user_ids, RECENT_VIDEOS],
    )
    for row in rows:
        recent[row["owner_id"]].append(VideoSummary.model_validate(dict(row)))
    return recent
