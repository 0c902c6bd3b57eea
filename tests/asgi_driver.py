"""A tiny ASGI driver for tests that need the raw messages (compressed bytes, chunk boundaries)."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import brotli
import zstandard

from fastapi_serdes._types import ASGIApp, Message


@dataclass
class Sent:
    """What the app sent: the start message's status and headers, and the body messages."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = [v.decode("latin-1") for k, v in self.headers if k == name.encode("latin-1")]
        return ", ".join(values) if values else None

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )

    def decoded(self) -> bytes:
        return decode(self.header("content-encoding"), self.body)


def decode(coding: str | None, data: bytes) -> bytes:
    """Decode ``data`` with a real decoder for ``coding`` (None: identity)."""
    if coding is None:
        return data
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return bytes(brotli.decompress(data))
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    raise AssertionError(f"unexpected coding {coding!r}")


async def call(
    app: ASGIApp,
    path: str,
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: Sequence[bytes] = (b"",),
    on_message: Callable[[Message], Awaitable[None]] | None = None,
) -> Sent:
    """Run one request; ``body`` is sent as that many ``http.request`` messages."""
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "extensions": {"http.response.pathsend": {}},
    }
    pending = list(body) or [b""]
    sent = Sent()

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = list(message.get("headers", ()))
        else:
            sent.messages.append(message)
        if on_message is not None:
            await on_message(message)

    await app(scope, receive, send)
    return sent
