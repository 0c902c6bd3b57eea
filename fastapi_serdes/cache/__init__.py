"""The response cache's building blocks (RFC 9111, RFC 9211): policies, keys, stored entries.

A route opts in with :func:`cached`. The key holds everything that can change the bytes (host,
path, sorted query, media type, content coding, declared ``Vary`` headers, the principal when
the route names one). Requests with ``Authorization`` or ``Cookie`` and responses with
``Set-Cookie``, ``Cache-Control: private|no-store`` or ``Vary: *`` never touch a shared entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast
from urllib.parse import unquote_to_bytes

import msgpack
from starlette.requests import Request

from .._types import Scope, check_positive
from ..negotiation import split_list
from ..settings import header

#: Methods whose success invalidates a path's entries (and whose If-Match is checked).
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CACHE_STATUS_NAME: Final = "fastapi-serdes"  # the cache's name in Cache-Status (RFC 9211)
CACHE_STATUS_PREFIX: Final = CACHE_STATUS_NAME.encode("latin-1") + b"; "
# Stored entries start with this; a release that changes the layout changes it, so an old entry
# is a miss, never a misread.
ENTRY_FORMAT: Final = b"FSE2"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
KeyFunction = Callable[[Request], str | None]
TagFunction = Callable[[Request], Collection[str]]


def cache_control(value: str | None) -> dict[str, str | None]:
    """Parse ``Cache-Control`` into {directive: argument or None}; names lowercased."""
    directives: dict[str, str | None] = {}
    for member in split_list(value or ""):
        name, sep, arg = member.partition("=")
        name = name.strip().lower()
        if name and name not in directives:
            directives[name] = arg.strip().strip('"') if sep else None
    return directives


def requested(scope: Scope) -> dict[str, str | None]:
    """The ``Cache-Control`` directives of the request itself (``no-cache``, ``no-store``)."""
    return cache_control(header(scope, b"cache-control"))


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How a route's responses are cached; built by :func:`cached`."""

    ttl: float
    vary: tuple[str, ...] = ()
    key: KeyFunction | None = None
    tags: TagFunction | None = None
    cache_control: str | None = None
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0

    @property
    def kept(self) -> float:
        """How long an entry is kept in the store: its freshness and the longer stale window."""
        return self.ttl + max(self.stale_while_revalidate, self.stale_if_error)


def cached(
    ttl: float,
    *,
    vary: Sequence[str] = (),
    key: KeyFunction | None = None,
    tags: TagFunction | None = None,
    cache_control: str | None = "default",
    stale_while_revalidate: float = 0,
    stale_if_error: float = 0,
) -> Callable[[F], F]:
    """Opt a ``SerdesRoute`` endpoint into the response cache.

    Args:
        ttl: seconds an entry is served without calling the endpoint.
        vary: request headers whose values change the response (added to the key and to
            ``Vary``), e.g. ``("accept-language",)``.
        key: a per-principal key function (``request -> str``, e.g. the user id from a verified
            token). Only with it are requests carrying ``Authorization`` or ``Cookie`` cached,
            each principal in its own entries; returning None skips the cache for that request.
        tags: a function giving tags for the entry (``request -> ["user:42"]``), for
            :func:`invalidate`. Entries are always tagged with their path too.
        cache_control: the ``Cache-Control`` sent with cached responses; ``"default"`` is
            ``public, max-age=<ttl>`` (``private`` with a key function, and the stale windows
            below when set), None sends none.
        stale_while_revalidate: seconds past ``ttl`` during which a stale entry is served at
            once while one request refreshes it in the background (RFC 5861).
        stale_if_error: seconds past ``ttl`` during which a stale entry is served instead of
            the endpoint's 5xx answer or exception (RFC 5861).

    Raises:
        ValueError: ``ttl`` is not a positive number, or a stale window is negative.
    """
    check_positive("cached(ttl=...)", ttl, "number of seconds")
    _check_window("stale_while_revalidate", stale_while_revalidate)
    _check_window("stale_if_error", stale_if_error)
    if cache_control == "default":  # in whole seconds
        directives = ["private" if key is not None else "public", f"max-age={int(ttl)}"]
        if stale_while_revalidate:
            directives.append(f"stale-while-revalidate={int(stale_while_revalidate)}")
        if stale_if_error:
            directives.append(f"stale-if-error={int(stale_if_error)}")
        cache_control = ", ".join(directives)
    policy = CachePolicy(
        ttl=float(ttl),
        vary=tuple(h.lower() for h in vary),
        key=key,
        tags=tags,
        cache_control=cache_control,
        stale_while_revalidate=float(stale_while_revalidate),
        stale_if_error=float(stale_if_error),
    )
    return marking("__serdes_cache__", policy)


def marking(attribute: str, value: object) -> Callable[[F], F]:
    """A decorator that sets ``attribute`` on an endpoint, for ``SerdesRoute`` to read."""

    def decorate(endpoint: F) -> F:
        setattr(endpoint, attribute, value)
        return endpoint

    return decorate


def _check_window(name: str, window: object) -> None:
    """Raise ``ValueError`` naming ``cached``'s argument unless ``window`` is seconds >= 0."""
    if isinstance(window, bool) or not isinstance(window, int | float) or not window >= 0:
        raise ValueError(f"cached({name}=...) must be a number of seconds >= 0, got {window!r}")


@dataclass(slots=True)
class Entry:
    """A stored response: identity or one content coding of it."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    etag: str
    stored_at: float
    ttl: float
    tags: list[str] = field(default_factory=list)

    def age(self, now: float) -> int:
        return max(0, int(now - self.stored_at))

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    def dumps(self) -> bytes:
        """Format tag, metadata length, MessagePack metadata, then the body as it is (never
        pickle): reading an entry copies the body once."""
        meta: bytes = msgpack.packb(
            [self.status, self.headers, self.etag, self.stored_at, self.ttl, self.tags],
            use_bin_type=True,
        )
        return b"".join((ENTRY_FORMAT, len(meta).to_bytes(4, "big"), meta, self.body))

    @classmethod
    def loads(cls, data: bytes) -> Entry | None:
        """Read an entry; None for anything else (another format, corrupt bytes)."""
        if data[:4] != ENTRY_FORMAT or len(data) < 8:
            return None
        end = 8 + int.from_bytes(data[4:8], "big")
        try:
            status, headers, etag, stored_at, ttl, tags = msgpack.unpackb(
                data[8:end], raw=False, use_list=False
            )
            if len(data) < end or not all(
                type(k) is bytes and type(v) is bytes for k, v in headers
            ):
                return None
            return cls(int(status), list(headers), data[end:], str(etag), float(stored_at),
                       float(ttl), list(tags))  # fmt: skip
        except (ValueError, TypeError, msgpack.UnpackException):
            return None


def _query_name(pair: bytes) -> bytes:
    # The name as the app reads it: ?%6E=1 and ?n=1 both set n (and + is a space).
    name = pair.split(b"=", 1)[0]
    if b"%" in name or b"+" in name:
        return unquote_to_bytes(name.replace(b"+", b" "))
    return name


def request_host(headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The request's ``Host``, as the cache key holds it (the first line; empty when none)."""
    return next((v for k, v in headers if k == b"host"), b"")


def request_key(
    scope: Scope, *, media_type: str | None, coding: str, vary: Sequence[str], principal: str | None
) -> str:
    """The cache key: a hash of everything that can change the response bytes.

    GET and HEAD share entries. The query pairs are sorted by name only: the values of a
    repeated name keep their order (``?limit=1&limit=5`` is not ``?limit=5&limit=1``).
    """
    headers = scope["headers"]
    host = request_host(headers)
    query: bytes = scope.get("query_string", b"")
    if b"&" in query:
        pairs: list[bytes] = query.split(b"&")
        pairs.sort(key=_query_name)  # stable: a repeated name's values keep their order
        query = b"&".join(pairs)
    parts = [
        b"v1",
        host,
        scope.get("root_path", "").encode("utf-8", "surrogateescape"),
        scope["path"].encode("utf-8", "surrogateescape"),
        query,
        (media_type or "").encode("latin-1"),
        coding.encode("latin-1"),
    ]
    for name in vary:
        raw = name.encode("latin-1")
        parts.append(b", ".join(v for k, v in headers if k == raw))
    parts.append((principal or "").encode("utf-8", "surrogateescape"))
    return hashlib.sha256(b"\x00".join(parts)).hexdigest()


def credentialed(scope: Scope) -> bool:
    """Whether the request carries credentials (``Authorization`` or ``Cookie``)."""
    return any(k == b"authorization" or k == b"cookie" for k, _ in scope["headers"])


def principal_of(policy: CachePolicy, request: Request) -> tuple[bool, str | None]:
    """(may this request use the cache, its principal): a credentialed request only with the
    route's key function, which may answer None to keep the request out."""
    if policy.key is None:
        return not credentialed(request.scope), None
    principal = policy.key(request)
    return principal is not None, principal


def path_tag(scope: Scope) -> str:
    """The tag every entry of a path carries: the whole path, whether the server's ``path``
    includes ``root_path`` (ASGI) or not (older servers)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and not (path == root_path or path.startswith(root_path.rstrip("/") + "/")):
        path = root_path + path
    return "path:" + path


def storable_response(
    status: int, headers: Sequence[tuple[bytes, bytes]], *, per_principal: bool = False
) -> bool:
    """RFC 9111 §3 for a shared cache: a 200 that no header of its own keeps out."""
    return status == 200 and not any(
        _forbids_storing(name, value, per_principal) for name, value in headers
    )


def _forbids_storing(name: bytes, value: bytes, per_principal: bool) -> bool:
    """Whether a header keeps the response out: ``Set-Cookie``, ``Content-Range`` (a part),
    ``no-store``, ``private`` (unless the entry is a principal's own) or ``Vary: *``."""
    if name == b"set-cookie" or name == b"content-range":
        return True
    if name == b"cache-control":
        directives = cache_control(value.decode("latin-1"))
        return "no-store" in directives or ("private" in directives and not per_principal)
    return name == b"vary" and any(t.strip() == b"*" for t in value.split(b","))


class SingleFlight:
    """Concurrent calls with one key run once in this process; the others share the result.
    A follower waits at most ``timeout`` seconds, and computes for itself when the leader fails
    or shares nothing."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._flights: dict[str, asyncio.Future[Any]] = {}

    async def run(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        share: Callable[[T], T | None] = lambda result: result,
    ) -> T:
        """Run ``compute`` once per key at a time; ``share`` gives followers their copy, or None."""
        existing = self._flights.get(key)
        if existing is not None:
            with contextlib.suppress(TimeoutError):
                theirs = await asyncio.wait_for(asyncio.shield(existing), self.timeout)
                if theirs is not None:
                    return cast(T, theirs)
            return await compute()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        shared: Any = None
        try:
            result = await compute()
            shared = share(result)
            return result
        finally:
            del self._flights[key]
            future.set_result(shared)  # None on failure: followers compute themselves

    def __len__(self) -> int:
        return len(self._flights)
