"""The JSON parse SerdesRoute does for FastAPI: exactly ``json.loads``'s value, or nothing."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_serdes.request_body import NOT_PARSED, parse_json_as_stdlib

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=500, deadline=None)
@given(value=_VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_the_same_value_as_json_loads_or_nothing(
    value: Any, ensure_ascii: bool, indent: int | None
) -> None:
    body = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent).encode(
        "utf-8", "surrogatepass"
    )
    try:
        expected = json.loads(body)
    except ValueError:
        expected = NOT_PARSED
    parsed = parse_json_as_stdlib(body)
    if parsed is not NOT_PARSED:
        assert _same(parsed, expected)


def test_what_orjson_reads_differently_is_left_to_json_loads() -> None:
    for body in (
        b"18446744073709551616",
        b"-9223372036854775809",
        b'{"a": NaN}',
        b"1e400",
        b'"\\ud800"',
        b"\xef\xbb\xbf[1]",
        "[1]".encode("utf-16"),
    ):
        assert parse_json_as_stdlib(body) is NOT_PARSED, body
    assert parse_json_as_stdlib(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
