"""Compression settings: the :class:`Compression` value, its defaults, its environment variables.

``brotli`` and ``zstandard`` are imported only when their coding is offered; a coding named
without its library is an ``ImportError`` naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ..negotiation import parse_media_type
from ..settings import ENV_PREFIX, env_flag

#: Every content coding the library implements, in the default server order: zstd is the
#: fastest for its ratio, brotli next, gzip is the one every client has.
CODINGS: Final = ("zstd", "br", "gzip")
DEFAULT_LEVELS: Final[Mapping[str, int]] = {"zstd": 3, "br": 4, "gzip": 6}
_LEVEL_RANGES: Final = {"zstd": (1, 22), "br": (0, 11), "gzip": (0, 9)}
#: Media types compressed by default: ``type/subtype``, ``type/*`` and ``type/*+suffix``.
DEFAULT_MEDIA_TYPES: Final = (
    "application/json",
    "application/*+json",
    "application/msgpack",
    "application/x-msgpack",
    "application/vnd.msgpack",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/xml",
    "application/*+xml",
    "application/javascript",
    "application/yaml",
    "image/svg+xml",
    "text/*",
)
# coding -> (module, extra that installs it)
_LIBRARIES: Final = {"br": ("brotli", "brotli"), "zstd": ("zstandard", "zstd")}
_ENV: Final = ENV_PREFIX + "COMPRESSION"


def _import(coding: str) -> Any:
    """The library behind ``coding`` (None for gzip: zlib is always there)."""
    if coding not in _LIBRARIES:
        return None
    module, extra = _LIBRARIES[coding]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"compression: coding {coding!r} needs the {module!r} package; install it with "
            f"`pip install fastapi-serdes[{extra}]`, or leave {coding!r} out of codings"
        ) from exc


def coding_available(coding: str) -> bool:
    """Whether the library for ``coding`` is installed (gzip always is)."""
    try:
        _import(coding)
    except ImportError:
        return False
    return True


def installed_codings() -> tuple[str, ...]:
    """The codings of :data:`CODINGS` whose library imports, in server order."""
    return tuple(c for c in CODINGS if coding_available(c))


@dataclass(frozen=True, slots=True, init=False)
class Compression:
    """How ``SerdesMiddleware`` compresses responses and which request codings it decodes.

    Attributes:
        codings: the content codings offered, in server order (ties between codings the client
            weights equally go to the first). ``None`` (the default) offers every coding of
            ``("zstd", "br", "gzip")`` whose library is installed; naming ``"br"`` or
            ``"zstd"`` without it installed raises ``ImportError`` naming the extra.
        levels: compression level per coding, merged over ``{"zstd": 3, "br": 4, "gzip": 6}``.
        minimum_size: bodies smaller than this many bytes are sent as they are (unless the
            client refused ``identity``). Default 1024.
        media_types: what is worth compressing: ``type/subtype``, ``type/*`` or
            ``type/*+suffix`` (such as ``application/*+json``). Already-compressed media (images,
            archives, fonts, audio, video) are never compressed, whatever this says.
        thread_minimum_size: bodies and stream chunks at least this large are compressed in a
            worker thread, so one big response does not stall the event loop. Default 128 KiB.

    The attributes left out are filled from ``FASTAPI_SERDES_COMPRESSION_*`` environment
    variables by :meth:`from_environ`; those given here win over them.
    """

    codings: tuple[str, ...]
    levels: Mapping[str, int]
    minimum_size: int
    media_types: tuple[str, ...]
    thread_minimum_size: int
    # The arguments as given (levels: the codings named), which the environment cannot override.
    _given: Mapping[str, Any] = field(compare=False, repr=False)

    def __init__(
        self,
        *,
        codings: Sequence[str] | None = None,
        levels: Mapping[str, int] | None = None,
        minimum_size: int | None = None,
        media_types: Sequence[str] | None = None,
        thread_minimum_size: int | None = None,
    ) -> None:
        given = {k: v for k, v in locals().items() if k != "self" and v is not None}
        resolved = {
            "codings": installed_codings() if codings is None else _check_codings(codings),
            "levels": MappingProxyType({**DEFAULT_LEVELS, **_check_levels(levels or {})}),
            "minimum_size": _check_size("minimum_size", minimum_size, 1024),
            "media_types": _check_media_types(
                DEFAULT_MEDIA_TYPES if media_types is None else media_types
            ),
            "thread_minimum_size": _check_size(
                "thread_minimum_size", thread_minimum_size, 128 * 1024
            ),
            "_given": MappingProxyType(given),
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_environ(
        cls, value: Compression | bool | None, environ: Mapping[str, str] | None = None
    ) -> Compression | None:
        """Resolve the ``compression`` argument over ``FASTAPI_SERDES_COMPRESSION*`` defaults.

        ``True`` means the defaults, unless ``FASTAPI_SERDES_COMPRESSION`` is off; ``None`` and
        ``False`` switch compression off. As with uvicorn, the code wins: the
        ``FASTAPI_SERDES_COMPRESSION_<ATTRIBUTE>`` variables only fill in what it left out.
        """
        env = os.environ if environ is None else environ
        requested = _requested(value, env)
        if requested is None:
            return None
        given = requested._given
        defaults = _environment_defaults(env, skip=given.keys() - {"levels"})
        if not defaults:
            return requested
        merged = {**defaults, **given}
        if "levels" in defaults:
            merged["levels"] = {**defaults["levels"], **given.get("levels", {})}
        try:
            return cls(**merged)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"environment variables {sorted(defaults)}: {exc}") from None


def _requested(value: Compression | bool | None, env: Mapping[str, str]) -> Compression | None:
    if value is True:
        switch = env.get(_ENV)
        return Compression() if switch is None or env_flag("COMPRESSION", switch) else None
    if value is None or value is False or isinstance(value, Compression):
        return value or None
    raise TypeError(f"compression must be a Compression, True, False or None, got {value!r}")


def _check_codings(codings: object) -> tuple[str, ...]:
    if not isinstance(codings, tuple | list) or not all(isinstance(c, str) for c in codings):
        raise TypeError(f"compression codings must be a tuple of names, got {codings!r}")
    lowered = tuple(c.lower() for c in codings)
    for coding in lowered:
        if coding not in CODINGS:
            raise ValueError(
                f"compression codings: {coding!r} is not supported; allowed: {CODINGS}"
            )
        _import(coding)
    if len(set(lowered)) != len(lowered) or not lowered:
        raise ValueError(
            f"compression codings must name each coding once and at least one, got {codings!r}; "
            "use compression=None to switch compression off"
        )
    return lowered


def _check_levels(levels: Mapping[str, int]) -> dict[str, int]:
    for coding, level in levels.items():
        if coding not in _LEVEL_RANGES:
            raise ValueError(f"compression levels: unknown coding {coding!r}; allowed: {CODINGS}")
        low, high = _LEVEL_RANGES[coding]
        if not _is_int(level) or not low <= level <= high:
            raise ValueError(
                f"compression levels: {coding} level must be an int from {low} to {high}, "
                f"got {level!r}"
            )
    return dict(levels)


def _check_size(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if not _is_int(value) or value < 0:  # 0 is allowed: compress (in a thread) everything
        raise ValueError(f"compression {name} must be an int >= 0 (bytes), got {value!r}")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_media_types(media_types: object) -> tuple[str, ...]:
    if not isinstance(media_types, tuple | list):
        raise TypeError(f"compression media_types must be a tuple, got {media_types!r}")
    patterns = tuple(str(m).strip().lower() for m in media_types)
    for pattern in patterns:
        main, _, sub = pattern.partition("/")
        wildcard = sub == "*" or (sub.startswith("*+") and len(sub) > 2)
        if main in ("", "*") or not (wildcard or parse_media_type(pattern) is not None):
            raise ValueError(
                f"compression media_types: {pattern!r} is not 'type/subtype', 'type/*' or "
                "'type/*+suffix'"
            )
    return patterns


def _parse_codings(raw: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in raw.split(",") if c.strip())


def _parse_levels(raw: str) -> dict[str, int]:
    pairs = [pair.partition("=") for pair in raw.split(",")]
    if not all(sep for _, sep, _ in pairs):
        raise ValueError(raw)
    return {coding.strip().lower(): int(level) for coding, _, level in pairs}


# attribute -> (parser of its environment variable, the form expected)
_ENV_ATTRIBUTES: Final[Mapping[str, tuple[Callable[[str], Any], str]]] = {
    "codings": (_parse_codings, "a comma-separated list such as 'zstd,gzip'"),
    "levels": (_parse_levels, "coding=level pairs such as 'br=5,gzip=6'"),
    "minimum_size": (int, "an integer number of bytes"),
    "thread_minimum_size": (int, "an integer number of bytes"),
}


def _environment_defaults(env: Mapping[str, str], skip: Collection[str]) -> dict[str, Any]:
    """The attributes set by ``FASTAPI_SERDES_COMPRESSION_<ATTRIBUTE>`` variables but not in
    ``skip`` (the code set them), parsed."""
    found: dict[str, Any] = {}
    for name, (parse, form) in _ENV_ATTRIBUTES.items():
        variable = f"{_ENV}_{name.upper()}"
        raw = env.get(variable)
        if raw is None or name in skip:
            continue
        try:
            found[name] = parse(raw)
        except ValueError:
            raise ValueError(f"environment variable {variable}={raw!r}: expected {form}") from None
    return found
