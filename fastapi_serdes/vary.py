"""Every ``Vary`` decision of the library, in one place (RFC 9110 §12.5.5).

A response names the request headers that chose it among its representations:

- ``Accept`` when its format was negotiated: every answer of ``SerdesRoute``, every JSON
  response behind ``SerdesMiddleware`` (a plain route's too: a MessagePack client would have
  had it transcoded), a transcoded response, a 406;
- ``Prefer`` when the route has views (``Prefer: return=minimal`` picks one);
- ``Accept-Encoding`` when the response could have been compressed (the compression layer
  tells: compressible type, not already encoded, no ``no-transform``, the route allowed it),
  compressed or not, 304s included;
- the request headers a ``@cached`` route declares (``vary=``), and ``Authorization`` /
  ``Cookie`` when such a route keys its entries per principal and the request carried them.

Tokens are added to the response's own ``Vary`` line, never duplicated, never next to ``*``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, Final

from ._types import Message, Send
from .negotiation import is_json_content_type

ACCEPT: Final = b"Accept"
ACCEPT_ENCODING: Final = b"Accept-Encoding"
#: The Vary header of a response whose format was negotiated.
VARY_ACCEPT: Final = (b"vary", ACCEPT)
# Joined Vary values remembered by VaryJoiner: responses choose them, so the memo is bounded.
_MEMO_SIZE: Final = 256


def add_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> list[tuple[bytes, bytes]]:
    """Add ``token`` to the ``Vary`` header (creating it), unless listed already or ``*``."""
    lowered = token.lower()
    for i, (name, value) in enumerate(headers):
        if name == b"vary":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if lowered not in tokens and b"*" not in tokens:
                headers[i] = (name, value + b", " + token)
            return headers
    headers.append((b"vary", token))
    return headers


def route_vary(
    headers: list[tuple[bytes, bytes]],
    *,
    views: bool,
    declared: Iterable[str] = (),
    request_headers: Iterable[tuple[bytes, Any]] | None = None,
) -> None:
    """The ``Vary`` of a ``SerdesRoute`` answer: ``Accept``, ``Prefer`` with views, and for a
    cached answer the declared headers and, when ``request_headers`` are given (a per-principal
    entry), the credentials the request carried."""
    add_vary(headers, ACCEPT)
    if views:
        add_vary(headers, b"Prefer")
    for declared_name in declared:
        add_vary(headers, declared_name.encode("latin-1"))
    # Per-principal answers: a browser shared by two users must not show one's to the other.
    for name, _ in request_headers or ():
        if name == b"authorization":
            add_vary(headers, b"Authorization")
        elif name == b"cookie":
            add_vary(headers, b"Cookie")


def mark_json(start: Message, scope: object = None) -> None:
    """Add ``Vary: Accept`` to a JSON response start behind the middleware (its format was
    negotiated: a MessagePack client would have had it transcoded). ``scope`` is unused: the
    signature is the compression layer's ``mark_vary``, which the middleware uses instead when
    compression is on."""
    headers = start.get("headers", ())
    for name, value in headers:
        if name == b"content-type":
            if value == b"application/json" or is_json_content_type(value):
                start["headers"] = add_vary(list(headers), ACCEPT)
            break


def vary_json(send: Send) -> Send:
    """A ``send`` that applies :func:`mark_json` to the response start."""

    # A plain function returning the downstream awaitable: no coroutine of its own per message.
    def send_with_vary(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            mark_json(message)
        return send(message)

    return send_with_vary


class VaryJoiner:
    """The compression layer's ``Vary`` values: an existing value with ``Accept`` and/or
    ``Accept-Encoding`` added, memoised per value (the same object back when nothing changes)."""

    __slots__ = ("_joined",)

    def __init__(self) -> None:
        self._joined: dict[tuple[bytes | None, bool, bool], bytes] = {}

    def __call__(self, vary: bytes | None, accept: bool, encoding: bool) -> bytes:
        key = (vary, accept, encoding)
        joined = self._joined.get(key)
        if joined is None:
            headers = [(b"vary", vary)] if vary is not None else []
            if accept:
                add_vary(headers, ACCEPT)
            if encoding:
                add_vary(headers, ACCEPT_ENCODING)
            joined = headers[0][1]
            if joined == vary:
                joined = vary
            if len(self._joined) >= _MEMO_SIZE:
                self._joined.clear()
            self._joined[key] = joined
        return joined

    def mark(self, start: Message, vary: bytes | None, accept: bool, encoding: bool) -> None:
        """Set the start's ``Vary`` line to ``vary`` (its current value) with the tokens added."""
        headers = start["headers"]
        if not isinstance(headers, list):
            headers = start["headers"] = list(headers)
        joined = self(vary, accept, encoding)
        if vary is None:
            headers.append((b"vary", joined))
        elif joined is not vary:
            headers[headers.index((b"vary", vary))] = (b"vary", joined)
