"""Pure parsing of ``Accept``, ``Accept-Encoding`` and ``Content-Type``, and choosing an offer.

Everything here is a function of strings (RFC 9110 §12.5 and §8.3): no I/O, no state, never
raises on client input. Malformed list members are ignored, and headers past
:data:`MAX_HEADER_LENGTH` characters or :data:`MAX_ENTRIES` members are cut there, so an absurd
header costs no more than a normal one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ._types import Scope

MAX_HEADER_LENGTH: Final = 4096
MAX_ENTRIES: Final = 64

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One member of an ``Accept`` header."""

    type: str
    subtype: str
    params: tuple[tuple[str, str], ...]
    q: float

    def specificity(self) -> int:
        """3 for ``type/subtype`` (plus one per parameter), 2 for ``type/*``, 1 for ``*/*``."""
        if self.type == "*":
            return 1
        if self.subtype == "*":
            return 2
        return 3 + len(self.params)

    def matches(self, media_type: str, params: dict[str, str]) -> bool:
        """Whether this range covers the media type ``type/subtype`` offered with ``params``."""
        if self.type == "*":
            return True
        main, _, sub = media_type.partition("/")
        if self.type != main:
            return False
        if self.subtype == "*":
            return True
        if self.subtype != sub:
            return False
        for name, value in self.params:
            # Every format we produce is UTF-8, so charset=utf-8 is always satisfied.
            if name == "charset" and value.lower() in ("utf-8", "utf8") and name not in params:
                continue
            if params.get(name) != value:
                return False
        return True


def _split_quoted(value: str, separator: str, limit: int) -> list[str]:
    """Split on ``separator`` outside quoted strings; strip members, drop empty ones."""
    if '"' in value:
        return _scan_quoted(value, separator, limit)
    # Nothing quoted, so every separator splits: str.split, many times faster than a scan.
    return [m for m in map(str.strip, value.split(separator)) if m][:limit]


def _scan_quoted(value: str, separator: str, limit: int) -> list[str]:
    """:func:`_split_quoted` of a value with quoted strings, read character by character."""
    members: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == '"':
            quoted = not quoted
        elif quoted:
            escaped = char == "\\"
        elif char == separator:
            member = value[start:i].strip()
            if member:
                members.append(member)
                if len(members) >= limit:
                    return members
            start = i + 1
    member = value[start:].strip()
    if member:
        members.append(member)
    return members[:limit]


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings; empty members dropped.

    A member cut by :data:`MAX_HEADER_LENGTH` is dropped, not read from its prefix (``q=0.5``
    cut after ``q=0`` must not become a refusal).
    """
    if len(value) > MAX_HEADER_LENGTH:
        complete = value[MAX_HEADER_LENGTH] == ","  # the cut falls right after a member
        value = value[:MAX_HEADER_LENGTH]
        if not complete:
            cut = value.rfind(",")
            value = value[:cut] if cut >= 0 else ""
    return _split_quoted(value, ",", MAX_ENTRIES)


def _split_params(member: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``head;a=1;b="x;y"`` -> (``head``, [(a, 1), (b, x;y)]); None if a parameter is malformed.
    Parameter names are lowercased, and so is the value of ``charset``."""
    parts = _split_quoted(member, ";", MAX_ENTRIES + 1)
    if not parts:
        return None
    params: list[tuple[str, str]] = []
    for raw in parts[1:]:
        name, sep, val = raw.partition("=")
        name = name.strip().lower()
        val = val.strip()
        if not sep or not _TOKEN.match(name):
            return None
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif not _TOKEN.match(val):
            return None
        params.append((name, val.lower() if name == "charset" else val))
    return parts[0], params


def _weighted(value: str) -> Iterator[tuple[str, float, list[tuple[str, str]]]]:
    """The well-formed members of a weighted list: (head, q, the parameters before ``q``;
    what follows it are accept-extensions)."""
    for member in split_list(value):
        split = _split_params(member)
        if split is None:
            continue
        head, params = split
        q: float | None = 1.0
        for i, (name, val) in enumerate(params):
            if name == "q":
                q, params = parse_qvalue(val), params[:i]
                break
        if q is not None:
            yield head, q, params


def parse_qvalue(value: str) -> float | None:
    """An RFC 9110 qvalue as a float; None when malformed (``2``, ``-1``, ``NaN``, ``0.1234``)."""
    return float(value) if _QVALUE.match(value) else None


def parse_accept(value: str) -> list[MediaRange]:
    """Parse an ``Accept`` header value into media ranges; malformed members are skipped."""
    ranges: list[MediaRange] = []
    for head, q, params in _weighted(value):
        main, slash, sub = head.lower().partition("/")
        if slash and _TOKEN.match(main) and _TOKEN.match(sub) and not main == "*" != sub:
            ranges.append(MediaRange(main, sub, tuple(params), q))
    return ranges


def media_type_quality(ranges: Sequence[MediaRange], media_type: str) -> float:
    """The weight the client gives ``media_type``: the q of the most specific matching range
    (so ``application/json;q=0, */*`` refuses JSON); 0.0 when no range matches."""
    mtype, params = parse_media_type(media_type) or (media_type, {})
    best_q = 0.0
    best_spec = 0
    for r in ranges:
        spec = r.specificity()
        if spec > best_spec and r.matches(mtype, params):
            best_q = r.q
            best_spec = spec
    return best_q


def choose_media_type(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers, or None when it accepts none of them.

    ``offers`` are in server order: the first is answered when the client states no preference
    (no header, an empty one, or one whose members are all malformed); ties go to the earlier.
    """
    if not offers:
        return None
    ranges = parse_accept(accept) if accept is not None else []
    if not ranges:
        return offers[0]
    best: str | None = None
    best_q = 0.0
    for offer in offers:
        q = media_type_quality(ranges, offer)
        if q > best_q:
            best, best_q = offer, q
    return best


def parse_media_type(value: str) -> tuple[str, dict[str, str]] | None:
    """A ``Content-Type`` value as (``type/subtype`` lowercased, parameters); None when it is
    not a valid media type. Parameter names are lowercased, and so is the ``charset`` value."""
    split = _split_params(value[:MAX_HEADER_LENGTH])
    if split is None:
        return None
    head, params = split
    main, slash, sub = head.lower().partition("/")
    if not slash or not _TOKEN.match(main) or not _TOKEN.match(sub) or "*" in (main, sub):
        return None
    return f"{main}/{sub}", dict(params)


def parse_accept_encoding(value: str) -> dict[str, float]:
    """Parse ``Accept-Encoding`` into {coding: q}: codings lowercased, ``x-gzip`` read as
    ``gzip`` (RFC 9110 §8.4.1.3), malformed members skipped, the first of a repeated coding
    kept."""
    weights: dict[str, float] = {}
    for head, q, _ in _weighted(value):
        coding = head.lower()
        if coding == "x-gzip":
            coding = "gzip"
        if _TOKEN.match(coding):
            weights.setdefault(coding, q)
    return weights


def choose_encoding(accept_encoding: str | None, offers: Iterable[str]) -> str | None:
    """The content coding to answer with: one of ``offers``, ``"identity"``, or None (406).

    RFC 9110 §12.5.3: no header means no preference (we answer identity); an empty header
    means identity only; ``*`` covers codings not listed; ``q=0`` refuses; identity stays
    acceptable unless ``identity;q=0``, or ``*;q=0`` without an identity member. The highest
    non-zero q wins; ties go to the order of ``offers`` (identity last).
    """
    if accept_encoding is None:
        return "identity"
    weights = parse_accept_encoding(accept_encoding)
    unlisted = weights.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for coding in offers:
        q = weights.get(coding, unlisted)
        if q > best_q:
            best, best_q = coding, q
    # Unlisted identity stays acceptable but only as the fallback: a listed coding wins over it.
    identity_q = weights.get("identity", weights.get("*", 0.0005))
    return "identity" if identity_q > best_q else best


def is_json_content_type(content_type: bytes) -> bool:
    """Whether a Content-Type value is ``application/json`` (any parameters, any case)."""
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def is_json_family(content_type: bytes) -> bool:
    """Whether a Content-Type value is ``application/json`` or an ``application/*+json`` type
    (RFC 6839), any parameters, any case."""
    main = content_type.split(b";", 1)[0].strip().lower()
    return main == b"application/json" or (
        main.startswith(b"application/") and main.endswith(b"+json")
    )


@dataclass(slots=True)
class RequestHeaders:
    """The request headers the middleware decides on, read in one pass."""

    accept: bytes | None = None
    several_accept: bool = False
    content_type: bytes | None = None
    accept_encoding: bytes | None = None
    content_encoding: bytes | None = None


def read_headers(scope: Scope) -> RequestHeaders:
    """Several lines of a list header are one list (RFC 9110 §5.3); ``Content-Type`` is its
    first line, as Starlette's ``request.headers`` reads it."""
    found = RequestHeaders()
    for name, value in scope["headers"]:
        if name == b"accept":
            found.several_accept = found.accept is not None
            found.accept = _joined(found.accept, value)
        elif name == b"content-type" and found.content_type is None:
            found.content_type = value
        elif name == b"accept-encoding":
            found.accept_encoding = _joined(found.accept_encoding, value)
        elif name == b"content-encoding":
            found.content_encoding = _joined(found.content_encoding, value)
    return found


def _joined(known: bytes | None, value: bytes) -> bytes:
    return value if known is None else known + b", " + value
