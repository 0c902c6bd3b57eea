"""The data every contender serves: realistic user records in three sizes.

A user has what real API records have: a UUID id, aware datetimes with assorted UTC offsets
(``+05:30``, ``-03:00``), an optional datetime, a string enum, a ``Decimal`` price, an optional
string, a list and two nested models. UUIDs matter beyond realism: their hex holds digit-``e``-digit runs such as ``6e211``
that look like float exponents to a byte screen (an integer-id payload hid such a slow path).

The records are generated once from ``random.Random(0)``, so every run and every contender sees
the same bytes. A user is about 370 bytes of compact JSON, 1.35x the integer-id users this
replaced (about 275 bytes): 100 users are about 37 KB and 2,000 about 740 KB (the run prints the
exact sizes).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgpack
from pydantic import BaseModel, TypeAdapter

MEDIUM_COUNT = 100
LARGE_COUNT = 2_000

_TAGS = (
    "python", "rust", "go", "devops", "ml", "data", "web", "api", "design", "security",
    "cloud", "mobile", "music", "travel", "books", "coffee",
)  # fmt: skip
# (city, country, UTC offset in minutes): the offsets give datetimes such as +05:30 and -03:00.
_CITIES = (
    ("Lisbon", "PT", 0), ("Berlin", "DE", 60), ("Austin", "US", -360), ("Osaka", "JP", 540),
    ("Lyon", "FR", 60), ("Toronto", "CA", -300), ("Nairobi", "KE", 180), ("Recife", "BR", -180),
    ("Pune", "IN", 330), ("Perth", "AU", 480),
)  # fmt: skip
_WORDS = (
    "building", "open", "source", "tools", "for", "teams", "who", "ship", "fast", "and",
    "sleep", "well", "coffee", "first", "then", "code", "maintainer", "of", "small", "things",
)  # fmt: skip
_PRICES = {"free": Decimal("0.00"), "pro": Decimal("12.50"), "team": Decimal("49.00")}
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


class Address(BaseModel):
    city: str
    country: str
    postal_code: str


class Subscription(BaseModel):
    plan: Plan
    monthly_price: Decimal  # pydantic writes it as a JSON string ("12.50"): no float rounding
    renews_at: datetime | None


class User(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    bio: str | None
    created_at: datetime
    follower_count: int
    verified: bool
    score: float
    tags: list[str]
    address: Address
    subscription: Subscription


class Ack(BaseModel):
    """What the POST endpoints answer: enough to prove the whole body arrived and validated."""

    count: int
    follower_total: int


def _moment(rng: random.Random, start: datetime, seconds: int, offset_minutes: int) -> datetime:
    moment = start + timedelta(seconds=rng.randint(0, seconds))
    return moment.astimezone(timezone(timedelta(minutes=offset_minutes)))


def make_users(count: int, *, seed: int = 0) -> list[User]:
    """Return ``count`` deterministic users."""
    rng = random.Random(seed)
    users = []
    for number in range(1, count + 1):
        username = f"{rng.choice(_WORDS)}{number}"
        city, country, offset = rng.choice(_CITIES)
        bio = " ".join(rng.choices(_WORDS, k=rng.randint(2, 4))) if rng.random() < 0.4 else None
        plan = rng.choices(list(Plan), weights=(6, 3, 1))[0]
        users.append(
            User(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                username=username,
                email=f"{username}@mail.com",
                bio=bio,
                created_at=_moment(rng, _EPOCH, 5 * 365 * 86_400, offset),
                follower_count=rng.randint(0, 50_000),
                verified=rng.random() < 0.1,
                score=round(rng.uniform(0, 100), 2),
                tags=rng.sample(_TAGS, k=rng.randint(0, 3)),
                address=Address(
                    city=city, country=country, postal_code=f"{rng.randint(10_000, 99_999)}"
                ),
                subscription=Subscription(
                    plan=plan,
                    monthly_price=_PRICES[plan],
                    renews_at=(
                        None if plan is Plan.FREE else _moment(rng, _EPOCH, 8 * 365 * 86_400, 0)
                    ),
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
    """The JSON-compatible Python form of ``value`` (UUIDs, datetimes, decimals as strings)."""
    return TypeAdapter(Any).dump_python(value, mode="json")


def encoded_sizes(value: Any) -> tuple[int, int]:
    """Bytes of ``value`` as compact JSON and as MessagePack (from its JSON-compatible form)."""
    wire = to_wire(value)
    return len(TypeAdapter(Any).dump_json(value)), len(msgpack.packb(wire))
