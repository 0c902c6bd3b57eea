"""Deterministic demo data: the same users, videos and tags on every machine, without network.

Everything comes from one ``random.Random(seed)``, drawn in a fixed order, so two fresh databases
seeded with the same numbers are identical row for row. The data is shaped like a real platform
(a few creators with most of the followers, long-tailed view counts, non-ASCII names and emoji)
so that benchmarks and demos exercise realistic payloads.
"""

import random
import sqlite3
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

# Column order of the INSERTs below, which is the column order of the tables in database.py.
UserRow = tuple[int, str, str, str, str | None, str | None, str, int, int]
VideoRow = tuple[int, int, str, str | None, float, int, float, str, str, str]
TagRow = tuple[int, int, str]
MetadataRow = tuple[int, int, int, float, str, str, int]

SEEDED_SCHEMA_VERSION = 2
"""Stored in ``PRAGMA user_version`` once the data is in; a non-zero value means "seeded".

Version 1 had no ``video_metadata``; seeding a version 1 database adds it.
"""

_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 5 * 365 * 24 * 3600

# (display form, ASCII form for the username)
_FIRST_NAMES = (
    ("Aarav", "aarav"), ("Amara", "amara"), ("Ana", "ana"), ("Björn", "bjorn"),
    ("Chen", "chen"), ("Chloé", "chloe"), ("Dmitri", "dmitri"), ("Efua", "efua"),
    ("Fatima", "fatima"), ("Grace", "grace"), ("Hiroshi", "hiroshi"), ("Inés", "ines"),
    ("Jamal", "jamal"), ("José", "jose"), ("Kai", "kai"), ("Léa", "lea"),
    ("Liam", "liam"), ("Łukasz", "lukasz"), ("Maya", "maya"), ("Mei", "mei"),
    ("Ngozi", "ngozi"), ("Noah", "noah"), ("Olivia", "olivia"), ("Priya", "priya"),
    ("Rafael", "rafael"), ("Sofía", "sofia"), ("Søren", "soren"), ("Tariq", "tariq"),
    ("Yūki", "yuki"), ("Zoë", "zoe"),
)  # fmt: skip
_LAST_NAMES = (
    "Adeyemi", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito",
    "Jansen", "Kowalski", "Lee", "Martin", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi",
    "Silva", "Tanaka", "Umarov", "Varga", "Wang", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "BR", "IN", "JP", "NG", "PL", "ES", "KR", "SE", "TR")
_COUNTRY_WEIGHTS = (30, 10, 8, 7, 4, 8, 12, 6, 4, 3, 4, 4, 2, 3)
_ROLES = ("Designer", "Teacher", "Engineer", "Chef", "Student", "Musician", "Nurse", "Gamer")
_CITIES = ("Lagos", "Kraków", "São Paulo", "Osaka", "Utrecht", "Pune", "Austin", "Malmö")
_HOBBIES = (
    "Posting every Friday",
    "Mostly speedruns",
    "Film photography nerd",
    "Bread, bikes and bad puns",
    "Subscribe for weekly tutorials",
    "Coffee first ☕",
)

_TOPICS = (
    "sourdough", "python", "rust", "street food", "bouldering", "synthwave", "chess openings",
    "home espresso", "watercolour", "speedrunning", "houseplants", "vintage cameras",
    "mechanical keyboards", "trail running", "sushi", "linear algebra", "retro consoles",
    "van life", "knitting", "jazz piano",
)  # fmt: skip
_VERBS = ("master", "fix", "learn", "build", "cook", "explain", "review", "speedrun")
_ADJECTIVES = ("cursed", "cozy", "ultimate", "honest", "tiny", "chaotic", "perfect", "weird")
_TITLE_TEMPLATES = (
    "How to {verb} {topic} in {n} minutes",
    "{Adjective} {topic} compilation #{n}",
    "I tried {topic} for {n} days",
    "{Topic}: the complete guide ({year})",
    "Reacting to {adjective} {topic}",
    "Live: {topic} Q&A, part {n}",
)
_TAGS = (
    "music", "gaming", "tutorial", "python", "cooking", "travel", "vlog", "comedy", "science",
    "diy", "fitness", "art", "tech", "review", "live", "shorts", "education", "nature",
    "history", "asmr", "podcast", "animation", "food", "photography", "cars", "fashion",
    "finance", "sports", "news", "kids", "coding", "climbing", "coffee", "plants", "chess",
    "retro", "jazz", "running", "knitting", "math",
)  # fmt: skip
_STATUSES = ("published", "unlisted", "processing")
_STATUS_WEIGHTS = (85, 10, 5)
_RESOLUTIONS = ("360p", "480p", "720p", "1080p", "2160p")
_RESOLUTION_WEIGHTS = (5, 10, 30, 45, 10)
# resolution: (width, height, typical H.264 bitrate in kbit/s at 30 fps)
_RENDITIONS = {
    "360p": (640, 360, 700),
    "480p": (854, 480, 1_200),
    "720p": (1280, 720, 2_500),
    "1080p": (1920, 1080, 4_500),
    "2160p": (3840, 2160, 15_000),
}
_FRAME_RATES = (24.0, 25.0, 29.97, 30.0, 50.0, 60.0)
_FRAME_RATE_WEIGHTS = (15, 10, 20, 30, 5, 20)
# codec: (share of uploads, bitrate relative to H.264 for the same quality)
_CODECS = {"h264": (60, 1.0), "vp9": (25, 0.7), "av1": (15, 0.55)}
_AUDIO_CODECS = ("aac", "opus")
_AUDIO_CODEC_WEIGHTS = (70, 30)


def seed(
    conn: sqlite3.Connection, *, users: int = 1_000, videos: int = 5_000, random_seed: int = 42
) -> bool:
    """Fill an empty schema with users, videos, tags and video metadata, in one transaction.

    Args:
        conn: an autocommit connection (``isolation_level=None``) to a database with the schema.
        users: how many users to create.
        videos: how many videos to create, spread over the users.
        random_seed: the seed everything is drawn from: users, videos and tags from one random
            generator, video metadata from a second one derived from it.

    Returns:
        True when this call wrote data (everything, or the metadata a version 1 database
        lacks); False when the database was seeded already.
    """
    # IMMEDIATE takes the write lock before the check, so two processes starting at once
    # cannot both decide to seed.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SEEDED_SCHEMA_VERSION:
            conn.execute("ROLLBACK")
            return False
        if version == 0:
            rng = random.Random(random_seed)
            user_rows = _user_rows(rng, users)
            video_rows, tag_rows = _video_rows(rng, videos, user_rows)
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", user_rows)
            conn.executemany("INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", video_rows)
            conn.executemany("INSERT INTO video_tags VALUES (?, ?, ?)", tag_rows)
        # Drawn from the videos as stored, with a generator of its own, so a version 1
        # database gets the same metadata as a fresh one, and the older tables stay as they were.
        stored = conn.execute("SELECT id, resolution FROM videos ORDER BY id").fetchall()
        metadata_rows = _metadata_rows(random.Random(f"{random_seed}/metadata"), stored)
        conn.executemany("INSERT INTO video_metadata VALUES (?, ?, ?, ?, ?, ?, ?)", metadata_rows)
        conn.execute(f"PRAGMA user_version = {SEEDED_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _user_rows(rng: random.Random, count: int) -> list[UserRow]:
    """Users in sign-up order: ids grow with ``created_at``."""
    signups = sorted(rng.randrange(_SPAN_SECONDS // 2) for _ in range(count))
    rows: list[UserRow] = []
    for user_id, offset in enumerate(signups, start=1):
        first, first_ascii = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        username = f"{first_ascii}_{_ascii(last).lower()}_{user_id}"
        bio = None
        if rng.random() < 0.7:
            bio = f"{rng.choice(_ROLES)} from {rng.choice(_CITIES)}. {rng.choice(_HOBBIES)}."
        country = None
        if rng.random() < 0.9:
            country = rng.choices(_COUNTRIES, weights=_COUNTRY_WEIGHTS)[0]
        # Pareto: most accounts have a handful of followers, a few have millions.
        followers = min(int((rng.paretovariate(0.8) - 1) * 25), 50_000_000)
        verified = followers >= 100_000 or rng.random() < 0.01
        created_at = _EPOCH + timedelta(seconds=offset)
        rows.append(
            (
                user_id,
                username,
                f"{first} {last}",
                f"{username}@example.{rng.choice(('com', 'org', 'net'))}",
                bio,
                country,
                created_at.isoformat(),
                followers,
                int(verified),
            )
        )
    return rows


def _video_rows(
    rng: random.Random, count: int, users: list[UserRow]
) -> tuple[list[VideoRow], list[TagRow]]:
    """Videos in upload order (ids grow with ``published_at``) and their tags."""
    # Popular creators upload more: weight owners by their follower count.
    owners = rng.choices(users, weights=[1 + user[7] ** 0.5 for user in users], k=count)
    # Drawn in owner order, then numbered in publication order; the id is 0 until then.
    uploads: list[tuple[VideoRow, list[str]]] = []
    for owner in owners:
        joined = datetime.fromisoformat(owner[6])
        room = int((_EPOCH + timedelta(seconds=_SPAN_SECONDS) - joined).total_seconds())
        published_at = joined + timedelta(seconds=rng.randrange(1, room))
        title = _title(rng, published_at.year)
        description = None
        if rng.random() < 0.8:
            description = f"{title}. Chapters, links and gear in the comments below."
        status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
        views = 0 if status == "processing" else int(rng.lognormvariate(7.0, 2.2))
        row: VideoRow = (
            0,
            owner[0],
            title,
            description,
            round(min(max(rng.lognormvariate(5.5, 1.0), 5.0), 4 * 3600.0), 3),
            views,
            round(rng.betavariate(9.0, 1.5), 4),
            published_at.isoformat(),
            status,
            rng.choices(_RESOLUTIONS, weights=_RESOLUTION_WEIGHTS)[0],
        )
        uploads.append((row, rng.sample(_TAGS, rng.randint(1, 5))))
    # Whole-second UTC ISO-8601 strings sort chronologically.
    uploads.sort(key=lambda upload: upload[0][7])
    video_rows: list[VideoRow] = []
    tag_rows: list[TagRow] = []
    for video_id, (row, tags) in enumerate(uploads, start=1):
        video_rows.append((video_id, *row[1:]))
        tag_rows.extend((video_id, position, tag) for position, tag in enumerate(tags))
    return video_rows, tag_rows


def _metadata_rows(rng: random.Random, videos: Sequence[tuple[int, str]]) -> list[MetadataRow]:
    """The technical details of each ``(id, resolution)``: the bitrate follows all the rest."""
    codecs = list(_CODECS)
    codec_weights = [share for share, _ in _CODECS.values()]
    rows: list[MetadataRow] = []
    for video_id, resolution in videos:
        width, height, h264_kbps = _RENDITIONS[resolution]
        fps = rng.choices(_FRAME_RATES, weights=_FRAME_RATE_WEIGHTS)[0]
        codec = rng.choices(codecs, weights=codec_weights)[0]
        audio_codec = rng.choices(_AUDIO_CODECS, weights=_AUDIO_CODEC_WEIGHTS)[0]
        kbps = h264_kbps * _CODECS[codec][1] * (1.5 if fps > 30 else 1.0) * rng.uniform(0.8, 1.25)
        rows.append((video_id, width, height, fps, codec, audio_codec, round(kbps)))
    return rows


def _title(rng: random.Random, year: int) -> str:
    topic = rng.choice(_TOPICS)
    adjective = rng.choice(_ADJECTIVES)
    title = rng.choice(_TITLE_TEMPLATES).format(
        verb=rng.choice(_VERBS),
        topic=topic,
        Topic=topic.capitalize(),
        adjective=adjective,
        Adjective=adjective.capitalize(),
        n=rng.randint(2, 100),
        year=year,
    )
    return f"{title} 🔥" if rng.random() < 0.05 else title


def _ascii(name: str) -> str:
    """Drop the accents: "García" -> "Garcia"."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
