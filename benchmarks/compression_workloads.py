"""Compression workloads: each coding against starlette-compress, a browser against GZipMiddleware.

Every row's response is decoded with a real decoder for the ``Content-Encoding`` it must have
and validated against the payload before timing, so a contender that skips compression (or
compresses garbage) fails its check instead of looking fast.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

import brotli
import orjson
import zstandard
from pydantic import TypeAdapter

from benchmarks.apps import JSON, Contender
from benchmarks.harness import Entry, Response, Workload, WrongResponse, make_request
from benchmarks.payloads import Payloads, User

BROWSER = "gzip, deflate, br, zstd"
_PATHS = {"small": "/users/small", "medium": "/users/medium", "large": "/users/large"}

# (label, contender, Accept-Encoding, coding the response must have)
_Plan = list[tuple[str, str, str | None, str | None]]


def _decode(coding: str | None, body: bytes) -> bytes:
    if coding is None:
        return body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    raise WrongResponse(f"unexpected coding {coding!r}")


def _check(coding: str | None, adapter: TypeAdapter[Any], expected: Any) -> Any:
    def check(response: Response) -> None:
        if response.status != 200:
            raise WrongResponse(f"status {response.status}: {response.body[:200]!r}")
        got_coding = response.header("content-encoding")
        if got_coding != coding:
            raise WrongResponse(f"content-encoding {got_coding!r}, expected {coding!r}")
        length = response.header("content-length")
        if length is not None and int(length) != len(response.body):
            raise WrongResponse(f"content-length {length} but {len(response.body)} bytes sent")
        content_type = (response.header("content-type") or "").split(";")[0].strip()
        if content_type != JSON:
            raise WrongResponse(f"content-type {content_type!r}")
        try:
            got = adapter.validate_python(orjson.loads(_decode(coding, response.body)))
        except (ValueError, OSError) as exc:
            raise WrongResponse(f"body does not decode to the payload: {exc}") from exc
        if got != expected:
            raise WrongResponse("decoded body differs from the expected payload")

    return check


def _workload(
    name: str,
    size: str,
    plan: _Plan,
    payloads: Payloads,
    available: Mapping[str, Contender],
    peer: str,
) -> Workload:
    value = payloads.by_size(size)
    adapter: TypeAdapter[Any] = TypeAdapter(User if size == "small" else list[User])
    entries = []
    for label, contender, accept_encoding, coding in plan:
        if contender not in available:
            continue
        headers = {"accept": JSON}
        if accept_encoding is not None:
            headers["accept-encoding"] = accept_encoding
        request = make_request("GET", _PATHS[size], headers)
        entries.append(Entry(label, contender, request, _check(coding, adapter, value)))
    labels = {e.label for e in entries}
    return Workload(
        name,
        tuple(entries),
        baseline="stock" if "stock" in labels else None,
        peer=peer if peer in labels else None,
    )


def build_compression_workloads(
    available: Mapping[str, Contender], payloads: Payloads
) -> list[Workload]:
    """The compression workloads (names start with ``enc``), restricted to ``available``."""
    workloads = []
    for coding in ("zstd", "br", "gzip"):
        for size in ("medium", "large"):
            # Level 4 on both sides: starlette-compress's default for every coding. What
            # compressing costs each stack is st-compress - stock and serdes lvl4 - serdes id
            # (the same app answering a client that sends no Accept-Encoding).
            plan: _Plan = [
                ("stock", "stock", None, None),
                ("st-compress", "starlette-compress", coding, coding),
                ("serdes id", "serdes-level4", None, None),
                ("serdes lvl4", "serdes-level4", coding, coding),
            ]
            workloads.append(
                _workload(f"enc {coding}-4 {size}", size, plan, payloads, available, "st-compress")
            )
    for size in ("medium", "large"):
        plan = [
            ("stock", "stock", BROWSER, None),
            ("gzip-mw", "gzip-middleware", BROWSER, "gzip"),
            ("serdes", "serdes", BROWSER, "zstd"),
        ]
        workloads.append(
            _workload(f"enc browser {size}", size, plan, payloads, available, "gzip-mw")
        )
    # Under the threshold: what the compression layer costs when it has nothing to compress.
    plan = [
        ("stock", "stock", BROWSER, None),
        ("serdes-route", "serdes-route", BROWSER, None),
        ("serdes off", "serdes-nocompress", BROWSER, None),
        ("serdes", "serdes", BROWSER, None),
    ]
    workloads.append(_workload("enc small <1KiB", "small", plan, payloads, available, "serdes off"))
    return workloads
