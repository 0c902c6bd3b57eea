"""SQLite storage: where the file lives, the schema, and one connection per request."""

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from example_app.seed import seed

DB_PATH_ENV = "EXAMPLE_DB_PATH"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    display_name   TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    bio            TEXT,
    country        TEXT,
    created_at     TEXT    NOT NULL,
    follower_count INTEGER NOT NULL DEFAULT 0,
    verified       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS videos (
    id               INTEGER PRIMARY KEY,
    owner_id         INTEGER NOT NULL REFERENCES users (id),
    title            TEXT    NOT NULL,
    description      TEXT,
    duration_seconds REAL    NOT NULL,
    view_count       INTEGER NOT NULL,
    like_ratio       REAL    NOT NULL,
    published_at     TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    resolution       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_by_owner ON videos (owner_id, id);
CREATE TABLE IF NOT EXISTS video_tags (
    video_id INTEGER NOT NULL REFERENCES videos (id),
    position INTEGER NOT NULL,
    tag      TEXT    NOT NULL,
    PRIMARY KEY (video_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS video_tags_by_tag ON video_tags (tag, video_id);
CREATE TABLE IF NOT EXISTS video_metadata (
    video_id     INTEGER PRIMARY KEY REFERENCES videos (id),
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    fps          REAL    NOT NULL,
    codec        TEXT    NOT NULL,
    audio_codec  TEXT    NOT NULL,
    bitrate_kbps INTEGER NOT NULL
);
"""


def resolve_db_path(db_path: str | None = None) -> str:
    """The database file to use: the argument, else ``$EXAMPLE_DB_PATH``, else one in the temp dir.

    Args:
        db_path: an explicit path, which wins over the environment.

    Returns:
        The path of the SQLite file (it need not exist yet).
    """
    if db_path:
        return db_path
    from_env = os.environ.get(DB_PATH_ENV)
    if from_env:
        return from_env
    return str(Path(tempfile.gettempdir()) / "fastapi_serdes_example.sqlite3")


def connect(db_path: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode with rows addressable by column name.

    Autocommit (``isolation_level=None``) keeps each statement its own transaction; the seeding
    code opens an explicit one. ``check_same_thread=False`` because FastAPI may run a sync
    dependency and the sync endpoint using it on different worker threads; the connection is
    still only used by one request at a time.
    """
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def prepare_database(db_path: str) -> bool:
    """Create the schema and seed the data set unless that was done before.

    Safe to call on every start and from several processes at once.

    Args:
        db_path: the SQLite file.

    Returns:
        True when this call seeded the database, False when it already was.
    """
    conn = connect(db_path)
    try:
        # WAL lets readers carry on while POST /users writes; the setting is stored in the file.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        return seed(conn)
    finally:
        conn.close()


def contains_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching values that contain ``text`` literally.

    Escaping matters: without it a search for ``100%`` or ``snake_case`` would treat ``%`` and
    ``_`` as wildcards.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``count`` bound parameters."""
    return ", ".join("?" * count)


def get_connection(request: Request) -> Iterator[sqlite3.Connection]:
    """FastAPI dependency: a connection to this app's database, closed after the request."""
    conn = connect(request.app.state.db_path)
    try:
        yield conn
    finally:
        conn.close()


Connection = Annotated[sqlite3.Connection, Depends(get_connection)]
"""Annotate an endpoint parameter with this to receive a per-request connection."""
