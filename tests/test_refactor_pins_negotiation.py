"""Pins for the two ways ``negotiation._split_quoted`` splits a header value.

A value without a double quote is split with ``str.split`` (the common case, fast); a value
with one is scanned character by character. On a value without quotes the two must agree.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_serdes.negotiation import _scan_quoted, _split_quoted

# Separators, whitespace, backslashes and token characters: everything but the quote.
_UNQUOTED = st.text(alphabet=st.sampled_from(list(",; \t\\=/*abq0.1\n")), max_size=80)


@given(value=_UNQUOTED, limit=st.integers(min_value=1, max_value=6))
@pytest.mark.parametrize("separator", [",", ";"])
def test_splitting_without_quotes_agrees_with_the_scan(
    value: str, limit: int, separator: str
) -> None:
    assert _split_quoted(value, separator, limit) == _scan_quoted(value, separator, limit)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('a;b="x;y";c', ["a", 'b="x;y"', "c"]),
        ('a;b="x\\";y";c', ["a", 'b="x\\";y"', "c"]),  # an escaped quote stays quoted
        ('a;b="x;y', ["a", 'b="x;y']),  # an unterminated quote runs to the end
        ("a\\;b;c", ["a\\", "b", "c"]),  # a backslash outside quotes is a character
        (" ; a ;; b ; ", ["a", "b"]),
    ],
)
def test_splitting_with_and_without_quotes(value: str, expected: list[str]) -> None:
    assert _split_quoted(value, ";", 10) == expected


def test_the_limit_keeps_the_first_members() -> None:
    assert _split_quoted("a;;b;c;d", ";", 2) == ["a", "b"]
    assert _split_quoted('a;;"b";c;d', ";", 2) == ["a", '"b"']
