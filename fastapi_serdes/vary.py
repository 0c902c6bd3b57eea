"""Every ``Vary`` decision of the library, in one place (RFC 9110 §12.5.5).

A response names the request headers that chose it: ``Accept`` when its format was negotiated
(every JSON response behind the middleware too: a MessagePack client would have had it
transcoded), ``Prefer`` when the route has views, ``Accept-Encoding`` when it could have been
compressed, and a ``@cached`` route's declared headers and the credentials of a per-principal
entry. Tokens join the response's own ``Vary`` line, never duplicated, never next to ``*``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from ._types import Message, Scope, Send
from .negotiation import is_json_content_type

ACCEPT: Final = b"Accept"
ACCEPT_ENCODING: Final = b"Accept-Encoding"
VARY_ACCEPT: Final = (b"vary", ACCEPT)
# VaryJoiner's memo: responses choose its keys, so it is bounded.
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
    """The ``Vary`` of a ``SerdesRoute`` answer; ``request_headers`` are given for a
    per-principal cached entry (a browser shared by two users must not show one's to the other)."""
    add_vary(headers, ACCEPT)
    if views:
        add_vary(headers, b"Prefer")
    for declared_name in declared:
        add_vary(headers, declared_name.encode("latin-1"))
    for name, _ in request_headers or ():
        if name == b"authorization":
            add_vary(headers, b"Authorization")
        elif name == b"cookie":
            add_vary(headers, b"Cookie")


def mark_json(start: Message, scope: object = None) -> None:
    """Add ``Vary: Accept`` to a JSON response start behind the middleware without compression
    (``scope``, unused, makes it a stand-in for the compression layer's ``mark_vary``)."""
    headers = start.get("headers", ())
    for name, value in headers:
        if name == b"content-type":
            if value == b"application/json" or is_json_content_type(value):
                start["headers"] = add_vary(list(headers), ACCEPT)
            break


def vary_marking(send: Send, scope: Scope, mark: Callable[[Message, Scope], object]) -> Send:
    """A ``send`` that marks the response start with ``mark`` (:func:`mark_json` or the
    compression layer's rules)."""

    # A plain function returning the downstream awaitable: no coroutine of its own per message.
    def send_vary(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            mark(message, scope)
        return send(message)

    return send_vary


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
