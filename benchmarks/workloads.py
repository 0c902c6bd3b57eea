"""The workloads: which contenders run which request, against which baseline and peer.

Every workload keeps stock FastAPI answering JSON as its baseline, so each ratio reads as
"throughput relative to what a stock FastAPI user gets today". MessagePack workloads also name
msgpack-asgi as the peer: the existing way to add MessagePack to FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgpack
import orjson
from pydantic import TypeAdapter

from benchmarks.apps import JSON, Contender
from benchmarks.cache_workloads import build_cache_workloads
from benchmarks.compression_workloads import build_compression_workloads
from benchmarks.harness import Entry, Request, Response, Workload, WrongResponse, make_request
from benchmarks.payloads import Ack, Payloads, User, to_wire
from benchmarks.telemetry_workloads import build_telemetry_workloads

Codec = Literal["json", "msgpack"]
SIZES = ("small", "medium", "large")

Check = Callable[[Response], None]
Build = Callable[[Contender, Codec], tuple[Request, Check]]

_PATHS = {"small": "/users/small", "medium": "/users/medium", "large": "/users/large"}
# (contender, codec it is asked for). Stock FastAPI answering JSON is always first: the baseline.
_JSON_PLAN: list[tuple[str, Codec]] = [
    ("stock", "json"),
    ("orjson", "json"),
    ("serdes", "json"),
    ("serdes-plain", "json"),
]
_GET_MSGPACK_PLAN: list[tuple[str, Codec]] = [
    ("stock", "json"),
    ("msgpack-asgi", "msgpack"),
    ("serdes", "msgpack"),
    # Stock routes behind the middleware: MessagePack by transcoding (the documented slow path).
    ("serdes-plain", "msgpack"),
]
_POST_MSGPACK_PLAN: list[tuple[str, Codec]] = [
    ("stock", "json"),
    ("msgpack-asgi", "msgpack"),
    ("serdes", "msgpack"),
]


def _media_type(contender: Contender, codec: Codec) -> str:
    if codec == "json":
        return JSON
    if contender.msgpack_type is None:
        raise ValueError(f"contender {contender.name!r} does not speak MessagePack")
    return contender.msgpack_type


def _decode(response: Response, media_type: str) -> Any:
    content_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != media_type:
        raise WrongResponse(f"content-type {content_type!r}, expected {media_type!r}")
    if media_type == JSON:
        return orjson.loads(response.body)
    # timestamp=3: a codec may send datetimes as the MessagePack timestamp extension.
    return msgpack.unpackb(response.body, raw=False, timestamp=3)


def expect(status: int, media_type: str, adapter: TypeAdapter[Any], expected: Any) -> Check:
    """A check: status, content type, and a body that validates to ``expected``.

    Comparing validated values (not bytes) lets codecs differ in legitimate ways (key order,
    datetime as string or timestamp) while still catching wrong or partial data.
    """

    def check(response: Response) -> None:
        if response.status != status:
            raise WrongResponse(
                f"status {response.status}, expected {status}: {response.body[:200]!r}"
            )
        try:
            got = adapter.validate_python(_decode(response, media_type))
        except ValueError as exc:  # undecodable, or decodes to the wrong shape
            raise WrongResponse(f"body does not decode to the payload: {exc}") from exc
        if got != expected:
            raise WrongResponse("decoded body differs from the expected payload")

    return check


def _encode(value: Any, codec: Codec) -> bytes:
    wire = to_wire(value)  # datetimes as strings: msgpack-asgi re-encodes request bodies as JSON
    return orjson.dumps(wire) if codec == "json" else msgpack.packb(wire)


def _get(path: str, adapter: TypeAdapter[Any], value: Any) -> Build:
    def build(contender: Contender, codec: Codec) -> tuple[Request, Check]:
        media_type = _media_type(contender, codec)
        request = make_request("GET", path, {"accept": media_type})
        return request, expect(200, media_type, adapter, value)

    return build


def _post(path: str, bodies: Mapping[Codec, bytes], ack: Ack) -> Build:
    def build(contender: Contender, codec: Codec) -> tuple[Request, Check]:
        media_type = _media_type(contender, codec)
        headers = {"accept": media_type, "content-type": media_type}
        request = make_request("POST", path, headers, bodies[codec])
        return request, expect(201, media_type, TypeAdapter(Ack), ack)

    return build


def _workload(
    name: str,
    codec: Codec,
    plan: list[tuple[str, Codec]],
    build: Build,
    available: Mapping[str, Contender],
    peer: str | None = None,
) -> Workload:
    """A workload whose rows are labelled by contender, plus the codec where it differs."""
    entries = []
    for contender_name, entry_codec in plan:
        if contender_name not in available:
            continue
        label = contender_name if entry_codec == codec else f"{contender_name} ({entry_codec})"
        request, check = build(available[contender_name], entry_codec)
        entries.append(Entry(label, contender_name, request, check))
    labels = {entry.label for entry in entries}
    baseline = "stock" if codec == "json" else "stock (json)"
    return Workload(
        name,
        tuple(entries),
        baseline=baseline if baseline in labels else None,
        peer=peer if peer in labels else None,
    )


def build_workloads(available: Mapping[str, Contender], payloads: Payloads) -> list[Workload]:
    """All workloads, restricted to ``available`` contenders (missing ones are left out)."""
    workloads = []
    for size in SIZES:
        value = payloads.by_size(size)
        adapter: TypeAdapter[Any] = TypeAdapter(User if size == "small" else list[User])
        get = _get(_PATHS[size], adapter, value)
        workloads.append(_workload(f"GET json {size}", "json", _JSON_PLAN, get, available))
        workloads.append(
            _workload(
                f"GET msgpack {size}", "msgpack", _GET_MSGPACK_PLAN, get, available, "msgpack-asgi"
            )
        )

    medium = payloads.medium
    ack = Ack(count=len(medium), follower_total=sum(u.follower_count for u in medium))
    post = _post(
        "/users", {"json": _encode(medium, "json"), "msgpack": _encode(medium, "msgpack")}, ack
    )
    workloads.append(_workload("POST json medium", "json", _JSON_PLAN, post, available))
    workloads.append(
        _workload(
            "POST msgpack medium", "msgpack", _POST_MSGPACK_PLAN, post, available, "msgpack-asgi"
        )
    )
    workloads.extend(build_compression_workloads(available, payloads))
    workloads.extend(build_cache_workloads(available, payloads))
    workloads.extend(build_telemetry_workloads(available, payloads))
    return workloads
