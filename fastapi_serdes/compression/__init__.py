"""Response compression settings, the content-type policy and the gzip / br / zstd encoders.

:class:`Compression` is the one value ``SerdesMiddleware(compression=...)`` takes: which content
codings to offer (server order breaks ties between codings the client weights equally), the level
of each, the size under which a body is sent as it is, and which media types are worth
compressing. ``brotli`` and ``zstandard`` are imported only when their coding is offered; when a
coding is named but its library is missing, the error names the extra to install.

The encoders are in :mod:`fastapi_serdes.compression.encoders`, the per-request part
(choosing a coding, wrapping ``send``) in :mod:`fastapi_serdes.compression.responses`; request
bodies are decoded by :mod:`fastapi_serdes.compression.request_bodies`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..negotiation import parse_media_type, split_list

#: Every content coding the library implements, in the default server order: zstd is the
#: fastest for its ratio, brotli next, gzip is the one every client has.
CODINGS: Final = ("zstd", "br", "gzip")
#: Levels used when ``Compression.levels`` does not name a coding.
DEFAULT_LEVELS: Final[Mapping[str, int]] = {"zstd": 3, "br": 4, "gzip": 6}
LEVEL_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "zstd": (1, 22),
    "br": (0, 11),
    "gzip": (0, 9),
}
DEFAULT_MINIMUM_SIZE: Final = 1024
#: Bodies (or stream chunks) at least this large are compressed in a worker thread.
DEFAULT_THREAD_MINIMUM_SIZE: Final = 128 * 1024
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
#: Never compressed, whatever ``media_types`` says: their bytes are compressed already.
ALREADY_COMPRESSED: Final = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/zstd",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
        "application/x-brotli",
        "font/woff",
        "font/woff2",
        "image/avif",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/webp",
    }
)
_ALREADY_COMPRESSED_TYPES: Final = ("audio", "video")
# coding -> (module, extra that installs it)
_LIBRARIES: Final = {"br": ("brotli", "brotli"), "zstd": ("zstandard", "zstd")}
_ENV: Final = "FASTAPI_SERDES_COMPRESSION"


def _import(coding: str) -> Any:
    """The library behind ``coding`` (None for gzip: zlib is always there)."""
    library = _LIBRARIES.get(coding)
    if library is None:
        return None
    module, extra = library
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"compression: coding {coding!r} needs the {module!r} package; install it with "
            f"`pip install fastapi-serdes[{extra}]`, or leave {coding!r} out of codings"
        ) from exc


def installed_codings() -> tuple[str, ...]:
    """The codings of :data:`CODINGS` whose library imports, in server order."""
    found = []
    for coding in CODINGS:
        try:
            _import(coding)
        except ImportError:
            continue
        found.append(coding)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Compression:
    """How ``SerdesMiddleware`` compresses responses and which request codings it decodes.

    Attributes:
        codings: the content codings offered, in server order (ties between codings the client
            weights equally go to the first). ``None`` (the default) offers every coding of
            ``("zstd", "br", "gzip")`` whose library is installed; naming ``"br"`` or
            ``"zstd"`` without it installed raises ``ImportError`` naming the extra.
        levels: compression level per coding, merged over ``{"zstd": 3, "br": 4, "gzip": 6}``.
        minimum_size: bodies smaller than this many bytes are sent as they are (unless the
            client refused ``identity``).
        media_types: what is worth compressing: ``type/subtype``, ``type/*`` or
            ``type/*+suffix`` (such as ``application/*+json``). Already-compressed media (images,
            archives, fonts, audio, video) are never compressed, whatever this says.
        thread_minimum_size: bodies and stream chunks at least this large are compressed in a
            worker thread, so one big response does not stall the event loop.

    Every attribute can be overridden from the environment; see :meth:`from_environ`.
    """

    codings: tuple[str, ...] | None = None
    levels: Mapping[str, int] = field(default_factory=dict)
    minimum_size: int = DEFAULT_MINIMUM_SIZE
    media_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES
    thread_minimum_size: int = DEFAULT_THREAD_MINIMUM_SIZE

    def __post_init__(self) -> None:
        codings = self.codings
        if codings is None:
            codings = installed_codings()
        elif not isinstance(codings, tuple | list) or not all(isinstance(c, str) for c in codings):
            raise TypeError(f"compression codings must be a tuple of names, got {codings!r}")
        else:
            codings = tuple(c.lower() for c in codings)
            for coding in codings:
                if coding not in CODINGS:
                    raise ValueError(
                        f"compression codings: {coding!r} is not supported; allowed: {CODINGS}"
                    )
                _import(coding)
            if len(set(codings)) != len(codings) or not codings:
                raise ValueError(
                    f"compression codings must name each coding once and at least one, "
                    f"got {self.codings!r}; use compression=None to switch compression off"
                )
        object.__setattr__(self, "codings", codings)
        levels = dict(DEFAULT_LEVELS)
        for coding, level in dict(self.levels).items():
            if coding not in LEVEL_RANGES:
                raise ValueError(
                    f"compression levels: unknown coding {coding!r}; allowed: {tuple(CODINGS)}"
                )
            low, high = LEVEL_RANGES[coding]
            if not isinstance(level, int) or isinstance(level, bool) or not low <= level <= high:
                raise ValueError(
                    f"compression levels: {coding} level must be an int from {low} to {high}, "
                    f"got {level!r}"
                )
            levels[coding] = level
        object.__setattr__(self, "levels", levels)
        for name in ("minimum_size", "thread_minimum_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"compression {name} must be an int >= 0 (bytes), got {value!r}")
        if not isinstance(self.media_types, tuple | list):
            raise TypeError(f"compression media_types must be a tuple, got {self.media_types!r}")
        patterns = tuple(m.strip().lower() for m in self.media_types)
        for pattern in patterns:
            if not _valid_pattern(pattern):
                raise ValueError(
                    f"compression media_types: {pattern!r} is not 'type/subtype', 'type/*' or "
                    "'type/*+suffix'"
                )
        object.__setattr__(self, "media_types", patterns)

    def level(self, coding: str) -> int:
        """The level used for ``coding``."""
        return self.levels[coding]

    @classmethod
    def from_environ(
        cls, value: Compression | bool | None, environ: Mapping[str, str] | None = None
    ) -> Compression | None:
        """Resolve the ``compression`` argument, then apply environment overrides.

        ``True`` means ``Compression()``; ``None`` and ``False`` switch compression off.
        ``FASTAPI_SERDES_COMPRESSION`` (``on`` / ``off``) switches it, and
        ``FASTAPI_SERDES_COMPRESSION_CODINGS`` (``zstd,gzip``), ``..._LEVELS`` (``br=5,gzip=6``),
        ``..._MINIMUM_SIZE`` and ``..._THREAD_MINIMUM_SIZE`` override single attributes. The
        environment wins over the code.
        """
        env = os.environ if environ is None else environ
        if value is True:
            value = cls()
        elif value is False:
            value = None
        elif value is not None and not isinstance(value, Compression):
            raise TypeError(
                f"compression must be a Compression, True, False or None, got {value!r}"
            )
        switch = env.get(_ENV)
        if switch is not None:
            flag = switch.strip().lower()
            if flag in ("0", "off", "false", "no"):
                return None
            if flag not in ("1", "on", "true", "yes"):
                raise ValueError(f"environment variable {_ENV}={switch!r}: use 'on' or 'off'")
            value = value or cls()
        if value is None:
            return None
        overrides: dict[str, Any] = {}
        for name in ("codings", "levels", "minimum_size", "thread_minimum_size"):
            var = f"{_ENV}_{name.upper()}"
            raw = env.get(var)
            if raw is None:
                continue
            try:
                overrides[name] = _parse_env(name, raw)
            except ValueError:
                raise ValueError(
                    f"environment variable {var}={raw!r}: {_ENV_FORMS[name]}"
                ) from None
        if not overrides:
            return value
        kwargs = {
            "codings": value.codings,
            "levels": value.levels,
            "minimum_size": value.minimum_size,
            "media_types": value.media_types,
            "thread_minimum_size": value.thread_minimum_size,
            **overrides,
        }
        if "levels" in overrides:
            kwargs["levels"] = {**value.levels, **overrides["levels"]}
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"environment variables {sorted(overrides)}: {exc}") from None


_ENV_FORMS: Final = {
    "codings": "expected a comma-separated list such as 'zstd,gzip'",
    "levels": "expected coding=level pairs such as 'br=5,gzip=6'",
    "minimum_size": "expected an integer number of bytes",
    "thread_minimum_size": "expected an integer number of bytes",
}


def _parse_env(name: str, raw: str) -> Any:
    if name == "codings":
        return tuple(c.strip() for c in raw.split(",") if c.strip())
    if name == "levels":
        levels = {}
        for pair in raw.split(","):
            coding, sep, level = pair.partition("=")
            if not sep:
                raise ValueError(pair)
            levels[coding.strip().lower()] = int(level)
        return levels
    return int(raw)


def _valid_pattern(pattern: str) -> bool:
    main, slash, sub = pattern.partition("/")
    if not slash or not main or main == "*" or not sub:
        return False
    if sub == "*" or (sub.startswith("*+") and len(sub) > 2):
        return True
    return parse_media_type(pattern) is not None


def is_compressible(content_type: str | None, media_types: Sequence[str]) -> bool:
    """Whether a response of ``content_type`` is worth compressing under ``media_types``.

    ``media_types`` holds lowercased ``type/subtype``, ``type/*`` or ``type/*+suffix`` patterns.
    A missing or malformed ``Content-Type`` is not compressed, nor is already-compressed media.
    """
    if not content_type:
        return False
    parsed = parse_media_type(content_type)
    if parsed is None:
        return False
    media_type = parsed[0]
    main, _, sub = media_type.partition("/")
    if media_type in ALREADY_COMPRESSED or main in _ALREADY_COMPRESSED_TYPES:
        return False
    for pattern in media_types:
        if pattern == media_type:
            return True
        p_main, _, p_sub = pattern.partition("/")
        if p_main != main:
            continue
        if p_sub == "*" or (p_sub.startswith("*+") and sub.endswith(p_sub[1:])):
            return True
    return False


def has_no_transform(cache_control: str) -> bool:
    """Whether a ``Cache-Control`` value carries the ``no-transform`` directive (RFC 9111)."""
    for directive in split_list(cache_control):
        if directive.partition("=")[0].strip().lower() == "no-transform":
            return True
    return False


def variant_etag(etag: bytes, coding: str) -> bytes:
    """The ETag of the ``coding`` variant: a strong ``"abc"`` becomes ``"abc-br"``.

    RFC 9110 §8.8.3: a strong validator changes with the bytes, so the compressed variant needs
    its own. Weak and malformed ETags are returned unchanged (a weak one may be shared).
    """
    if len(etag) >= 2 and etag[:1] == b'"' and etag[-1:] == b'"':
        return etag[:-1] + b"-" + coding.encode("ascii") + b'"'
    return etag
