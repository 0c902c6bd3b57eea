"""The MessagePack fast path packs plain models natively, with pydantic's exact output."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgpack
import orjson
import pytest
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
from fastapi_serdes.plain_models import plain_checker


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
    assert plain_checker(list[User]) is not None
    packed = MsgPackCodec().encode([USER, USER], adapter)
    assert msgpack.unpackb(packed) == orjson.loads(JSONCodec().encode([USER, USER], adapter))


def test_a_subclass_instance_never_leaks_its_extra_fields() -> None:
    adapter = TypeAdapter(list[User])
    leaky = WithSecret(**USER.model_dump())
    packed = MsgPackCodec().encode([leaky], adapter)
    assert "password" not in msgpack.unpackb(packed)[0]
    check = plain_checker(list[User])
    assert check is not None
    assert not check([leaky])


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
    assert plain_checker(tp) is None


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


def test_the_value_policy_holds_on_the_fast_path() -> None:
    bad = Address(city="x", lat=float("nan"))
    with pytest.raises(EncodeError, match="/0/lat"):
        MsgPackCodec().encode([bad], TypeAdapter(list[Address]))
    big = USER.model_copy(update={"id": 2**64})
    with pytest.raises(EncodeError, match="/id"):
        MsgPackCodec().encode(big, TypeAdapter(User))


def test_unions_dispatch_on_the_exact_class() -> None:
    check = plain_checker(Address | User | None)
    assert check is not None
    assert check(None)
    assert check(USER)
    assert not check(WithSecret(**USER.model_dump()))
