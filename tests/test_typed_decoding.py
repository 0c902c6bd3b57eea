"""Decoding into a type under the number policy: what the walk finds in validated values, and
that the codecs decode exactly as parsing and walking the whole body would, except under a key
the type ignores (dropped with the key, unread)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import from_json

from fastapi_serdes import DecodeError, JSONCodec, MsgPackCodec
from fastapi_serdes.codecs.value_policy import INT_REASON, walk


class Color(enum.IntEnum):
    RED = 1


class Address(BaseModel):
    city: str
    zip_code: int | None = None


class User(BaseModel):
    id: int
    name: str
    score: float
    tags: list[str] = []
    address: Address | None = None
    created: datetime.datetime | None = None
    ref: uuid.UUID | None = None
    color: Color = Color.RED
    kind: Literal["a", "b"] = "a"


class Tree(BaseModel):
    value: int
    children: list[Tree] = []


class Cat(BaseModel):
    lives: int


class Dog(BaseModel):
    weight: float


class Pets(BaseModel):
    pets: list[Cat | Dog]
    by_name: dict[str, float] = {}
    either: int | str = 0
    pair: tuple[int, ...] = ()
    members: Sequence[int] = ()
    nothing: int = None  # type: ignore[assignment]  # pydantic keeps the default unvalidated


class NoNumbers(BaseModel):
    name: str
    when: datetime.date
    flags: list[bool] = []


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int


class PreValidated(BaseModel):
    id: int

    @field_validator("id", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        return value


class WholePre(BaseModel):
    id: int

    @model_validator(mode="before")
    @classmethod
    def _raw(cls, value: Any) -> Any:
        return value


class AfterOnly(BaseModel):
    id: Annotated[int, AfterValidator(lambda v: v), Field(ge=0)]

    @field_validator("id")
    @classmethod
    def _same(cls, value: int) -> int:
        return value


@dataclasses.dataclass
class Plain:
    id: int


# Every kind of type a body can be decoded into: the policy holds in each, whatever validators
# or extra fields it has (there is no per-type check left to get wrong).
TYPES = [
    list[User],
    Pets,
    AfterOnly,
    Loose,
    PreValidated,
    WholePre,
    Annotated[int, BeforeValidator(int)],
    RootModel[list[int]],
    Plain,
    dict[str, list[int]],
    list[Any],
    Any,
]
BAD_BODIES = {
    list[User]: b'[{"id": 18446744073709551616, "name": "a", "score": 1}]',
    Pets: b'{"pets": [{"weight": 1e400}]}',
    AfterOnly: b'{"id": 18446744073709551616}',
    Loose: b'{"id": 1, "other": [1e400]}',
    PreValidated: b'{"id": 18446744073709551616}',
    WholePre: b'{"id": -9223372036854775809}',
    Annotated[int, BeforeValidator(int)]: b"18446744073709551616",
    RootModel[list[int]]: b"[1, 18446744073709551616]",
    Plain: b'{"id": 18446744073709551616}',
    dict[str, list[int]]: b'{"a": [1e400]}',
    list[Any]: b"[1, [2, 1e400]]",
    Any: b'{"a": 18446744073709551616}',
}


@pytest.mark.parametrize("tp", TYPES, ids=repr)
def test_every_type_refuses_a_number_outside_the_policy(tp: Any) -> None:
    with pytest.raises(DecodeError, match="Invalid JSON number at /"):
        JSONCodec().decode(BAD_BODIES[tp], TypeAdapter(tp))


def test_a_type_without_numbers_passes_anything() -> None:
    assert walk(NoNumbers(name="x", when=datetime.date(2024, 1, 1))) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Tree(value=1, children=[Tree(value=2)]), None),
        (Tree(value=2**64), (("value",), INT_REASON)),
        (Tree(value=-(2**63) - 1), (("value",), INT_REASON)),
        (Tree(value=2**64 - 1), None),
        (Tree(value=-(2**63)), None),
        (
            Tree(value=1, children=[Tree(value=2), Tree(value=3, children=[Tree(value=2**70)])]),
            (("children", 1, "children", 0, "value"), INT_REASON),
        ),
    ],
    ids=["fine", "2**64", "below-int64", "uint64-max", "int64-min", "recursive"],
)
def test_the_walk_locates_the_problem(value: Tree, expected: Any) -> None:
    assert walk(value) == expected


def test_the_walk_reports_non_finite_floats_in_models() -> None:
    assert walk([Dog(weight=1.5), Dog(weight=math.inf)]) == (
        (1, "weight"),
        "infinity is not a finite number",
    )
    assert walk([Dog(weight=math.nan)]) == ((0, "weight"), "NaN is not a finite number")
    assert walk([Dog(weight=-1e19)]) is None


def test_union_members_are_walked_as_what_they_are() -> None:
    check = walk
    fine = Pets(pets=[Cat(lives=9), Dog(weight=3.5)], by_name={"a": 1.0}, either="x")
    assert check(fine) is None
    bad_dog = Pets(pets=[Cat(lives=9), Dog(weight=math.inf)])
    assert check(bad_dog) == (("pets", 1, "weight"), "infinity is not a finite number")
    bad_map = Pets(pets=[], by_name={"a": 1.0, "b": -math.inf})
    assert check(bad_map) == (("by_name", "b"), "-infinity is not a finite number")
    bad_union = Pets(pets=[], either=2**64)
    assert check(bad_union) == (("either",), INT_REASON)
    bad_tuple = Pets(pets=[], pair=(1, 2**64))
    assert check(bad_tuple) == (("pair", 1), INT_REASON)


# --- through the JSON codec ------------------------------------------------------------------

USERS = TypeAdapter(list[User])


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b'[{"id": 18446744073709551616, "name": "a", "score": 1}]', "/0/id"),
        (b'[{"id": -9223372036854775809, "name": "a", "score": 1}]', "/0/id"),
        (b'[{"id": 1, "name": "a", "score": 1e400}]', "/0/score"),
        (b'[{"id": 1, "name": "a", "score": -1E+999}]', "/0/score"),
        (b'[{"id": 1, "name": "a", "score": 18446744073709551616}]', "/0/score"),
        (
            b'[{"id": 1, "name": "a", "score": 1, "address": {"city": "x", "zip_code": -1e999}}]',
            "/0/address/zip_code",
        ),
        (b'[{"id": 1, "name": 1e400, "score": 1}]', "/0/name"),
        (b'[{"id": 1, "name": 18446744073709551616, "score": 1}]', "/0/name"),
        (b'[{"id": 1, "name": "a", "score": "NaN"}]', "/0/score: NaN"),
        (b'[{"id": 1, "name": "a", "score": "-inf"}]', "/0/score: -infinity"),
    ],
    ids=[
        "2**64-int",
        "below-int64",
        "1e400",
        "-1E+999",
        "2**64-in-float",
        "-1e999-in-nested-int",
        "1e400-in-str",
        "2**64-in-str",
        "nan-string-in-float",
        "inf-string-in-float",
    ],
)
def test_numbers_outside_the_policy_are_400s(body: bytes, location: str) -> None:
    with pytest.raises(DecodeError, match="Invalid JSON number at") as info:
        JSONCodec().decode(body, USERS)
    assert location in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"id": 1, "name": "a", "score": NaN}]',
        b'[{"id": 1, "name": "a", "score": Infinity}]',
        b'[{"id": 1, "name": "a", "score": -Infinity}]',
        b'[{"id": 1, "name": "a", "score": 1, "ignored": NaN}]',
        b'[{"id": 1, "name": "Nice Nora Ned Nick Nat Nell Noor Nina Nils Nadia Nico Nova '
        b"Nate Nia Noel Neve Nyla Nash Nell Nile Nox Nuri Naya Nemo Neil Nita Nola Nick Ned "
        b'Nan Nat Nev Nim", "score": 1, "ignored": NaN}]',
    ],
    ids=["nan", "infinity", "-infinity", "nan-in-an-ignored-key", "nan-after-many-capital-n"],
)
def test_nan_and_infinity_literals_are_invalid_json_anywhere(body: bytes) -> None:
    with pytest.raises(DecodeError, match="Invalid JSON"):
        JSONCodec().decode(body, USERS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"id": 18446744073709551615, "name": "a", "score": 1}]', 2**64 - 1),
        (b'[{"id": -9223372036854775808, "name": "a", "score": 1}]', -(2**63)),
        (b'[{"id": 1e18, "name": "a", "score": 1}]', 10**18),
        (b'[{"id": 1, "name": "a", "score": 1e19}]', 1e19),
        (b'[{"id": 1, "name": "a", "score": 9223372036854775807}]', 9223372036854775807.0),
        (b'[{"id": 1, "name": "NaN or Infinity", "score": 1.5}]', 1.5),
        (b'[{"id": 1, "name": "a", "score": 1, "ignored": 1e400}]', 1),
    ],
    ids=[
        "uint64-max",
        "int64-min",
        "1e18-in-int",
        "1e19-float",
        "int64-max-in-float",
        "literals-in-a-string",
        "ignored-key-dropped-unread",
    ],
)
def test_numbers_inside_the_policy_are_read(body: bytes, expected: Any) -> None:
    [user] = JSONCodec().decode(body, USERS)
    assert expected in (user.id, user.score, user.name)


@pytest.mark.parametrize(
    "body",
    [b'[{"id": "x", "name": "a", "score": 1}]', b'[{"id": 1e20, "name": "a", "score": 1}]'],
    ids=["str-in-int", "1e20-in-int"],
)
def test_a_validation_error_without_a_bad_number_stays_a_422(body: bytes) -> None:
    with pytest.raises(ValidationError):
        JSONCodec().decode(body, USERS)


def test_a_strict_model_is_validated_in_json_mode_even_when_the_bytes_look_suspect() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(strict=True)
        when: datetime.datetime
        ref: Decimal  # a long digit string: still validated from the bytes, in JSON mode

    body = b'{"when": "2024-01-01T00:00:00Z", "ref": "1234567890123456789012"}'
    value = JSONCodec().decode(body, TypeAdapter(Strict))
    assert value.ref == Decimal("1234567890123456789012")


def test_an_after_validator_returning_another_type_falls_back_to_the_bytes() -> None:
    class Odd(BaseModel):
        id: Annotated[int, AfterValidator(str)]  # the value holds a str: the body tells

    assert JSONCodec().decode(b'{"id": 5}', TypeAdapter(Odd)).id == "5"
    with pytest.raises(DecodeError, match="/id"):
        JSONCodec().decode(b'{"id": 18446744073709551616}', TypeAdapter(Odd))


# --- decoding agrees with parsing and walking the whole body -----------------------------

_NUMBERS = st.sampled_from(
    [
        "0",
        "-1",
        "1.5",
        "1e19",
        "1e20",
        "1e300",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "9223372036854775807",
        "123456789012345678901234567890",
        '"12345678901234567890"',
        '"NaN"',
        "null",
    ]
)


@st.composite
def _pets_bodies(draw: st.DrawFn) -> bytes:
    def pet() -> str:
        if draw(st.booleans()):
            return f'{{"lives": {draw(_NUMBERS)}}}'
        return f'{{"weight": {draw(_NUMBERS)}}}'

    pets = ", ".join(pet() for _ in range(draw(st.integers(0, 3))))
    names = ", ".join(f'"k{i}": {draw(_NUMBERS)}' for i in range(draw(st.integers(0, 2))))
    pair = ", ".join(draw(_NUMBERS) for _ in range(draw(st.integers(0, 2))))
    return (
        f'{{"pets": [{pets}], "by_name": {{{names}}}, "either": {draw(_NUMBERS)}, '
        f'"pair": [{pair}], "members": [{draw(_NUMBERS)}]}}'
    ).encode()


def _reference(data: bytes, adapter: TypeAdapter[Any]) -> Any:
    """What decoding must give: the whole body parsed and walked first, then validated."""
    try:
        obj = from_json(data, allow_inf_nan=False)
    except ValueError:
        return DecodeError
    if walk(obj) is not None:
        return DecodeError
    try:
        value = adapter.validate_json(data)
    except ValidationError:
        return ValidationError
    # A "NaN" string read into a float field: found in the validated value.
    return DecodeError if walk(value) is not None else value


@settings(max_examples=400, deadline=None)
@given(_pets_bodies())
def test_decode_agrees_with_parsing_and_walking_the_whole_body(data: bytes) -> None:
    adapter = TypeAdapter(Pets)
    expected = _reference(data, adapter)
    try:
        got: Any = JSONCodec().decode(data, adapter)
    except (DecodeError, ValidationError) as exc:
        got = type(exc)
    assert got == expected


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_msgpack_non_finite_strings_read_into_float_fields_are_refused(text: str) -> None:
    codec = MsgPackCodec()
    data = msgpack.packb([{"id": 1, "name": "a", "score": text}])
    with pytest.raises(DecodeError, match="/0/score"):
        codec.decode(data, USERS)
    assert (
        codec.decode(msgpack.packb([{"id": 1, "name": text, "score": 2.5}]), USERS)[0].name == text
    )


@pytest.mark.parametrize(
    ("user", "location"),
    [
        ({"id": 1, "name": "a", "score": math.nan}, "/0/score: NaN"),
        ({"id": 1, "name": "a", "score": -math.inf}, "/0/score: -infinity"),
        ({"id": math.inf, "name": "a", "score": 1.0}, "/0/id: infinity"),
        ({"id": 1, "name": math.nan, "score": 1.0}, "/0/name: NaN"),
    ],
    ids=["nan-in-float", "-inf-in-float", "inf-in-int", "nan-in-str"],
)
def test_msgpack_non_finite_floats_in_typed_fields_are_400s(
    user: dict[str, Any], location: str
) -> None:
    # Found in the validated value, or (when validation fails on them) in the decoded body:
    # a 400 either way, never the 422 pydantic would make of an infinite id.
    with pytest.raises(DecodeError, match="Invalid MessagePack value at") as info:
        MsgPackCodec().decode(msgpack.packb([user]), USERS)
    assert location in str(info.value)


def test_msgpack_non_finite_float_under_an_ignored_key_is_dropped_with_it() -> None:
    data = msgpack.packb([{"id": 1, "name": "a", "score": 1.0, "ignored": math.nan}])
    [user] = MsgPackCodec().decode(data, USERS)
    assert user.score == 1.0
    assert "ignored" not in user.__dict__


@pytest.mark.parametrize("adapter", [None, TypeAdapter(Any), TypeAdapter(Loose)], ids=str)
def test_msgpack_non_finite_floats_anywhere_in_unchecked_bodies_are_400s(
    adapter: TypeAdapter[Any] | None,
) -> None:
    data = msgpack.packb({"id": 1, "extra": [1.0, math.inf]})
    with pytest.raises(DecodeError, match="/extra/1: infinity"):
        MsgPackCodec().decode(data, adapter)
