"""What the codecs read from a type's core schema: JSON-only serialization, and the keys behind
which pydantic's JSON may hide a NaN as ``null``."""

from __future__ import annotations

import datetime
import enum
import math
import pathlib
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional

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
from pydantic.alias_generators import to_camel

from fastapi_serdes import EncodeError
from fastapi_serdes.codecs import JSONCodec
from fastapi_serdes.codecs.core_schemas import has_json_only_serialization, json_null_keys

NAN = math.nan
INF = math.inf


class Color(enum.Enum):
    RED = 1.5


class Names(BaseModel):
    first: str
    others: list[str]
    when: datetime.datetime
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


class Computed(BaseModel):
    name: str = "c"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        return NAN


class Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "e"


class Serialized(BaseModel):
    count: int

    @field_serializer("count")
    def _count(self, count: int) -> float:
        return NAN if count < 0 else float(count)


class Outer(BaseModel):
    label: str = "o"
    anything: Any = None


@pytest.mark.parametrize(
    ("tp", "expected"),
    [
        (str, ()),
        (int, ()),
        (bool, ()),
        (datetime.datetime, ()),
        (uuid.UUID, ()),
        (Decimal, ()),
        (Color, ()),
        (Names, ()),
        (list[Names], ()),
        (Optional[str], ()),  # noqa: UP045 - the spelling is the point
        (Literal[1, "a"], ()),
        (Scored, (b'"maybe":null', b'"score":null')),
        (Aliased, (b'"my_score":null', b'"otherScore":null', b'"other_score":null', b'"s":null')),
        (Wrapper, (b'"maybe":null', b'"score":null')),
        (list[Scored], (b'"maybe":null', b'"score":null')),
        (dict[str, Scored], (b'"maybe":null', b'"score":null')),
        (Scored | Names, (b'"maybe":null', b'"score":null')),
        (Recursive, (b'"value":null',)),
        (Computed, (b'"ratio":null',)),
        (float, None),
        (Optional[float], None),  # noqa: UP045
        (Literal[1.5], None),
        (list[float], None),
        (dict[str, float], None),
        (Mapping[str, Any], None),
        (WithList, None),
        (Any, None),
        (Outer, None),
        (RootModel[float], None),
        (Extra, None),
        (Serialized, None),
        (Annotated[int, PlainSerializer(lambda v: v / 2)], None),
        (pathlib.Path, None),
    ],
    ids=repr,
)
def test_json_null_keys(tp: Any, expected: tuple[bytes, ...] | None) -> None:
    assert json_null_keys(TypeAdapter(tp).core_schema) == expected


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
        (Serialized, Serialized(count=-1)),
        (WithList, WithList(values=[1.0, NAN])),
    ],
    ids=[
        "field",
        "optional-field",
        "alias",
        "nested-list",
        "dict-values",
        "recursive",
        "computed",
        "serializer",
        "list",
    ],
)
def test_a_hidden_nan_shows_a_key_and_is_refused(tp: Any, value: Any) -> None:
    adapter = TypeAdapter(tp)
    keys = json_null_keys(adapter.core_schema)
    for by_alias in (True, False):
        body = adapter.dump_json(value, by_alias=by_alias)
        assert keys is None or any(key in body for key in keys), body
        with pytest.raises(EncodeError, match="is not a finite number"):
            JSONCodec().encode(value, adapter, {"by_alias": by_alias})


def test_a_null_elsewhere_is_not_looked_at() -> None:
    class Profile(BaseModel):
        bio: str | None = None
        score: float = 1.0

    adapter = TypeAdapter(list[Profile])
    assert json_null_keys(adapter.core_schema) == (b'"score":null',)
    codec = JSONCodec()
    assert not codec._may_hide_non_finite(b'[{"bio":null,"score":1.0}]', adapter)
    assert codec._may_hide_non_finite(b'[{"bio":null,"score":null}]', adapter)
    assert codec.encode([Profile()], adapter) == b'[{"bio":null,"score":1.0}]'


class SecondsSpan(BaseModel):
    model_config = ConfigDict(ser_json_timedelta="float")
    span: datetime.timedelta


class JsonOnly(BaseModel):
    when: Annotated[datetime.date, PlainSerializer(str, when_used="json")]


@pytest.mark.parametrize(
    ("tp", "expected"),
    [(Names, False), (list[Scored], False), (SecondsSpan, True), (list[JsonOnly], True)],
    ids=repr,
)
def test_has_json_only_serialization(tp: Any, expected: bool) -> None:
    assert has_json_only_serialization(TypeAdapter(tp).core_schema) is expected
