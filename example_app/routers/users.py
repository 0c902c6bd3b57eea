"""``/users``: list (cursor-paginated, searchable), fetch one, and sign up."""

import sqlite3
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from example_app.database import Connection, contains_pattern
from example_app.models import User, UserCreate, UserPage
from example_app.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, after_id, cut_page
from fastapi_serdes import ProblemError, SerdesRoute

router = APIRouter(prefix="/users", tags=["users"], route_class=SerdesRoute)

_COLUMNS = "id, username, display_name, email, bio, country, created_at, follower_count, verified"


@router.get("")
def list_users(
    conn: Connection,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Part of the username.")
    ] = None,
) -> UserPage:
    """Users in sign-up order, optionally only those whose username contains ``q``."""
    sql = f"SELECT {_COLUMNS} FROM users WHERE id > ?"
    params: list[object] = [after_id(cursor)]
    if q is not None:
        sql += " AND username LIKE ? ESCAPE '\\'"
        params.append(contains_pattern(q))
    sql += " ORDER BY id LIMIT ?"
    params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    items, next_cursor = cut_page([User.model_validate(dict(row)) for row in rows], limit)
    return UserPage(items=items, next_cursor=next_cursor)


@router.get("/{user_id}")
def get_user(user_id: int, conn: Connection) -> User:
    """One user; 404 problem details when there is none with this id."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise ProblemError(404, detail=f"No user with id {user_id}.")
    return User.model_validate(dict(row))


@router.post("", status_code=201)
def create_user(user: UserCreate, conn: Connection) -> User:
    """Sign up a new user; 409 problem details when the username is taken."""
    created_at = datetime.now(UTC).replace(microsecond=0)
    try:
        rows = conn.execute(
            "INSERT INTO users (username, display_name, email, bio, country, created_at)"
            f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
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
        raise ProblemError(
            409,
            title="Username taken",
            detail=f"The username {user.username!r} is already taken.",
            username=user.username,
        ) from None
    return User.model_validate(dict(rows[0]))
