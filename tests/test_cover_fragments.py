"""Fragments at their edges: codecs that cannot be joined, per-index selections, items larger
than the whole store. Each falls back to encoding the list whole, with the same bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import orjson
from pydantic import BaseModel, TypeAdapter

from fastapi_serdes import JSONCodec, MsgPackCodec
from fastapi_serdes.cache.fragments import Fragments


class Row(BaseModel):
    id: int
    name: str
    note: str = "n"


class LinesCodec:
    """A codec of another media type: one JSON document per line."""

    media_types = ("application/x-ndjson",)

    def __init__(self) -> None:
        self.calls = 0

    def encode(
        self, value: Any, adapter: Any = None, options: Mapping[str, Any] | None = None
    ) -> bytes:
        self.calls += 1
        return b"\n".join(orjson.dumps(TypeAdapter(Row).dump_python(v)) for v in value)

    def decode(self, data: bytes, adapter: Any = None) -> Any:
        raise NotImplementedError


ROWS = [Row(id=i, name=f"r{i}") for i in range(3)]
ADAPTER = TypeAdapter(list[Row])


def test_a_codec_that_cannot_be_joined_is_left_to_encode_the_whole_list() -> None:
    fragments = Fragments(lambda r: r.id, Row, max_bytes=10_000)
    codec = LinesCodec()
    assert fragments.encode(ROWS, codec, {}) is None
    assert codec.calls == 0
    assert len(fragments) == 0


def test_per_index_selections_are_not_a_per_item_shape() -> None:
    fragments = Fragments(lambda r: r.id, Row, max_bytes=10_000)
    per_index = {"include": {0: {"id"}, 1: {"name"}}}
    assert fragments.encode(ROWS, JSONCodec(), per_index) is None
    assert fragments.encode(ROWS, JSONCodec(), {"exclude": {"id"}}) is None
    assert len(fragments) == 0


def test_a_selection_for_every_item_is_applied_to_each() -> None:
    fragments = Fragments(lambda r: r.id, Row, max_bytes=10_000)
    options = {"include": {"__all__": {"id", "name"}}, "exclude": {"__all__": {"name"}}}
    joined = fragments.encode(ROWS, MsgPackCodec(), options)
    assert joined is not None
    assert msgpack.unpackb(joined) == [{"id": i} for i in range(3)]
    assert joined == MsgPackCodec().encode(ROWS, ADAPTER, options)


def test_items_larger_than_the_store_are_encoded_every_time_and_never_kept() -> None:
    fragments = Fragments(lambda r: r.id, Row, max_bytes=250)
    big = [Row(id=1, name="x" * 300), Row(id=2, name="small")]
    for _ in range(2):
        joined = fragments.encode(big, JSONCodec(), {})
        assert joined is not None
        assert orjson.loads(joined) == ADAPTER.dump_python(big)
    assert len(fragments) == 1  # only the small one
    assert fragments.size <= 250
