"""The example's wire models: what the API accepts and returns, in JSON and MessagePack alike.

``USER_VIEWS`` and ``VIDEO_VIEWS`` name the shapes clients can ask for with ``?view=`` (or pick
field by field with ``?fields=``); each model's docstring says what every view holds.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fastapi_serdes import ALL, Views

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


class VideoSummary(BaseModel):
    """A video as listed inside another resource: enough for a thumbnail row."""

    id: int
    title: str
    duration_seconds: float = Field(gt=0)
    view_count: int = Field(ge=0)
    published_at: datetime


class User(BaseModel):
    """A registered account.

    Views: ``minimal`` is ``id``, ``username`` and ``display_name``; ``standard`` (the default)
    is every column of the account; ``detailed`` adds ``recent_videos``.
    """

    id: int
    username: Username
    display_name: str
    email: str
    bio: str | None
    country: CountryCode | None
    created_at: datetime
    follower_count: int = Field(ge=0)
    verified: bool
    recent_videos: list[VideoSummary] = Field(
        description="The user's 5 most recently published videos, newest first."
    )


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


class VideoUpdate(BaseModel):
    """The body of ``PATCH /videos/{video_id}``: the fields to change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


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


class VideoCodec(StrEnum):
    """The video compression format of the highest rendition."""

    H264 = "h264"
    VP9 = "vp9"
    AV1 = "av1"


class AudioCodec(StrEnum):
    """The audio compression format."""

    AAC = "aac"
    OPUS = "opus"


class VideoMetadata(BaseModel):
    """Technical details of a video's highest rendition."""

    width: int = Field(gt=0, examples=[1920])
    height: int = Field(gt=0, examples=[1080])
    fps: float = Field(gt=0, examples=[29.97])
    codec: VideoCodec
    audio_codec: AudioCodec
    bitrate_kbps: int = Field(gt=0, description="Average video bitrate, in kbit/s.")


class Owner(BaseModel):
    """The account that uploaded a video, as shown next to it."""

    id: int
    username: Username
    display_name: str
    verified: bool


class Video(BaseModel):
    """An uploaded video and its public statistics.

    Views: ``minimal`` is ``id`` and ``title``; ``standard`` (the default) is every column of
    the video (its owner as ``owner_id``); ``detailed`` adds ``tags``, ``metadata`` and the
    ``owner``.
    """

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
    metadata: VideoMetadata
    owner: Owner


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


# The views of the routes that return users and videos (alone, in pages, or just created).
#: The columns of ``users`` and ``videos``: each a model field of the same name, and together
#: the ``standard`` view (what one row holds; ``detailed`` adds nested data from other tables).
USER_COLUMNS = (
    "id",
    "username",
    "display_name",
    "email",
    "bio",
    "country",
    "created_at",
    "follower_count",
    "verified",
)
VIDEO_COLUMNS = (
    "id",
    "owner_id",
    "title",
    "description",
    "duration_seconds",
    "view_count",
    "like_ratio",
    "published_at",
    "status",
    "resolution",
)

USER_VIEWS = Views(
    User,
    minimal=["id", "username", "display_name"],
    standard=list(USER_COLUMNS),
    detailed=ALL,
)

VIDEO_VIEWS = Views(
    Video,
    minimal=["id", "title"],
    standard=list(VIDEO_COLUMNS),
    detailed=ALL,
)
