"""Settings shared by ``SerdesMiddleware`` and ``SerdesRoute``: keyword arguments, validated once.

``FASTAPI_SERDES_*`` environment variables (``STRICT``, ``MAX_BODY_SIZE``, ``TELEMETRY``) fill in
what the code leaves unset: an explicit keyword argument wins, as with uvicorn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ._types import Codec, check_positive
from .codecs import default_codecs
from .negotiation import choose_media_type, parse_media_type
from .telemetry import Telemetry, telemetry_setting

ENV_PREFIX: Final = "FASTAPI_SERDES_"
DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
_OFF: Final = frozenset({"0", "false", "off", "no"})
_ON: Final = frozenset({"1", "true", "on", "yes"})


@dataclass(frozen=True, slots=True)
class SerdesSettings:
    """Validated settings; build with :meth:`from_kwargs`.

    Attributes:
        codecs: the codecs offered, in server order; the first one's first media type is the
            default answered when the client states no preference.
        strict: False (the default) answers a client whose ``Accept`` matches no offered media
            type in the default format, as stock FastAPI does, and leaves request bodies of a
            ``Content-Type`` no codec reads to FastAPI; True answers 406 and 415 instead.
        problem_details: whether errors are RFC 9457 documents: ``SerdesMiddleware`` with it
            answers every error so; a ``SerdesRoute`` with it lists the problem responses in
            OpenAPI (FastAPI's error responses stay documented otherwise).
        max_body_size: the largest request body the library decodes itself (MessagePack, or a
            compressed body), in bytes (413 past it). JSON bodies are FastAPI's to read.
        telemetry: where spans and metrics go, or None when they are off.
        answer_head: False (the default) leaves ``HEAD`` as stock FastAPI does (405 on a route
            that declares only GET); True makes every GET ``SerdesRoute`` answer ``HEAD`` with
            GET's headers and no body (RFC 9110 §9.3.2), and the response cache answer it from
            a stored GET.
    """

    codecs: tuple[Codec, ...] = field(default_factory=default_codecs)
    strict: bool = False
    problem_details: bool = False
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    answer_head: bool = False
    # Holds the per-app recorder state: compared by identity, never by value.
    telemetry: Telemetry | None = field(default_factory=Telemetry, compare=False)
    # Derived: media type -> codec, and the offers in server order.
    by_media_type: Mapping[str, Codec] = field(init=False, repr=False, compare=False)
    offers: tuple[str, ...] = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "by_media_type", MappingProxyType(by_media_type))
        object.__setattr__(self, "offers", tuple(by_media_type))
        for flag in ("strict", "problem_details", "answer_head"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        check_positive("max_body_size", self.max_body_size, "int (bytes)")

    def codec_for(self, content_type: str) -> Codec | None:
        """The codec that reads a request body of this ``Content-Type`` value (parameters such as
        ``charset`` ignored, case-insensitive), or None."""
        parsed = parse_media_type(content_type)
        return self.by_media_type.get(parsed[0]) if parsed is not None else None

    @property
    def default_media_type(self) -> str:
        """The media type answered when the client has no preference."""
        return self.offers[0]

    @classmethod
    def from_kwargs(
        cls,
        *,
        codecs: Sequence[Codec] | None = None,
        strict: bool | None = None,
        problem_details: bool = False,
        max_body_size: int | None = None,
        telemetry: Telemetry | bool | None = True,
        answer_head: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> SerdesSettings:
        """Validate keyword arguments; ``FASTAPI_SERDES_*`` variables fill in those left None.

        ``telemetry`` is a :class:`~fastapi_serdes.Telemetry`, True (the global providers) or
        False / None (off).
        """
        env = os.environ if environ is None else environ
        if strict is None:
            strict = env_flag("STRICT", env.get(ENV_PREFIX + "STRICT", "off"))
        if max_body_size is None:
            max_body_size = _env_size(env.get(ENV_PREFIX + "MAX_BODY_SIZE"))
        return cls(
            codecs=default_codecs() if codecs is None else tuple(codecs),
            strict=strict,
            problem_details=problem_details,
            max_body_size=max_body_size,
            telemetry=_telemetry_from_env(telemetry, env.get(ENV_PREFIX + "TELEMETRY")),
            answer_head=answer_head,
        )


def _env_size(value: str | None) -> int:
    """``FASTAPI_SERDES_MAX_BODY_SIZE`` (``value``), or the default when it is unset."""
    if value is None:
        return DEFAULT_MAX_BODY_SIZE
    name = ENV_PREFIX + "MAX_BODY_SIZE"
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    try:
        check_positive("max_body_size", size, "int (bytes)")
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r}: {exc}") from None
    return size


def _telemetry_from_env(telemetry: Telemetry | bool | None, value: str | None) -> Telemetry | None:
    """The ``telemetry=`` keyword, unless ``FASTAPI_SERDES_TELEMETRY`` (``value``) is set: off
    switches telemetry off whatever the code chose (an operator's kill switch)."""
    setting = telemetry_setting(telemetry)
    if value is None:
        return setting
    if not env_flag("TELEMETRY", value):
        return None
    return setting if setting is not None else Telemetry()


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


def env_flag(name: str, value: str) -> bool:
    """An on / off environment variable ``FASTAPI_SERDES_<name>``; anything else is an error."""
    flag = value.strip().lower()
    if flag not in _OFF | _ON:
        raise ValueError(f"environment variable {ENV_PREFIX}{name}={value!r}: use on or off")
    return flag in _ON


def negotiate(accept: str | None, settings: SerdesSettings) -> Negotiated:
    """Choose the response format for an ``Accept`` value (RFC 9110 §12.5.1)."""
    media_type = choose_media_type(accept, settings.offers)
    if media_type is None:
        if settings.strict:
            return Negotiated(None, None, settings)
        media_type = settings.default_media_type
    return Negotiated(media_type, settings.by_media_type[media_type], settings)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """One request header from an ASGI scope, several lines joined by ``, ``; None if absent."""
    found: bytes | None = None
    for key, value in scope["headers"]:
        if key == name:
            found = value if found is None else found + b", " + value
    return None if found is None else found.decode("latin-1")
