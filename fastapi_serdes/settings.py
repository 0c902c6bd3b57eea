"""Settings shared by ``SerdesMiddleware`` and ``SerdesRoute``: keyword arguments, validated once.

Operators override settings without a code change through environment variables:
``FASTAPI_SERDES_ON_NOT_ACCEPTABLE``, ``FASTAPI_SERDES_MAX_BODY_SIZE`` (e.g. ``4194304``) and
``FASTAPI_SERDES_TELEMETRY`` (``off`` switches spans and metrics off). The environment wins over
the keyword arguments, so a deployment can tune what the code chose; ``codecs`` is code, not
configuration, and has no variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from ._types import Codec
from .codecs import default_codecs
from .negotiation import choose_media_type, parse_media_type
from .telemetry import Telemetry, telemetry_setting

if TYPE_CHECKING:
    from .response_cache import ResponseCache

ENV_PREFIX: Final = "FASTAPI_SERDES_"
NOT_ACCEPTABLE_CHOICES: Final = ("problem", "default")
DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
_OFF: Final = frozenset({"0", "false", "off", "no"})
_ON: Final = frozenset({"1", "true", "on", "yes"})
# Content-Type values remembered by codec_for(): clients choose them, so the memo is bounded.
_CONTENT_TYPE_MEMO_SIZE: Final = 256


@dataclass(frozen=True, slots=True)
class SerdesSettings:
    """Validated settings; build with :meth:`from_kwargs`.

    Attributes:
        codecs: the codecs offered, in server order; the first one's first media type is the
            default answered when the client states no preference.
        on_not_acceptable: ``"problem"`` answers 406 problem+json when no offered media type is
            acceptable; ``"default"`` answers in the default format instead (RFC 9110 allows both).
        max_body_size: the largest request body read, in bytes (413 past it).
        telemetry: where spans and metrics go, or None when they are off.
    """

    codecs: tuple[Codec, ...] = field(default_factory=default_codecs)
    on_not_acceptable: Literal["problem", "default"] = "problem"
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    # Holds the per-app recorder state: compared by identity, never by value.
    telemetry: Telemetry | None = field(default_factory=Telemetry, compare=False)
    # The response cache of the middleware these settings belong to (routes and invalidate()
    # find it here, through the Negotiated value in the scope); None elsewhere.
    response_cache: ResponseCache | None = field(default=None, compare=False, repr=False)
    # Derived: media type -> codec, and the offers in server order.
    by_media_type: Mapping[str, Codec] = field(init=False, repr=False, compare=False)
    offers: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # Memo of codec_for(): Content-Type value -> codec (None: no codec reads it).
    _content_types: dict[str, Codec | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not self.codecs:
            raise ValueError("codecs must name at least one codec, got an empty sequence")
        by_media_type: dict[str, Codec] = {}
        for codec in self.codecs:
            if isinstance(codec, type) or not isinstance(codec, Codec):
                raise TypeError(
                    f"codecs: {codec!r} does not implement the Codec protocol (media_types, "
                    "encode, decode); pass an instance such as JSONCodec(), not the class"
                )
            for media_type in codec.media_types:
                by_media_type.setdefault(media_type.lower(), codec)
        object.__setattr__(self, "by_media_type", by_media_type)
        object.__setattr__(self, "offers", tuple(by_media_type))
        if self.on_not_acceptable not in NOT_ACCEPTABLE_CHOICES:
            raise ValueError(
                f"on_not_acceptable must be one of {NOT_ACCEPTABLE_CHOICES}, "
                f"got {self.on_not_acceptable!r}"
            )
        if (
            not isinstance(self.max_body_size, int)
            or isinstance(self.max_body_size, bool)
            or self.max_body_size < 1
        ):
            raise ValueError(
                f"max_body_size must be a positive int (bytes), got {self.max_body_size!r}"
            )

    def codec_for(self, content_type: str) -> Codec | None:
        """The codec that reads a request body of this ``Content-Type`` value (parameters such as
        ``charset`` ignored, case-insensitive), or None; memoised per value."""
        known = self._content_types
        if content_type in known:
            return known[content_type]
        parsed = parse_media_type(content_type)
        codec = self.by_media_type.get(parsed[0]) if parsed is not None else None
        if len(known) >= _CONTENT_TYPE_MEMO_SIZE:
            known.clear()
        known[content_type] = codec
        return codec

    @property
    def default_media_type(self) -> str:
        """The media type answered when the client has no preference."""
        return self.offers[0]

    @classmethod
    def from_kwargs(
        cls,
        *,
        codecs: Sequence[Codec] | None = None,
        on_not_acceptable: str | None = None,
        max_body_size: int | None = None,
        telemetry: Telemetry | bool | None = True,
        environ: Mapping[str, str] | None = None,
    ) -> SerdesSettings:
        """Validate keyword arguments, then apply ``FASTAPI_SERDES_*`` environment overrides.

        ``telemetry`` is a :class:`~fastapi_serdes.Telemetry`, True (the global providers) or
        False / None (off).
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        from_env: dict[str, str] = {}  # parameter -> the variable that set it
        if codecs is not None:
            kwargs["codecs"] = tuple(codecs)
        if on_not_acceptable is not None:
            kwargs["on_not_acceptable"] = on_not_acceptable
        if max_body_size is not None:
            kwargs["max_body_size"] = max_body_size
        kwargs["telemetry"] = telemetry_setting(telemetry)
        if (value := env.get(ENV_PREFIX + "TELEMETRY")) is not None:
            flag = value.strip().lower()
            if flag not in _OFF | _ON:
                raise ValueError(
                    f"environment variable {ENV_PREFIX}TELEMETRY={value!r}: use on or off"
                )
            if flag in _OFF:
                kwargs["telemetry"] = None
            elif kwargs["telemetry"] is None:
                kwargs["telemetry"] = Telemetry()
        if (value := env.get(ENV_PREFIX + "ON_NOT_ACCEPTABLE")) is not None:
            kwargs["on_not_acceptable"] = value.strip().lower()
            from_env["on_not_acceptable"] = f"{ENV_PREFIX}ON_NOT_ACCEPTABLE={value!r}"
        if (value := env.get(ENV_PREFIX + "MAX_BODY_SIZE")) is not None:
            try:
                kwargs["max_body_size"] = int(value)
            except ValueError:
                raise ValueError(
                    f"{ENV_PREFIX}MAX_BODY_SIZE must be a positive integer, got {value!r}"
                ) from None
            from_env["max_body_size"] = f"{ENV_PREFIX}MAX_BODY_SIZE={value!r}"
        try:
            return cls(**kwargs)
        except ValueError as exc:
            culprit = next((var for name, var in from_env.items() if name in str(exc)), None)
            if culprit is None:
                raise
            raise ValueError(f"environment variable {culprit}: {exc}") from None


#: The scope key under which ``SerdesMiddleware`` leaves the :class:`Negotiated` value.
SCOPE_KEY: Final = "fastapi_serdes"


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What one request negotiated, computed once and shared by the middleware and the route.

    Attributes:
        media_type: the media type to answer with, or None when the client accepts none.
        codec: the codec for ``media_type`` (None with it).
        settings: the settings in force.
    """

    media_type: str | None
    codec: Codec | None
    settings: SerdesSettings


def negotiate(accept: str | None, settings: SerdesSettings) -> Negotiated:
    """Choose the response format for an ``Accept`` value (RFC 9110 §12.5.1)."""
    media_type = choose_media_type(accept, settings.offers)
    if media_type is None:
        if settings.on_not_acceptable == "problem":
            return Negotiated(None, None, settings)
        media_type = settings.default_media_type
    return Negotiated(media_type, settings.by_media_type[media_type], settings)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """One request header from an ASGI scope, several lines joined by ``, ``; None if absent."""
    values = [v for k, v in scope["headers"] if k == name]
    if not values:
        return None
    return b", ".join(values).decode("latin-1")
