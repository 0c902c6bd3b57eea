"""ASGI type aliases and the small protocols extension points implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol, runtime_checkable

from pydantic import TypeAdapter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class Codec(Protocol):
    """A wire format: how values become bytes and bytes become values.

    A codec lists the media types it answers to (the first is its canonical name), encodes a value,
    optionally through a pydantic ``TypeAdapter`` that knows the value's type, and decodes bytes
    into plain Python objects (dicts, lists, str, int, float, bool, None) that pydantic validates.
    Implementations raise :class:`fastapi_serdes.EncodeError` / :class:`fastapi_serdes.DecodeError`.
    """

    media_types: tuple[str, ...]

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` (through ``adapter`` and pydantic dump ``options`` when given)."""
        ...

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode ``data`` into plain Python objects (or ``adapter``'s type), within limits."""
        ...
