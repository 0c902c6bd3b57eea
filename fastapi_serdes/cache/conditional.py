"""Entity tags and conditional requests (RFC 9110 §8.8.3 and §13).

A strong ETag is a hash of the identity body, so the same bytes get the same tag in every
replica. A content coding's variant has its own tag (``"abc"`` becomes ``"abc-br"``), which
names the same content when tags are compared.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..negotiation import split_list

#: What a 304 keeps of the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS: Final = frozenset(
    {b"etag", b"vary", b"cache-control", b"expires", b"content-location", b"date"}
)
_CODING_SUFFIXES: Final = ('-gzip"', '-br"', '-zstd"')


def etag_for(body: bytes) -> str:
    """A strong ETag for ``body``: a quoted SHA-256 prefix."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def variant_etag(etag: bytes, coding: str) -> bytes:
    """The ETag of the ``coding`` variant; weak and malformed ETags are returned unchanged."""
    if len(etag) >= 2 and etag[:1] == b'"' and etag[-1:] == b'"':
        return etag[:-1] + b"-" + coding.encode("ascii") + b'"'
    return etag


def _opaque(tag: str) -> str:
    """The comparable part of an entity tag: without ``W/`` and without a coding's suffix."""
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:]
    for suffix in _CODING_SUFFIXES:
        if tag.endswith(suffix):
            return tag[: -len(suffix)] + '"'
    return tag


def _match(header: str, etag: str, *, weak: bool) -> str | None:
    """The member of ``header`` matching ``etag`` (``etag`` itself for ``*``), or None."""
    wanted = _opaque(etag)
    for member in split_list(header):
        member = member.strip()
        if member == "*":
            return etag
        if (weak or not member.startswith(("W/", "w/"))) and _opaque(member) == wanted:
            return member
    return None


def matching_tag(if_none_match: str | None, etag: str) -> str | None:
    """The client's tag in ``If-None-Match`` matching ``etag`` by weak comparison, or None."""
    return _match(if_none_match or "", etag, weak=True)


def strong_match(if_match: str, etag: str) -> bool:
    """Whether ``If-Match`` matches ``etag`` by strong comparison (RFC 9110 §13.1.1)."""
    return _match(if_match, etag, weak=False) is not None


def not_modified(
    headers: list[tuple[bytes, bytes]], if_none_match: str | None, etag: str
) -> list[tuple[bytes, bytes]] | None:
    """The headers of the 304 answering ``If-None-Match`` for a 200 with these ``headers``, or
    None when the client does not hold it. The 304 carries the client's own tag when it named a
    coding's variant: that is the stored response it validates."""
    theirs = matching_tag(if_none_match, etag)
    if theirs is None:
        return None
    kept = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS and k != b"etag"]
    tag = theirs if theirs.startswith('"') else etag
    if tag:
        kept.append((b"etag", tag.encode("latin-1")))
    return kept
