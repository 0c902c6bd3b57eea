"""The MessagePack fast path writes plain models from their fields (ormsgpack) as pydantic would;
JSON is pydantic's own bytes."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    TypeAdapter,
    computed_field,
    field_serializer,
)

from fastapi_serdes import EncodeError, JSONCodec, MsgPackCodec
from fastapi_serdes.codecs.plain_models import plain_classes
from fastapi_serdes.codecs.value_policy import walk


class Color(enum.Enum):
    RED = "red"


class Address(BaseModel):
    city: str
    lat: float


class User(BaseModel):
    id: int
    name: str
    born: datetime.datetime
    day: datetime.date
    key: uuid.UUID
    price: Decimal
    color: Color
    kind: Literal["a", "b"] = "a"
    tags: list[str] = []
    scores: dict[str, float] = {}
    address: Address | None = None
    friends: list[Address] = []
    wait: datetime.timedelta = datetime.timedelta(seconds=5)


class WithSecret(User):
    password: str = "hunter2"


USER = User(
    id=1,
    name="ada",
    born=datetime.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
    day=datetime.date(2020, 1, 2),
    key=uuid.UUID(int=7),
    price=Decimal("1.50"),
    color=Color.RED,
    tags=["x"],
    scores={"a": 1.5},
    address=Address(city="Paris", lat=48.8),
    friends=[Address(city="Lyon", lat=45.7)],
)


def test_plain_models_pack_like_pydantic() -> None:
    adapter = TypeAdapter(list[User])
    assert plain_classes(list[User]) == {User, Address}
    packed = MsgPackCodec().encode([USER, USER], adapter)
    assert msgpack.unpackb(packed) == orjson.loads(JSONCodec().encode([USER, USER], adapter))


def test_json_is_pydantics_exact_bytes() -> None:
    adapter = TypeAdapter(list[User])
    assert JSONCodec().encode([USER, USER], adapter) == adapter.dump_json([USER, USER])


@pytest.mark.parametrize("codec", [JSONCodec(), MsgPackCodec()], ids=["json", "msgpack"])
def test_a_subclass_instance_never_leaks_its_extra_fields(codec: JSONCodec | MsgPackCodec) -> None:
    adapter = TypeAdapter(list[User])
    leaky = WithSecret(**USER.model_dump())
    data = codec.encode([leaky, USER], adapter)
    decoded = orjson.loads(data) if isinstance(codec, JSONCodec) else msgpack.unpackb(data)
    assert "password" not in decoded[0]
    assert decoded[0] == decoded[1]


class Parent(BaseModel):
    a: int


class Child(Parent):
    secret: str = "s"


class Holder(BaseModel):
    parent: Parent
    child: Child


def test_a_type_reaching_a_class_and_its_subclass_is_not_plain() -> None:
    # A Child in the ``parent`` field is written with Parent's fields only: the hook could not
    # tell, so such types always go through pydantic.
    assert plain_classes(Holder) is None
    value = Holder(parent=Child(a=1), child=Child(a=2))
    for codec in (JSONCodec(), MsgPackCodec()):
        data = codec.encode(value, TypeAdapter(Holder))
        decoded = orjson.loads(data) if isinstance(codec, JSONCodec) else msgpack.unpackb(data)
        assert decoded["parent"] == {"a": 1}


class Aliased(BaseModel):
    user_id: int = Field(serialization_alias="userId")


class Generated(BaseModel):
    model_config = ConfigDict(alias_generator=lambda name: name.upper())
    a: int


class Computed(BaseModel):
    a: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def b(self) -> int:
        return self.a + 1


class Serialized(BaseModel):
    a: int

    @field_serializer("a")
    def _a(self, a: int) -> str:
        return str(a)


class WithPlainSerializer(BaseModel):
    a: Annotated[int, PlainSerializer(lambda v: v * 2)]


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int


class Excluded(BaseModel):
    a: int
    secret: str = Field(default="s", exclude=True)


class Loose(BaseModel):
    a: Any


@pytest.mark.parametrize(
    "tp",
    [
        Aliased,
        Generated,
        Computed,
        Serialized,
        WithPlainSerializer,
        Extra,
        Excluded,
        Loose,
        RootModel[int],
        list[Aliased],
        dict[int, Address],
    ],
)
def test_not_plain_types_take_the_general_path(tp: Any) -> None:
    assert plain_classes(tp) is None


class BytesAsBase64(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64")
    data: bytes


def test_json_only_settings_are_pydantics() -> None:
    assert plain_classes(BytesAsBase64) == {BytesAsBase64}  # MessagePack: bin, natively
    value = BytesAsBase64(data=b"hi")
    adapter = TypeAdapter(BytesAsBase64)
    assert JSONCodec().encode(value, adapter) == adapter.dump_json(value) == b'{"data":"aGk="}'


@pytest.mark.parametrize(
    ("value", "tp"),
    [
        (Aliased(user_id=1), Aliased),
        (Computed(a=1), Computed),
        (Serialized(a=1), Serialized),
        (Excluded(a=1), Excluded),
        (Extra(a=1, b=2), Extra),
    ],
)
def test_general_path_output_still_matches_json(value: BaseModel, tp: Any) -> None:
    adapter = TypeAdapter(tp)
    packed = MsgPackCodec().encode(value, adapter, {"by_alias": True})
    expected = orjson.loads(JSONCodec().encode(value, adapter, {"by_alias": True}))
    assert msgpack.unpackb(packed) == expected


@pytest.mark.parametrize("codec", [JSONCodec(), MsgPackCodec()], ids=["json", "msgpack"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_the_value_policy_holds_on_the_fast_path(
    codec: JSONCodec | MsgPackCodec, bad: float
) -> None:
    good = Address(city="y", lat=1.0)
    with pytest.raises(EncodeError, match="/1/lat"):
        codec.encode([good, Address(city="x", lat=bad)], TypeAdapter(list[Address]))
    # A float outside a model field (dict[str, float]) too.
    loose = USER.model_copy(update={"scores": {"a": 1.0, "b": bad}})
    with pytest.raises(EncodeError, match="/scores/b"):
        codec.encode(loose, TypeAdapter(User))


def test_integers_past_64_bits_leave_the_fast_path() -> None:
    big = USER.model_copy(update={"id": 2**64})
    with pytest.raises(EncodeError, match="/id"):
        MsgPackCodec().encode(big, TypeAdapter(User))
    # JSON writes them exactly, as pydantic does.
    assert JSONCodec().encode(big, TypeAdapter(User)) == TypeAdapter(User).dump_json(big)


def test_unions_reach_every_member() -> None:
    assert plain_classes(Address | User | None) == {Address, User}
    adapter = TypeAdapter(Address | User | None)
    for value in (None, USER, Address(city="z", lat=2.5)):
        assert JSONCodec().encode(value, adapter) == adapter.dump_json(value)
    leaky = WithSecret(**USER.model_dump())
    assert b"password" not in JSONCodec().encode(leaky, adapter)
    assert "password" not in msgpack.unpackb(MsgPackCodec().encode(leaky, adapter))


class Tree(BaseModel):
    name: str
    weight: float | None = None
    children: list[Tree] = []


def test_recursive_models_are_plain() -> None:
    assert plain_classes(Tree) == {Tree}
    tree = Tree(name="a", children=[Tree(name="b", weight=1.5, children=[Tree(name="c")])])
    assert JSONCodec().encode(tree, TypeAdapter(Tree)) == tree.model_dump_json().encode()
    bad = Tree(name="a", children=[Tree(name="b", children=[Tree(name="c", weight=1e400)])])
    for codec in (JSONCodec(), MsgPackCodec()):
        with pytest.raises(EncodeError, match="/children/0/children/0/weight"):
            codec.encode(bad, TypeAdapter(Tree))


# What the JSON codec writes is byte for byte what pydantic writes, for every scalar a plain
# model can hold, and MessagePack's fast path gives the same data.
class Scalars(BaseModel):
    text: str
    number: int
    ratio: float | None
    flag: bool
    when: datetime.datetime
    day: datetime.date
    wait: datetime.timedelta
    key: uuid.UUID
    price: Decimal
    color: Color
    blob: bytes
    names: set[str]
    table: dict[str, list[int]]


_ZONES = st.sampled_from(
    [None, datetime.UTC, datetime.timezone(datetime.timedelta(hours=-3, minutes=-30))]
)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        Scalars,
        text=st.text(),
        number=st.integers(min_value=-(2**70), max_value=2**70),
        ratio=st.none() | st.floats(allow_nan=False, allow_infinity=False),
        flag=st.booleans(),
        when=st.datetimes(timezones=_ZONES),
        day=st.dates(),
        wait=st.timedeltas(),
        key=st.uuids(),
        price=st.decimals(allow_nan=False, allow_infinity=False),
        color=st.sampled_from(Color),
        blob=st.text().map(str.encode),
        names=st.sets(st.text(max_size=3), max_size=3),
        table=st.dictionaries(st.text(max_size=3), st.lists(st.integers(), max_size=3)),
    )
)
def test_json_writes_pydantics_bytes_and_msgpack_the_same_data(value: Scalars) -> None:
    assert plain_classes(list[Scalars]) == {Scalars}  # the MessagePack fast path really runs
    adapter = TypeAdapter(list[Scalars])
    assert JSONCodec().encode([value], adapter) == adapter.dump_json([value])
    if walk(value) is None:  # MessagePack refuses integers past 64 bits (tested elsewhere)
        packed = msgpack.unpackb(MsgPackCodec().encode([value], adapter), raw=False)
        expected = adapter.dump_python([value], mode="json")
        packed[0]["names"] = sorted(packed[0]["names"])
        expected[0]["names"] = sorted(expected[0]["names"])
        packed[0]["blob"] = packed[0]["blob"].decode()  # bin in MessagePack, text in JSON
        assert packed == expected


class Clock(BaseModel):
    at: datetime.time


def test_times_are_written_as_pydantic_writes_them() -> None:
    # orjson 3.13 writes time(0, 0, 0, 10000) as "00:00:00.10000": JSON is pydantic's.
    assert plain_classes(Clock) == {Clock}
    value = Clock(at=datetime.time(0, 0, 0, 10000))
    assert JSONCodec().encode(value, TypeAdapter(Clock)) == b'{"at":"00:00:00.010000"}'
    assert msgpack.unpackb(MsgPackCodec().encode(value, TypeAdapter(Clock))) == {
        "at": "00:00:00.010000"
    }
