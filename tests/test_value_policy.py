"""The number policy: number_problem, the iterative walk, the look before it, and describe."""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, computed_field
from pydantic.alias_generators import to_camel

from fastapi_serdes import EncodeError
from fastapi_serdes.codecs import JSONCodec, MsgPackCodec
from fastapi_serdes.codecs.value_policy import (
    INT_MAX,
    INT_MIN,
    describe,
    find_bad_number,
    msgpack_may_hold_non_finite,
    number_problem,
    walk,
)

NAN = math.nan
INF = math.inf
NAN_REASON = "NaN is not a finite number"
INF_REASON = "infinity is not a finite number"
NEG_INF_REASON = "-infinity is not a finite number"
INT_REASON = "integer outside the 64-bit range [-2**63, 2**64-1]"


class MyInt(int):
    pass


class MyFloat(float):
    pass


class Color(enum.Enum):
    RED = 1.5


class Score(BaseModel):
    name: str = "s"
    value: float = 1.0


class Outer(BaseModel):
    label: str = "o"
    score: Score = Score()
    scores: list[Score] = []
    by_name: dict[str, Score] = {}
    anything: Any = None
    count: int = 0


class Computed(BaseModel):
    name: str = "c"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        return NAN


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "e"


class Pair(NamedTuple):
    a: float
    b: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


# --- number_problem --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NAN, NAN_REASON),
        (-NAN, NAN_REASON),
        (INF, INF_REASON),
        (-INF, NEG_INF_REASON),
        (MyFloat("nan"), NAN_REASON),
        (1.5, None),
        (-0.0, None),
        (1.7976931348623157e308, None),
        (INT_MAX, None),
        (INT_MAX + 1, INT_REASON),
        (INT_MIN, None),
        (INT_MIN - 1, INT_REASON),
        (MyInt(2**64), INT_REASON),
        (True, None),
        ("nan", None),
        (Decimal("NaN"), None),
        (None, None),
        ([NAN], None),
    ],
    ids=repr,
)
def test_number_problem(value: Any, expected: str | None) -> None:
    assert number_problem(value) == expected


def test_number_problem_ints_false() -> None:
    assert number_problem(2**64, ints=False) is None
    assert number_problem(NAN, ints=False) == NAN_REASON


def test_integer_bounds_are_64_bit() -> None:
    assert (INT_MIN, INT_MAX) == (-(2**63), 2**64 - 1)


# --- walk ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("text", None),
        (1.5, None),
        ([], None),
        ({"a": [1, 2.5, "x", None, True, {"b": INT_MAX}]}, None),
        (NAN, ((), NAN_REASON)),
        ([1, 2, INF], ((2,), INF_REASON)),
        ((0, (1, -INF)), ((1, 1), NEG_INF_REASON)),
        ({"a": {"b": [0, {"c": NAN}]}}, (("a", "b", 1, "c"), NAN_REASON)),
        ({"a/b": {"m~n": NAN}}, (("a/b", "m~n"), NAN_REASON)),
        (frozenset({2**64}), ((0,), INT_REASON)),
        ({"k": [INT_MIN - 1]}, (("k", 0), INT_REASON)),
        (Score(value=INF), (("value",), INF_REASON)),
        ({"s": [Score(), Score(value=NAN)]}, (("s", 1, "value"), NAN_REASON)),
        (Outer(scores=[Score(), Score(value=NAN)]), (("scores", 1, "value"), NAN_REASON)),
        (Outer(by_name={"x": Score(value=-INF)}), (("by_name", "x", "value"), NEG_INF_REASON)),
        (Outer(anything={"deep": [NAN]}), (("anything", "deep", 0), NAN_REASON)),
        (Outer(count=2**64), (("count",), INT_REASON)),
        (Computed(), (("ratio",), NAN_REASON)),
        (Extra(score=INF), (("score",), INF_REASON)),
        (Pair(a=NAN, b="x"), ((0,), NAN_REASON)),
        (Point(x=1.0, y=-INF), (("y",), NEG_INF_REASON)),
        (Point, None),
        (Color.RED, None),
        (RootModel[float](NAN), (("root",), NAN_REASON)),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_walk(value: Any, expected: Any) -> None:
    assert walk(value) == expected


def test_walk_reports_the_first_problem_in_document_order() -> None:
    assert walk({"a": 1, "b": [0, NAN], "c": INF}) == (("b", 1), NAN_REASON)
    assert walk([[1, [2, INF]], NAN]) == ((0, 1, 1), INF_REASON)


def test_walk_locates_non_str_keys_by_their_text() -> None:
    found = walk({1: NAN})
    assert found is not None
    assert describe(found) == "/1: NaN is not a finite number"


def test_walk_ints_false_checks_only_floats() -> None:
    assert walk({"big": 2**64, "nan": NAN}, ints=False) == (("nan",), NAN_REASON)
    assert walk([2**64, INT_MIN - 1], ints=False) is None


def test_walk_is_iterative() -> None:
    # Deeper than the recursion limit and than any codec lets through (msgpack: 1024).
    value: Any = NAN
    for _ in range(3_000):
        value = [value]
    assert walk(value) == ((0,) * 3_000, NAN_REASON)


# --- describe --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ((("items", 3, "score"), NAN_REASON), "/items/3/score: NaN is not a finite number"),
        (((), INF_REASON), "/: infinity is not a finite number"),
        ((("a/b", "m~n"), "bad"), "/a~1b/m~0n: bad"),
        ((("",), "bad"), "/: bad"),
    ],
    ids=["nested", "root", "escaped", "empty-key"],
)
def test_describe(problem: Any, expected: str) -> None:
    assert describe(problem) == expected


def test_describe_a_walk_result() -> None:
    found = walk(Outer(scores=[Score(value=NAN)]))
    assert found is not None
    assert describe(found) == "/scores/0/value: NaN is not a finite number"


# --- json_null_markers -----------------------------------------------------------------------


class Names(BaseModel):
    first: str
    others: list[str]
    when: datetime
    ident: uuid.UUID
    price: Decimal
    count: int
    flag: bool
    color: Color


class Scored(BaseModel):
    score: float
    maybe: float | None = None
    name: str = "x"


class Aliased(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)
    my_score: float = Field(alias="s")
    other_score: float = 0.0


class Wrapper(BaseModel):
    one: Scored
    many: list[Scored] = []
    by_name: dict[str, Scored] = {}


class Recursive(BaseModel):
    value: float = 0.0
    children: list[Recursive] = []


class WithList(BaseModel):
    values: list[float]


@pytest.mark.parametrize(
    ("tp", "value"),
    [
        (Scored, Scored(score=NAN)),
        (Scored, Scored(score=1.0, maybe=INF)),
        (Aliased, Aliased(s=1.0, otherScore=-INF)),
        (Wrapper, Wrapper(one=Scored(score=1.0), many=[Scored(score=NAN)])),
        (dict[str, Scored], {"k": Scored(score=INF)}),
        (Recursive, Recursive(children=[Recursive(value=NAN)])),
        (Computed, Computed()),
    ],
    ids=["field", "optional-field", "alias", "nested-list", "dict-values", "recursive", "computed"],
)
def test_a_nan_hidden_behind_a_json_null_is_refused(tp: Any, value: Any) -> None:
    adapter = TypeAdapter(tp)
    assert b"null" in adapter.dump_json(value, by_alias=True)  # what pydantic would have sent
    with pytest.raises(EncodeError, match="is not a finite number"):
        JSONCodec().encode(value, adapter, {"by_alias": True})
    with pytest.raises(EncodeError, match="is not a finite number"):
        JSONCodec().encode(value, adapter)


@pytest.mark.parametrize(
    "value",
    [
        [
            Names(
                first="a",
                others=[],
                when=datetime(2024, 1, 1),
                ident=uuid.UUID(int=1),
                price=Decimal("1.5"),
                count=INT_MAX,
                flag=True,
                color=Color.RED,
            )
        ],
        Scored(score=1.0, maybe=None),
        {"a": None, "b": [1.7976931348623157e308, -0.0]},
    ],
    ids=["no-floats", "a-real-none", "finite-next-to-nulls"],
)
def test_real_nulls_encode(value: Any) -> None:
    assert JSONCodec().decode(JSONCodec().encode(value)) is not None


# --- the look before the walk ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, "x", None, 1.5, b"\xcb\x7f\xf0"]}, None),
        ({"a": [1, {"b": INF}]}, (("a", 1, "b"), INF_REASON)),
        ({"a": [1, -NAN]}, (("a", 1), NAN_REASON)),
        ({"a": [INT_MAX + 1]}, (("a", 0), INT_REASON)),
        ({1: [NAN]}, ((1, 0), NAN_REASON)),
        (Outer(scores=[Score(value=NAN)]), (("scores", 0, "value"), NAN_REASON)),
        (Extra(score=INF), (("score",), INF_REASON)),
        ({"deep": [object(), NAN]}, (("deep", 1), NAN_REASON)),
        (MyFloat("inf"), ((), INF_REASON)),
        (MappingProxyType({"a": frozenset({NAN})}), (("a", 0), NAN_REASON)),
        ([Point(x=1.0, y=INF)], ((0, "y"), INF_REASON)),
        ({"d": Decimal("NaN"), "u": uuid.UUID(int=1), "when": datetime(2024, 1, 1)}, None),
    ],
    ids=[
        "clean",
        "inf",
        "negative-nan",
        "int",
        "int-key",
        "model",
        "extra",
        "unpackable",
        "float-subclass",
        "mapping-and-set",
        "dataclass",
        "no-float-scalars",
    ],
)
def test_find_bad_number_agrees_with_the_walk(value: Any, expected: Any) -> None:
    assert find_bad_number(value) == expected == walk(value)


def test_find_bad_number_ints_false() -> None:
    assert find_bad_number({"big": 2**64}, ints=False) is None
    assert find_bad_number({"big": 2**64, "x": NAN}, ints=False) == (("x",), NAN_REASON)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (MsgPackCodec().encode([1.5, 127, -1, "\u00ff"]), False),
        (MsgPackCodec().encode([1.7976931348623157e308]), True),  # a hit is only a reason to walk
        (b"\xcb\x7f\xf0" + bytes(6), True),
        (b"\xcb\xff\xf8" + bytes(6), True),
        (b"\xca\x7f\xc0\x00\x00", True),
        (b"\xca\xff\x80\x00\x00", True),
        (b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01", True),  # a NaN with a payload
    ],
    ids=["finite", "largest-double", "inf64", "nan64", "nan32", "negative-inf32", "payload"],
)
def test_msgpack_may_hold_non_finite(data: bytes, expected: bool) -> None:
    assert msgpack_may_hold_non_finite(data) is expected
