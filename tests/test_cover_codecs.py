"""The codecs at their edges: bounded memos that fill up (answers must not change), and types
MessagePack's fast path leaves to pydantic (serializers in ``Annotated``, other containers)."""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Any, Literal

import msgpack
import orjson
import pytest
from pydantic import BaseModel, PlainSerializer, TypeAdapter

from fastapi_serdes import EncodeError, JSONCodec, MsgPackCodec
from fastapi_serdes.codecs.core_schemas import _MEMO_SIZE


def test_json_keeps_refusing_non_finite_floats_after_its_memo_fills() -> None:
    codec = JSONCodec()
    for i in range(_MEMO_SIZE + 5):
        # A distinct type each time: float or one literal.
        adapter: TypeAdapter[Any] = TypeAdapter(dict[str, float | Literal[f"v{i}"] | None])
        assert orjson.loads(codec.encode({"x": None}, adapter)) == {"x": None}
        with pytest.raises(EncodeError, match="/x"):
            codec.encode({"x": math.nan}, adapter)
    assert len(codec._null_keys) <= _MEMO_SIZE


def test_msgpack_answers_the_same_after_its_memos_fill() -> None:
    codec = MsgPackCodec()
    value = {"a": [1, 2.5, "x"]}
    for _ in range(_MEMO_SIZE + 5):
        adapter: TypeAdapter[Any] = TypeAdapter(dict[str, list[int | float | str]])
        assert msgpack.unpackb(codec.encode(value, adapter)) == value
    with pytest.raises(EncodeError, match="/a/0"):
        codec.encode({"a": [math.inf]}, TypeAdapter(dict[str, list[float]]))


Cents = Annotated[int, PlainSerializer(lambda cents: f"{cents / 100:.2f}")]


class Priced(BaseModel):
    prices: list[Cents]
    history: deque[int]
    tags: Annotated[list[str], "a plain annotation"] = []


@pytest.mark.parametrize(
    ("tp", "value", "dumped"),
    [
        (list[Cents], [1999, 5], ["19.99", "0.05"]),
        (deque[int], deque([1, 2]), [1, 2]),
        (Annotated[list[str], "a plain annotation"], ["a"], ["a"]),
        (
            Priced,
            Priced(prices=[100], history=deque([3]), tags=["t"]),
            {"prices": ["1.00"], "history": [3], "tags": ["t"]},
        ),
    ],
    ids=["serializer-in-annotated", "other-container", "plain-annotated", "model"],
)
def test_types_the_fast_path_cannot_write_are_written_as_pydantic_dumps_them(
    tp: Any, value: Any, dumped: Any
) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(tp)
    data = MsgPackCodec().encode(value, adapter)
    assert msgpack.unpackb(data) == dumped == adapter.dump_python(value, mode="json")
