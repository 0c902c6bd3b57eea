"""ASGI type aliases and the small protocols extension points implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import Any, Protocol, runtime_checkable

from pydantic import TypeAdapter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def no_receive() -> Message:  # pragma: no cover - never called
    """The ``receive`` of a response the library sends itself (it reads no request)."""
    return {"type": "http.disconnect"}


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


@runtime_checkable
class Store(Protocol):
    """Where cached bytes live: in process (``MemoryStore``) or shared (``RedisStore``).

    Keys and tags are opaque strings; values are bytes the cache serialised itself (never pickle).
    A store that fails must fail open: ``get`` answers None, writes do nothing and ``acquire``
    answers True, so the request is served uncached instead of failing.

    A store may also keep an invalidation clock (``MemoryStore`` and ``RedisStore`` do): an
    ``async clock() -> int | None`` method, and a ``since`` keyword on ``set`` that refuses a
    value when one of its tags was invalidated after that clock reading. The response cache
    then reads the clock before an endpoint computes, so a value computed before a write's
    invalidation and written after it is never stored. Without them, such a value can be
    served until its TTL.
    """

    #: A short name for telemetry and ``Cache-Status``, e.g. ``"memory"`` or ``"redis"``.
    name: str

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (absent, expired or the store failed)."""
        ...

    async def set(
        self, key: str, value: bytes, *, ttl: float, tags: Collection[str] = ()
    ) -> bool | None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (> 0), findable by each of ``tags``.

        False when the value was not stored (too large, the store failed); True or None when it
        was (None: a store written before this return value existed).
        """
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...

    async def invalidate(self, tags: Collection[str]) -> int:
        """Delete every key stored with any of ``tags``; return how many were deleted."""
        ...

    async def acquire(self, key: str, ttl: float) -> bool:
        """Take a short-lived lock for ``ttl`` seconds; True if this caller got it (or failed)."""
        ...

    async def release(self, key: str) -> None:
        """Release a lock this caller holds; a lock someone else holds is left alone."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources (connections); the store is not used afterwards."""
        ...


def check_positive(name: str, value: object, what: str = "int") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive ``what`` (``"int..."``:
    an int; else an int or a float; never a ``bool``)."""
    kinds: tuple[type, ...] = (int,) if what.startswith("int") else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive {what}, got {value!r}")
