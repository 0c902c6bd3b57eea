"""The data every contender serves: realistic user records in three sizes.

The records are generated once from ``random.Random(0)``, so every run and every contender sees
the same bytes. Field lengths are tuned so a user is about 270 bytes of JSON: 100 users are about
27 KB and 2,000 users about 550 KB (the run prints the exact sizes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
from pydantic import BaseModel, TypeAdapter

MEDIUM_COUNT = 100
LARGE_COUNT = 2_000

_TAGS = (
    "python", "rust", "go", "devops", "ml", "data", "web", "api", "design", "security",
    "cloud", "mobile", "music", "travel", "books", "coffee",
)  # fmt: skip
_CITIES = (
    ("Lisbon", "PT"), ("Berlin", "DE"), ("Austin", "US"), ("Osaka", "JP"), ("Lyon", "FR"),
    ("Toronto", "CA"), ("Nairobi", "KE"), ("Recife", "BR"), ("Pune", "IN"), ("Perth", "AU"),
)  # fmt: skip
_WORDS = (
    "building", "open", "source", "tools", "for", "teams", "who", "ship", "fast", "and",
    "sleep", "well", "coffee", "first", "then", "code", "maintainer", "of", "small", "things",
)  # fmt: skip
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)


class Address(BaseModel):
    city: str
    country: str
    postal_code: str


class User(BaseModel):
    id: int
    username: str
    email: str
    display_name: str
    bio: str | None
    created_at: datetime
    follower_count: int
    verified: bool
    score: float
    tags: list[str]
    address: Address


class Ack(BaseModel):
    """What the POST endpoints answer: enough to prove the whole body arrived and validated."""

    count: int
    follower_total: int


def make_users(count: int, *, seed: int = 0) -> list[User]:
    """Return ``count`` deterministic users."""
    rng = random.Random(seed)
    users = []
    for user_id in range(1, count + 1):
        username = f"{rng.choice(_WORDS)}{user_id}"
        city, country = rng.choice(_CITIES)
        bio = " ".join(rng.choices(_WORDS, k=rng.randint(2, 4))) if rng.random() < 0.4 else None
        users.append(
            User(
                id=user_id,
                username=username,
                email=f"{username}@mail.com",
                display_name=rng.choice(_WORDS).title(),
                bio=bio,
                created_at=_EPOCH + timedelta(seconds=rng.randint(0, 5 * 365 * 86_400)),
                follower_count=rng.randint(0, 50_000),
                verified=rng.random() < 0.1,
                score=round(rng.uniform(0, 100), 2),
                tags=rng.sample(_TAGS, k=rng.randint(0, 3)),
                address=Address(
                    city=city,
                    country=country,
                    postal_code=f"{rng.randint(10_000, 99_999)}",
                ),
            )
        )
    return users


@dataclass(frozen=True)
class Payloads:
    """The three response sizes, built once and shared by every contender."""

    small: User
    medium: list[User]
    large: list[User]

    def by_size(self, size: str) -> User | list[User]:
        sizes: dict[str, User | list[User]] = {
            "small": self.small,
            "medium": self.medium,
            "large": self.large,
        }
        return sizes[size]


def build_payloads() -> Payloads:
    users = make_users(LARGE_COUNT)
    return Payloads(small=users[0], medium=users[:MEDIUM_COUNT], large=users)


def to_wire(value: Any) -> Any:
    """The JSON-compatible Python form of ``value`` (datetimes as ISO strings)."""
    return TypeAdapter(Any).dump_python(value, mode="json")


def encoded_sizes(value: Any) -> tuple[int, int]:
    """Bytes of ``value`` as compact JSON and as MessagePack (from its JSON-compatible form)."""
    wire = to_wire(value)
    return len(TypeAdapter(Any).dump_json(value)), len(msgpack.packb(wire))
