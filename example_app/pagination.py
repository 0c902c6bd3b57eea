"""Cursor pagination: opaque cursors, the query parameters, and cutting a page.

A cursor is the base64url form (no padding) of the last id a client has seen. It is opaque to
clients on purpose: the server may change what is inside without breaking them. Pages are
keyset-paginated (``WHERE id > :after ORDER BY id``), so they stay stable while rows are added.
"""

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Protocol, TypeVar

from fastapi import Query

from fastapi_serdes import ProblemError

MAX_LIMIT = 200
DEFAULT_LIMIT = 50

CursorParam = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; omit it for the first page."),
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


class HasId(Protocol):
    """Anything with an integer ``id``: the key pages are cut on."""

    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


def encode_cursor(last_id: int) -> str:
    """The cursor that resumes after ``last_id``."""
    return base64.urlsafe_b64encode(str(last_id).encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The id a cursor resumes after.

    Args:
        cursor: a value that ``encode_cursor`` produced.

    Returns:
        The last id of the previous page.

    Raises:
        ValueError: when the cursor is not one that ``encode_cursor`` could have produced.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last_id = int(raw.decode("ascii")) if raw.isdigit() else 0
    except (binascii.Error, ValueError, UnicodeDecodeError):
        last_id = 0
    # Requiring the canonical form rejects "01", trailing bits, and every other alias.
    if last_id < 1 or encode_cursor(last_id) != cursor:
        raise ValueError(f"not a pagination cursor: {cursor[:64]!r}")
    return last_id


def after_id(cursor: str | None) -> int:
    """The id to page after for a ``?cursor=`` value; 0 (the start) when there is none.

    Raises:
        ProblemError: 400 when the cursor is malformed.
    """
    if cursor is None:
        return 0
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise invalid_cursor(cursor) from None


def invalid_cursor(cursor: str) -> ProblemError:
    """The 400 problem for a ``?cursor=`` this API did not return (quoted, at most 64 chars)."""
    return ProblemError(
        400,
        title="Invalid cursor",
        detail=f"{cursor[:64]!r} is not a cursor this API returned; "
        "pass a previous page's next_cursor, or omit cursor for the first page.",
    )


def cut_page(rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
    """Split ``limit + 1`` fetched rows into a page and the cursor of the next one.

    Fetching one row more than the page holds tells whether a next page exists without a
    second query, so the last page never links to an empty one.
    """
    items = list(rows[:limit])
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return items, next_cursor
