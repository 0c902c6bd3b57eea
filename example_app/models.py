"""The example's wire models: what the API accepts and returns, in JSON and MessagePack alike."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Username = Annotated[
    str,
    Field(
        min_length=3,
        max_length=30,
        pattern=r"^[a-z0-9_]+$",
        description="Lower-case letters, digits and underscores; unique across the platform.",
        examples=["grumpy_otter"],
    ),
]
CountryCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.", examples=["NL"]),
]


class User(BaseModel):
    """A registered account."""

    id: int
    username: Username
    display_name: str
    email: str
    bio: str | None
    country: CountryCode | None
    created_at: datetime
    follower_count: int = Field(ge=0)
    verified: bool


class UserCreate(BaseModel):
    """The body of ``POST /users``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: Username
    display_name: str = Field(min_length=1, max_length=80, examples=["Grumpy Otter"])
    # A deliberately loose check: the only real validation of an address is sending it mail.
    email: str = Field(
        max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["otter@example.com"]
    )
    bio: str | None = Field(default=None, max_length=500)
    country: CountryCode | None = None


class VideoStatus(StrEnum):
    """Where a video is in its life cycle."""

    PROCESSING = "processing"
    PUBLISHED = "published"
    UNLISTED = "unlisted"


class Resolution(StrEnum):
    """The highest rendition available for a video."""

    SD_360 = "360p"
    SD_480 = "480p"
    HD_720 = "720p"
    HD_1080 = "1080p"
    UHD_2160 = "2160p"


class Video(BaseModel):
    """An uploaded video and its public statistics."""

    id: int
    owner_id: int
    title: str
    description: str | None
    duration_seconds: float = Field(gt=0)
    view_count: int = Field(ge=0)
    like_ratio: float = Field(ge=0, le=1, description="Likes / (likes + dislikes).")
    published_at: datetime
    status: VideoStatus
    resolution: Resolution
    tags: list[str]


class UserPage(BaseModel):
    """One page of users; pass ``next_cursor`` back as ``?cursor=`` for the next one."""

    items: list[User]
    next_cursor: str | None = Field(description="null on the last page.")


class VideoPage(BaseModel):
    """One page of videos; pass ``next_cursor`` back as ``?cursor=`` for the next one."""

    items: list[Video]
    next_cursor: str | None = Field(description="null on the last page.")


class Health(BaseModel):
    """The answer of the health probes."""

    status: Literal["ok"] = "ok"
