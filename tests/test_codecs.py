"""JSONCodec and MsgPackCodec: one value policy, strict decoding, errors that locate the fault."""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import pathlib
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from fastapi_serdes import Codec, DecodeError, EncodeError, SerdesError
from fastapi_serdes.codecs import (
    DEFAULT_MAX_CONTAINER_LENGTH,
    JSON_MAX_DEPTH,
    JSON_MEDIA_TYPE,
    MSGPACK_MAX_DEPTH,
    MSGPACK_MEDIA_TYPES,
    JSONCodec,
    MsgPackCodec,
    default_codecs,
)

CODECS = [JSONCodec(), MsgPackCodec()]
CODEC_IDS = ["json", "msgpack"]


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Inner(BaseModel):
    when: datetime
    tags: list[str]


class Everything(BaseModel):
    aware: datetime
    aware_offset: datetime
    aware_zoneinfo: datetime
    naive: datetime
    day: date
    clock: time
    ident: uuid.UUID
    price: Decimal
    color: Color
    level: Level
    labels: set[str]
    frozen: frozenset[int]
    span: timedelta
    negative_span: timedelta
    inner: Inner
    inners: list[Inner]
    by_name: dict[str, Inner]
    pair: tuple[int, str]
    address: ipaddress.IPv4Address
    path: pathlib.Path
    ratio: float
    big: int
    nothing: None = None


EVERYTHING = Everything(
    aware=datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    aware_offset=datetime(
        2024, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=5, minutes=30))
    ),
    aware_zoneinfo=datetime(2024, 7, 2, 3, 4, 5, tzinfo=ZoneInfo("Europe/Paris")),
    naive=datetime(2024, 1, 2, 3, 4, 5, 1),
    day=date(2024, 2, 29),
    clock=time(1, 2, 3, 456),
    ident=uuid.UUID(int=12345),
    price=Decimal("1.10"),
    color=Color.RED,
    level=Level.HIGH,
    labels={"a", "b", "c"},
    frozen=frozenset({1, 2}),
    span=timedelta(days=1, seconds=3, microseconds=5),
    negative_span=timedelta(seconds=-1),
    inner=Inner(when=datetime(2020, 1, 1, tzinfo=UTC), tags=["x"]),
    inners=[Inner(when=datetime(2020, 1, 1), tags=[])],
    by_name={"k": Inner(when=datetime(2020, 1, 1, 0, 0, 0, 999999), tags=["y"])},
    pair=(1, "a"),
    address=ipaddress.IPv4Address("10.0.0.1"),
    path=pathlib.Path("/tmp/x"),
    ratio=-0.0,
    big=2**64 - 1,
)


def as_json_data(codec_json: bytes) -> Any:
    return orjson.loads(codec_json)


def as_msgpack_data(codec_msgpack: bytes) -> Any:
    return msgpack.unpackb(codec_msgpack, raw=False, strict_map_key=False)


# --- interface -------------------------------------------------------------------------------


def test_media_types() -> None:
    assert JSONCodec().media_types == (JSON_MEDIA_TYPE,) == ("application/json",)
    assert MsgPackCodec().media_types == MSGPACK_MEDIA_TYPES
    assert MSGPACK_MEDIA_TYPES == (
        "application/msgpack",
        "application/vnd.msgpack",
        "application/x-msgpack",
    )


def test_default_codecs_are_fresh_instances_json_first() -> None:
    first, second = default_codecs(), default_codecs()
    assert [type(c) for c in first] == [JSONCodec, MsgPackCodec]
    assert first[0] is not second[0]
    assert all(isinstance(c, Codec) for c in first)


def test_errors_are_value_errors() -> None:
    assert issubclass(DecodeError, ValueError)
    assert issubclass(DecodeError, SerdesError)
    assert issubclass(EncodeError, ValueError)
    assert issubclass(EncodeError, SerdesError)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", None, True], ids=repr)
def test_max_container_length_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"max_container_length.*" + re.escape(repr(bad))):
        MsgPackCodec(max_container_length=bad)


# --- encoding --------------------------------------------------------------------------------


class Point(BaseModel):
    x: int
    y: int | None = None
    label: str = "p"


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_encode_plain_value_without_adapter(codec: Codec) -> None:
    data = codec.encode({"a": [1, 2.5, "x", None, True]})
    assert codec.decode(data) == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_encode_model_without_adapter(codec: Codec) -> None:
    assert codec.decode(codec.encode(Point(x=1))) == {"x": 1, "y": None, "label": "p"}


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_encode_with_adapter_and_options(codec: Codec) -> None:
    ta = TypeAdapter(Point)
    assert codec.decode(codec.encode(Point(x=1), ta)) == {"x": 1, "y": None, "label": "p"}
    data = codec.encode(Point(x=1), ta, {"exclude_none": True, "include": {"x", "y"}})
    assert codec.decode(data) == {"x": 1}


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_encode_unknown_type_is_an_encode_error(codec: Codec) -> None:
    with pytest.raises(EncodeError, match=getattr(codec, "name", "")):
        codec.encode({"a": object()})


def test_json_encoding_is_compact_utf8() -> None:
    assert JSONCodec().encode({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()


def test_msgpack_encoding_uses_str_and_bin_types() -> None:
    data = MsgPackCodec().encode({"s": "x", "b": b"\x00"})
    assert data == msgpack.packb({"s": "x", "b": b"\x00"}, use_bin_type=True)


def test_value_policy_is_the_same_in_both_codecs() -> None:
    ta = TypeAdapter(Everything)
    from_msgpack = as_msgpack_data(MsgPackCodec().encode(EVERYTHING, ta))
    from_json = as_json_data(JSONCodec().encode(EVERYTHING, ta))
    # A set has no order: each codec may list it in a different one (pydantic copies the set
    # for dump_python, and a copy of a str set can iterate differently).
    for data in (from_msgpack, from_json):
        data["labels"] = sorted(data["labels"])
    assert from_msgpack == from_json
    # Spot checks of the representation itself (pydantic's JSON one).
    assert from_json["aware"] == "2024-01-02T03:04:05.123456Z"
    assert from_json["aware_offset"] == "2024-01-02T03:04:05.120000+05:30"
    assert from_json["aware_zoneinfo"] == "2024-07-02T03:04:05+02:00"
    assert from_json["naive"] == "2024-01-02T03:04:05.000001"
    assert from_json["clock"] == "01:02:03.000456"
    assert from_json["price"] == "1.10"
    assert from_json["color"] == "red"
    assert from_json["level"] == 3
    assert from_json["labels"] == ["a", "b", "c"]
    assert from_json["span"] == "P1DT3.000005S"
    assert from_json["big"] == 2**64 - 1


def test_value_policy_is_the_same_without_adapter() -> None:
    value = {
        "aware": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "naive": datetime(2024, 1, 2),
        "day": date(2024, 1, 1),
        "clock": time(1, 2),
        "ident": uuid.UUID(int=1),
        "price": Decimal("1.5"),
        "color": Color.RED,
        "labels": {1},
        "span": timedelta(hours=1),
        "model": Point(x=1),
    }
    from_msgpack = as_msgpack_data(MsgPackCodec().encode(value))
    from_json = as_json_data(JSONCodec().encode(value))
    assert from_msgpack == from_json


class Blob(BaseModel):
    data: bytes


class Base64Blob(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64")
    data: bytes


def test_bytes_are_the_documented_difference() -> None:
    # MessagePack carries bytes natively as bin; JSON as pydantic renders them.
    assert as_msgpack_data(MsgPackCodec().encode(Blob(data=b"hi"), TypeAdapter(Blob))) == {
        "data": b"hi"
    }
    assert as_json_data(JSONCodec().encode(Blob(data=b"hi"), TypeAdapter(Blob))) == {"data": "hi"}
    ta = TypeAdapter(Base64Blob)
    assert as_msgpack_data(MsgPackCodec().encode(Base64Blob(data=b"hi"), ta)) == {"data": b"hi"}
    assert as_json_data(JSONCodec().encode(Base64Blob(data=b"hi"), ta)) == {"data": "aGk="}


def test_value_policy_time_with_tzinfo() -> None:
    ta = TypeAdapter(time)
    value = time(1, 2, 3, tzinfo=UTC)
    assert as_msgpack_data(MsgPackCodec().encode(value, ta)) == as_json_data(
        JSONCodec().encode(value, ta)
    )


@pytest.mark.parametrize(
    ("value", "tp"),
    [({1: "a"}, dict[int, str]), ({1.5: "a"}, dict[float, str]), ({True: "a"}, dict[bool, str])],
    ids=["int", "float", "bool"],
)
def test_value_policy_non_str_keys(value: dict[Any, str], tp: Any) -> None:
    ta = TypeAdapter(tp)
    data = MsgPackCodec().encode(value, ta)
    assert as_msgpack_data(data) == as_json_data(JSONCodec().encode(value, ta))
    assert MsgPackCodec().decode(data, ta) == value


class SecondsSpan(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")
    span: timedelta


def test_value_policy_follows_json_mode_configuration() -> None:
    ta = TypeAdapter(SecondsSpan)
    value = SecondsSpan(span=timedelta(hours=1))
    assert as_json_data(JSONCodec().encode(value, ta)) == {"span": 3600.0}
    assert as_msgpack_data(MsgPackCodec().encode(value, ta)) == {"span": 3600.0}


class Scores(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    best_score: float = 0.0
    all_scores: list[float] = []
    count: int = 0


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
@pytest.mark.parametrize(
    ("value", "adapter", "message"),
    [
        (math.nan, None, "/: NaN is not a finite number"),
        ([1.0, math.inf], None, "/1: infinity is not a finite number"),
        ({"a": {"b": -math.inf}}, None, "/a/b: -infinity is not a finite number"),
        (Scores(best_score=math.nan), None, "/best_score: NaN"),
        (Scores(best_score=math.nan), TypeAdapter(Scores), "/best_score: NaN"),
        (Scores(all_scores=[1.0, math.inf]), TypeAdapter(Scores), "/all_scores/1: infinity"),
        ([Scores(best_score=math.nan)], TypeAdapter(list[Scores]), "/0/best_score: NaN"),
    ],
    ids=["bare", "list", "nested", "model", "model-adapter", "model-list", "list-of-models"],
)
def test_encode_refuses_non_finite_floats(
    codec: Codec, value: Any, adapter: TypeAdapter[Any] | None, message: str
) -> None:
    with pytest.raises(EncodeError, match=re.escape(message)):
        codec.encode(value, adapter)


class Ratio(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    best_ratio: float = 0.0


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_encode_refuses_non_finite_floats_by_alias(codec: Codec) -> None:
    with pytest.raises(EncodeError, match=re.escape("/bestScore: NaN")):
        codec.encode(Scores(best_score=math.nan), TypeAdapter(Scores), {"by_alias": True})


def test_json_encode_refuses_non_finite_floats_of_an_aliased_model_by_default() -> None:
    with pytest.raises(EncodeError, match="NaN"):
        JSONCodec().encode(Ratio(best_ratio=math.nan), TypeAdapter(Ratio))


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, {"a": [2**70]}], ids=repr)
def test_integers_past_64_bits(value: Any) -> None:
    # JSON writes them exactly (documented); MessagePack cannot represent them.
    assert json.loads(JSONCodec().encode(value)) == value
    with pytest.raises(EncodeError, match="integer outside the 64-bit range"):
        MsgPackCodec().encode(value)


def test_json_writes_integers_past_64_bits_exactly() -> None:
    assert JSONCodec().encode({"a": [2**70, -(2**63) - 1]}) == (
        b'{"a":[%d,%d]}' % (2**70, -(2**63) - 1)
    )
    assert (
        JSONCodec()
        .encode(Scores(count=2**64), TypeAdapter(Scores))
        .endswith(b'"count":18446744073709551616}')
    )


def test_msgpack_locates_an_integer_past_64_bits() -> None:
    with pytest.raises(EncodeError, match=re.escape("/count: integer outside")):
        MsgPackCodec().encode(Scores(count=2**64), TypeAdapter(Scores))


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_finite_floats_next_to_nulls_encode(codec: Codec) -> None:
    value = {"a": None, "b": 1.7976931348623157e308, "c": [None, -0.0]}
    assert codec.decode(codec.encode(value)) == value


# --- round trips -----------------------------------------------------------------------------

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so 1 and 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


@given(json_like)
def test_round_trip_in_both_codecs(value: Any) -> None:
    json_codec, msgpack_codec = JSONCodec(), MsgPackCodec()
    from_json = json_codec.decode(json_codec.encode(value))
    from_msgpack = msgpack_codec.decode(msgpack_codec.encode(value))
    assert typed(from_json) == typed(value)
    assert typed(from_msgpack) == typed(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_exactly(value: float) -> None:
    for codec in (JSONCodec(), MsgPackCodec()):
        decoded = codec.decode(codec.encode(value))
        assert decoded == value
        assert math.copysign(1.0, decoded) == math.copysign(1.0, value)


@given(st.builds(Point, x=st.integers(-(2**63), 2**64 - 1), y=st.none() | st.integers(0, 10)))
def test_model_round_trip_through_adapter(point: Point) -> None:
    ta = TypeAdapter(Point)
    for codec in (JSONCodec(), MsgPackCodec()):
        assert codec.decode(codec.encode(point, ta), ta) == point


# --- decoding: MessagePack -------------------------------------------------------------------

SECRET = "SECRET-7f3a"


def nested_arrays(depth: int, leaf: bytes = b"\x90") -> bytes:
    """``depth`` levels of arrays in MessagePack: depth-1 one-element arrays around ``leaf``."""
    return b"\x91" * (depth - 1) + leaf


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\xc1", "reserved format byte"),
        (msgpack.packb([1, 2, 3])[:-1], "truncated"),
        (msgpack.packb(SECRET)[:-1], "truncated"),
        (msgpack.packb({"k": SECRET}) + b"\x01", "trailing bytes"),
        (msgpack.packb(1) + msgpack.packb(SECRET), "trailing bytes"),
        (b"\xab" + SECRET.encode()[:-1] + b"\xff", "not valid UTF-8"),
        (msgpack.packb({1: SECRET}), "map key"),
        (msgpack.packb({"a": {(1, 2): SECRET}}), "map key"),
        (msgpack.packb(msgpack.ExtType(5, SECRET.encode())), "extension type 5"),
        (b"\x91\xd4\xfex", "extension type -2"),  # fixext 1, type -2
        (msgpack.packb(math.nan), "at /: NaN is not a finite number"),
        (msgpack.packb(-math.nan), "at /: NaN is not a finite number"),
        (msgpack.packb(math.inf), "at /: infinity is not a finite number"),
        (b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01", "at /: NaN"),  # NaN with a payload
        (msgpack.packb(math.nan, use_single_float=True), "at /: NaN"),
        (msgpack.packb(-math.inf, use_single_float=True), "at /: -infinity"),
        (msgpack.packb({"a": [1, {"b": math.inf}], "s": SECRET}), "at /a/1/b: infinity"),
        (nested_arrays(MSGPACK_MAX_DEPTH + 1), f"deeper than {MSGPACK_MAX_DEPTH}"),
        (b"\xdd\xff\xff\xff\xff", "longer than allowed"),
        (b"\xdf\xff\xff\xff\xff", "longer than allowed"),
        (msgpack.packb(list(range(DEFAULT_MAX_CONTAINER_LENGTH + 1))), "longer than allowed"),
    ],
    ids=[
        "empty",
        "0xc1",
        "truncated-array",
        "truncated-str",
        "trailing-byte",
        "trailing-value",
        "invalid-utf8",
        "int-key",
        "array-key",
        "ext-5",
        "ext-negative",
        "nan64",
        "negative-nan64",
        "inf64",
        "nan64-payload",
        "nan32",
        "negative-inf32",
        "nested-inf",
        "depth-1025",
        "array32-header-only",
        "map32-header-only",
        "over-default-container-length",
    ],
)
def test_msgpack_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match="MessagePack") as info:
        MsgPackCodec().decode(data)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "value",
    [[1, 2, 3], {"a": 1, "b": 2, "c": 3}, "abc", b"abc"],
    ids=["array", "map", "str", "bin"],
)
def test_msgpack_container_length_limit_is_inclusive(value: Any) -> None:
    codec = MsgPackCodec(max_container_length=3)
    assert codec.decode(msgpack.packb(value, use_bin_type=True)) == value


@pytest.mark.parametrize(
    "value", [[1, 2, 3, 4], {"a": 1, "b": 2, "c": 3, "d": 4}], ids=["array", "map"]
)
def test_msgpack_container_longer_than_the_limit(value: Any) -> None:
    with pytest.raises(DecodeError, match=r"longer than allowed.*exceeds max"):
        MsgPackCodec(max_container_length=3).decode(msgpack.packb(value))


def test_msgpack_accepts_the_documented_depth() -> None:
    assert MsgPackCodec().decode(nested_arrays(MSGPACK_MAX_DEPTH)) is not None


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [(msgpack.packb(1.7e308), 1.7e308), (msgpack.packb(math.inf), None)],
    ids=["finite", "infinity"],
)
def test_msgpack_deep_body_with_a_suspect_float(leaf: bytes, expected: float | None) -> None:
    data = nested_arrays(MSGPACK_MAX_DEPTH, leaf)
    if expected is None:
        with pytest.raises(DecodeError, match="/0/0/0"):
            MsgPackCodec().decode(data)
        return
    value = MsgPackCodec().decode(data)
    for _ in range(MSGPACK_MAX_DEPTH - 1):
        value = value[0]
    assert value == expected


def test_msgpack_accepts_bin_map_keys_as_documented() -> None:
    assert MsgPackCodec().decode(msgpack.packb({b"k": 1}, use_bin_type=True)) == {b"k": 1}


def test_msgpack_timestamp_ext_decodes_to_an_aware_datetime() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    data = msgpack.packb({"when": when}, datetime=True)
    assert MsgPackCodec().decode(data) == {"when": when}


def test_msgpack_decodes_bin_and_64_bit_integers() -> None:
    data = msgpack.packb([b"\x00\xff", 2**64 - 1, -(2**63), 1.5], use_bin_type=True)
    assert MsgPackCodec().decode(data) == [b"\x00\xff", 2**64 - 1, -(2**63), 1.5]


_MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def _holds_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_holds_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_non_finite(v) for v in value.values())
    return False


@settings(max_examples=300, deadline=None)
@given(value=_MSGPACK_VALUES, single_float=st.booleans(), trailing=st.binary(max_size=20))
def test_msgpack_decode_reads_what_msgpack_reads_and_refuses_trailing_bytes(
    value: Any, single_float: bool, trailing: bytes
) -> None:
    try:
        data = msgpack.packb(value, use_bin_type=True, use_single_float=single_float)
    except OverflowError:  # a double past float32's range
        data = msgpack.packb(value, use_bin_type=True)
    expected = msgpack.unpackb(data, raw=False)
    if _holds_non_finite(expected):
        # msgpack < 1.2 rounds a double just past float32's range to float32 infinity.
        with pytest.raises(DecodeError, match="not a finite number"):
            MsgPackCodec().decode(data)
        return
    assert MsgPackCodec().decode(data) == expected
    if trailing:
        with pytest.raises(DecodeError, match="MessagePack"):
            MsgPackCodec().decode(data + trailing)


@pytest.mark.parametrize(
    "trailing",
    [b"\xc4\x10" + bytes(16), b"\xc4\x10", b"\xc0", b"\x92", msgpack.packb(b"x" * 16)],
    ids=["bin16", "bin-header", "nil", "array-header", "bin16-value"],
)
def test_msgpack_trailing_bytes_shaped_like_a_bin_value_are_refused(trailing: bytes) -> None:
    with pytest.raises(DecodeError, match="trailing bytes"):
        MsgPackCodec().decode(msgpack.packb({"a": [1, 2]}) + trailing)


def test_msgpack_finite_float_that_looks_like_nan_prefix() -> None:
    # 0xcb 0x7f 0xef... is the largest finite double: the cheap pre-test fires, the walk clears it.
    assert MsgPackCodec().decode(msgpack.packb([1.7e308, "\xcb\x7f"])) == [1.7e308, "\xcb\x7f"]


# --- decoding: JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Invalid JSON"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "BOM"),
        (b"NaN", "Invalid JSON"),
        (b'{"a": NaN}', "Invalid JSON"),
        (b"[Infinity]", "Invalid JSON"),
        (b"-Infinity", "Invalid JSON"),
        (b"1e400", "infinity"),
        (b"[-1e400]", "infinity"),
        (b"18446744073709551616", "at /: integer outside the 64-bit range"),
        (b"-9223372036854775809", "at /: integer outside the 64-bit range"),
        (b'{"a": [1, 100000000000000000000000000000]}', "at /a/1: integer outside"),
        (b'{"a": 1} x', "Invalid JSON"),
        (b'{"a": 1}{}', "Invalid JSON"),
        (b'{"a": "' + SECRET.encode() + b'"', "Invalid JSON"),
        (b'{"s": "' + SECRET.encode() + b'", "n": NaN}', "Invalid JSON"),
        (b"[" * 1025 + b"]" * 1025, "depth"),
        (b"[" * (JSON_MAX_DEPTH + 2) + b"]" * (JSON_MAX_DEPTH + 2), "depth"),
        (b"{'a': 1}", "Invalid JSON"),
        (b'"\\ud800"', "Invalid JSON"),
    ],
    ids=[
        "empty",
        "invalid-utf8",
        "bom",
        "nan",
        "nan-member",
        "infinity",
        "negative-infinity",
        "1e400",
        "negative-1e400",
        "2**64",
        "below-int64",
        "nested-huge-int",
        "trailing-characters",
        "trailing-document",
        "truncated",
        "nan-after-secret",
        "depth-1025",
        "depth-max+2",
        "single-quotes",
        "lone-surrogate",
    ],
)
def test_json_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match="JSON") as info:
        JSONCodec().decode(data)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"18446744073709551615", 2**64 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"[1.7976931348623157e308]", [1.7976931348623157e308]),
        (b'{"a": 1, "a": 2}', {"a": 2}),
        (b'{"a": {"x": 1}, "b": 0, "a": [3]}', {"a": [3], "b": 0}),
        (b'"12345678901234567890"', "12345678901234567890"),
        (b"1.00000000000000000000001", 1.0),
        (b'"\\u00e9"', "é"),
        (b'"\xc3\xa9"', "é"),
    ],
    ids=[
        "uint64-max",
        "int64-min",
        "largest-double",
        "duplicate-keeps-last",
        "duplicate-nested",
        "long-digit-string",
        "long-digit-float",
        "escape",
        "utf8",
    ],
)
def test_json_decode_values(data: bytes, expected: Any) -> None:
    assert JSONCodec().decode(data) == expected


@pytest.mark.parametrize("adapter", [None, TypeAdapter(list[Any])], ids=["plain", "adapter"])
def test_json_accepts_the_documented_depth(adapter: TypeAdapter[Any] | None) -> None:
    depth = JSON_MAX_DEPTH
    assert JSONCodec().decode(b"[" * depth + b"]" * depth, adapter) is not None


@pytest.mark.parametrize("adapter", [None, TypeAdapter(list[Any])], ids=["plain", "adapter"])
def test_json_refuses_one_level_past_the_documented_depth(
    adapter: TypeAdapter[Any] | None,
) -> None:
    depth = JSON_MAX_DEPTH + 1  # a value (0) inside 201 arrays
    with pytest.raises(DecodeError, match="depth"):
        JSONCodec().decode(b"[" * depth + b"0" + b"]" * depth, adapter)


@pytest.mark.parametrize(
    ("number", "ok"),
    [(b"1234567890123456789", True), (b"18446744073709551616", False), (b"1e400", False)],
    ids=["19-digits", "2**64", "1e400"],
)
def test_json_deep_body_with_a_suspect_number(number: bytes, ok: bool) -> None:
    depth = JSON_MAX_DEPTH
    data = b"[" * depth + number + b"]" * depth
    if not ok:
        with pytest.raises(DecodeError, match="/0/0/0"):
            JSONCodec().decode(data)
        return
    value = JSONCodec().decode(data)
    for _ in range(depth):
        value = value[0]
    assert value == int(number)


# --- decoding through an adapter -------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_decode_with_adapter_validates(codec: Codec) -> None:
    ta = TypeAdapter(Point)
    assert codec.decode(codec.encode({"x": 1, "label": "q"}), ta) == Point(x=1, label="q")
    with pytest.raises(ValidationError):
        codec.decode(codec.encode({"x": "not a number"}), ta)
    with pytest.raises(ValidationError):
        codec.decode(codec.encode([1, 2]), ta)


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_decode_with_adapter_reads_the_policy_representation(codec: Codec) -> None:
    ta = TypeAdapter(Everything)
    assert codec.decode(codec.encode(EVERYTHING, ta), ta) == EVERYTHING


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_decode_with_adapter_checks_the_policy_first(codec: Codec) -> None:
    bad = b"[NaN]" if isinstance(codec, JSONCodec) else msgpack.packb([math.nan])
    with pytest.raises(DecodeError):
        codec.decode(bad, TypeAdapter(list[float]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b'{"x": "\xff"}',
        b'\xef\xbb\xbf{"x": 1}',
        b'{"x": NaN}',
        b'{"x": 1e400}',
        b'{"x": 18446744073709551616}',
        b'{"x": 1} x',
        b'{"x": 1',
        b'{"x": "\\ud800"}',
        b"[" * (JSON_MAX_DEPTH + 2) + b"]" * (JSON_MAX_DEPTH + 2),
    ],
    ids=[
        "empty",
        "invalid-utf8",
        "bom",
        "nan",
        "1e400",
        "2**64",
        "trailing",
        "truncated",
        "lone-surrogate",
        "too-deep",
    ],
)
def test_json_malformed_is_a_decode_error_with_an_adapter(data: bytes) -> None:
    with pytest.raises(DecodeError, match="JSON"):
        JSONCodec().decode(data, TypeAdapter(Point))


def test_json_duplicate_keys_keep_the_last_with_an_adapter() -> None:
    assert JSONCodec().decode(b'{"x": 1, "x": 2}', TypeAdapter(Point)) == Point(x=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [([1.5, 127, -1], False), ([math.nan], True), ([-math.nan], True), ({"a": -math.inf}, True)],
    ids=["finite", "nan", "negative-nan", "negative-inf"],
)
def test_msgpack_may_hide_non_finite_in_what_it_writes(value: Any, expected: bool) -> None:
    assert MsgPackCodec.may_hide_non_finite(msgpack.packb(value)) is expected
