"""Entity tags and conditional requests, in one place (RFC 9110 §8.8.3 and §13).

- A strong ETag is a hash of the identity body (:func:`etag_for`): the same bytes give the same
  tag in every process and replica, so a 304 works even when nothing was cached.
- A content coding's variant has its own tag, derived from the identity one
  (:func:`variant_etag`: ``"abc"`` becomes ``"abc-br"``), and names the same content when tags
  are compared.
- ``If-None-Match`` (weak comparison, lists, ``*``) turns a GET's 200 into a 304 carrying what
  the 200 would have among :data:`NOT_MODIFIED_HEADERS` (:func:`not_modified`), whether the 200
  was just produced by a route or read from the response cache; ``If-Match`` uses the strong
  comparison (:func:`strong_match`).
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..negotiation import split_list

#: What a 304 keeps of the 200 it stands for (RFC 9110 §15.4.5).
NOT_MODIFIED_HEADERS: Final = frozenset(
    {b"etag", b"vary", b"cache-control", b"expires", b"content-location", b"date"}
)
_CODINGS: Final = ("gzip", "br", "zstd")
_CODING_SUFFIXES: Final = tuple(f'-{coding}"' for coding in _CODINGS)


def etag_for(body: bytes) -> str:
    """A strong ETag for ``body``: a quoted SHA-256 prefix (SHA-256 is hardware-accelerated)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def variant_etag(etag: bytes, coding: str) -> bytes:
    """The ETag of the ``coding`` variant: a strong ``"abc"`` becomes ``"abc-br"``.

    A strong validator changes with the bytes, so the compressed variant needs its own. Weak and
    malformed ETags are returned unchanged (a weak one may be shared).
    """
    if len(etag) >= 2 and etag[:1] == b'"' and etag[-1:] == b'"':
        return etag[:-1] + b"-" + coding.encode("ascii") + b'"'
    return etag


def _opaque(tag: str) -> str:
    """The comparable part of an entity tag: weak comparison (``W/"x"`` and ``"x"`` match), and
    a content coding's variant matches its identity tag (``"x-br"`` and ``"x"``): they name the
    same content (:func:`variant_etag` derives one from the other)."""
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:]
    for suffix in _CODING_SUFFIXES:
        if tag.endswith(suffix):
            return tag[: -len(suffix)] + '"'
    return tag


def matching_tag(if_none_match: str | None, etag: str) -> str | None:
    """The client's entity tag in ``If-None-Match`` that matches ``etag`` (``etag`` for ``*``),
    or None: RFC 9110 §13.1.2 weak comparison, lists, ``*``, coding variants."""
    if if_none_match is None:
        return None
    wanted = _opaque(etag)
    for member in split_list(if_none_match):
        member = member.strip()
        if member == "*":
            return etag
        if _opaque(member) == wanted:
            return member
    return None


def strong_match(if_match: str, etag: str) -> bool:
    """Whether ``If-Match`` matches ``etag`` by strong comparison (RFC 9110 §13.1.1): ``*``, or
    a listed tag that is not weak and names the same content (a content coding's variant of it
    included)."""
    wanted = _opaque(etag)
    for member in split_list(if_match):
        member = member.strip()
        if member == "*" or (not member.startswith(("W/", "w/")) and _opaque(member) == wanted):
            return True
    return False


def not_modified(
    headers: list[tuple[bytes, bytes]], if_none_match: str | None, etag: str
) -> list[tuple[bytes, bytes]] | None:
    """The headers of the 304 answering ``If-None-Match`` for a 200 with these ``headers`` and
    ``etag``, or None when the client does not hold it (the 200 is the answer).

    The 304 carries the client's own tag when it named a coding's variant of ``etag`` (the
    ``"-<coding>"`` tag its cached 200 had): that is the stored response it validates.
    """
    theirs = matching_tag(if_none_match, etag)
    if theirs is None:
        return None
    kept = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS and k != b"etag"]
    tag = theirs if theirs.startswith('"') else etag
    if tag:
        kept.append((b"etag", tag.encode("latin-1")))
    return kept
