"""Accept / Accept-Encoding / Content-Type parsing and choosing an offer (RFC 9110 §12, §8.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_serdes.negotiation import (
    MAX_ENTRIES,
    MAX_HEADER_LENGTH,
    MediaRange,
    choose_encoding,
    choose_media_type,
    media_type_quality,
    parse_accept,
    parse_accept_encoding,
    parse_media_type,
    parse_qvalue,
    split_list,
)

JSON = "application/json"
MSGPACK = "application/msgpack"
VND_MSGPACK = "application/vnd.msgpack"
X_MSGPACK = "application/x-msgpack"
OFFERS = (JSON, MSGPACK, VND_MSGPACK, X_MSGPACK)
CODINGS = ("br", "gzip")


# --- qvalues ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0.0),
        ("0.", 0.0),
        ("0.5", 0.5),
        ("0.001", 0.001),
        ("0.123", 0.123),
        ("1", 1.0),
        ("1.0", 1.0),
        ("1.000", 1.0),
        ("2", None),
        ("-1", None),
        ("NaN", None),
        ("nan", None),
        ("inf", None),
        ("0.1234", None),
        ("1.001", None),
        ("1.0000", None),
        (".5", None),
        ("", None),
        (" 0.5", None),
        ("0x1", None),
        ("1e-1", None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_qvalue(raw: str, expected: float | None) -> None:
    assert parse_qvalue(raw) == expected


# --- split_list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        (" , ,, ", []),
        ("a, b", ["a", "b"]),
        ("a,,b,", ["a", "b"]),
        ('a;x="1,2", b', ['a;x="1,2"', "b"]),
        ('a;x="q\\",r", b', ['a;x="q\\",r"', "b"]),
        ('a;x="unterminated, b', ['a;x="unterminated, b']),
    ],
    ids=[
        "empty",
        "only-commas",
        "two",
        "empty-members",
        "quoted-comma",
        "escaped-quote",
        "open-quote",
    ],
)
def test_split_list(value: str, expected: list[str]) -> None:
    assert split_list(value) == expected


def test_split_list_stops_at_max_entries() -> None:
    members = split_list(", ".join(f"m{i}" for i in range(MAX_ENTRIES * 3)))
    assert members == [f"m{i}" for i in range(MAX_ENTRIES)]


# --- parse_accept ----------------------------------------------------------------------------


def mr(type_: str, subtype: str, q: float = 1.0, *params: tuple[str, str]) -> MediaRange:
    return MediaRange(type_, subtype, tuple(params), q)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        ("application/json", [mr("application", "json")]),
        ("*/*", [mr("*", "*")]),
        ("application/*;q=0.5", [mr("application", "*", 0.5)]),
        ("APPLICATION/JSON;Q=0.5", [mr("application", "json", 0.5)]),
        ("application/json;q=1.000", [mr("application", "json", 1.0)]),
        ("application/json;q=0", [mr("application", "json", 0.0)]),
        ("application/json ; q=0.3 ", [mr("application", "json", 0.3)]),
        ("application/json;q=2", []),
        ("application/json;q=-1", []),
        ("application/json;q=NaN", []),
        ("application/json;q=0.1234", []),
        ("application/json;q=", []),
        ("application/json;q=2, application/msgpack", [mr("application", "msgpack")]),
        ("application/json;charset=UTF-8", [mr("application", "json", 1.0, ("charset", "utf-8"))]),
        ("application/json;Version=V2", [mr("application", "json", 1.0, ("version", "V2"))]),
        ('application/json;v="a,b";q=0.5', [mr("application", "json", 0.5, ("v", "a,b"))]),
        ('application/json;v="say \\"hi\\""', [mr("application", "json", 1.0, ("v", 'say "hi"'))]),
        ("application/json;q=0.5;ext=1;other=x", [mr("application", "json", 0.5)]),
        ("application/json;level=1;q=0.5", [mr("application", "json", 0.5, ("level", "1"))]),
        ("application/json;;q=0.5", [mr("application", "json", 0.5)]),
        ("*/json", []),
        ("application", []),
        ("application/", []),
        ("/json", []),
        ("application/json/x", []),
        ("app lication/json", []),
        ("application/json;novalue", []),
        ("application/json;=1", []),
        ("application/json;x=a b", []),
        (";q=1", []),
        ("text/html, , application/json", [mr("text", "html"), mr("application", "json")]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_parse_accept(header: str, expected: list[MediaRange]) -> None:
    assert parse_accept(header) == expected


def test_parse_accept_keeps_a_semicolon_inside_a_quoted_parameter() -> None:
    assert parse_accept('application/json;v="a;b", text/html') == [
        mr("application", "json", 1.0, ("v", "a;b")),
        mr("text", "html"),
    ]


def test_parse_accept_caps_the_number_of_members() -> None:
    ranges = parse_accept(", ".join(["application/json"] * 100_000))
    assert len(ranges) == MAX_ENTRIES


def test_parse_accept_reads_only_max_header_length_characters() -> None:
    member = "a/b"
    header = ", ".join(f"{member}{i}" for i in range(200_000))  # well over 1 MB
    assert len(header) > 1_000_000
    ranges = parse_accept(header)
    assert 0 < len(ranges) <= MAX_ENTRIES
    one_huge_member = "application/json;x=" + "a" * 1_000_000
    # A member cut by the limit is dropped, never read from its prefix.
    assert parse_accept(one_huge_member) == []


def test_member_cut_by_the_length_limit_is_not_read_as_a_refusal() -> None:
    tail = ", application/json;q=0.5"
    prefix = 'text/plain;x="'
    filler = "a" * (MAX_HEADER_LENGTH - len(prefix) - len('"') - len(tail) + len(".5"))
    header = prefix + filler + '"' + tail
    assert header[:MAX_HEADER_LENGTH].endswith("application/json;q=0")
    assert mr("application", "json", 0.0) not in parse_accept(header)


# --- choose_media_type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # No preference: the server's default.
        (None, JSON),
        ("", JSON),
        ("   ", JSON),
        (", ,", JSON),
        ("garbage", JSON),
        ("application/json;q=2, text/html;q=nan, */json", JSON),
        # Plain choices and aliases: answer with the alias the client named.
        ("application/msgpack", MSGPACK),
        ("application/x-msgpack", X_MSGPACK),
        ("application/vnd.msgpack", VND_MSGPACK),
        ("text/html, application/x-msgpack;q=0.9", X_MSGPACK),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html, */*;q=0.1", JSON),
        # q-values.
        ("application/json;q=0.5, application/msgpack", MSGPACK),
        ("application/json, application/msgpack;q=0.999", JSON),
        ("application/json;q=0.5, application/msgpack;q=0.5", JSON),
        ("application/msgpack;q=0.5, application/json;q=0.5", JSON),
        ("application/json;q=0.1234, application/msgpack;q=0.5", MSGPACK),
        # Refusals.
        ("application/json;q=0", None),
        ("*/*;q=0", None),
        ("text/html", None),
        ("text/*", None),
        ("application/json;q=0, application/msgpack;q=0", None),
        # Specificity beats q.
        ("application/json;q=0, */*", MSGPACK),
        ("application/*;q=0.1, application/msgpack", MSGPACK),
        ("application/*;q=0.1, application/json;q=0.2", JSON),
        ("application/*;q=0.9, application/json;q=0.2", MSGPACK),
        ("*/*;q=0.9, application/*;q=0.1, application/json;q=0.5", JSON),
        ("*/*, application/*;q=0", None),
        ("application/msgpack;q=0, application/*", JSON),
        ("application/json;q=0, application/msgpack;q=0, application/*", VND_MSGPACK),
        # Case-insensitive tokens and parameter names.
        ("APPLICATION/MSGPACK", MSGPACK),
        ("Application/Json;Q=0, */*", MSGPACK),
        # Parameters.
        ("application/json;charset=utf-8", JSON),
        ("application/json;charset=UTF-8", JSON),
        ('application/json;charset="utf-8"', JSON),
        ("application/json;charset=utf8", JSON),
        ("application/json;charset=latin-1", None),
        ("application/json;version=2", None),
        ("application/json;version=2, */*;q=0.1", JSON),
        ("application/json;charset=utf-8;q=0, */*", MSGPACK),
        ("application/json;q=0.5;ext=1, application/msgpack;q=0.4", JSON),
        ('application/json;v="a,b";q=0.1, application/msgpack;q=0.2', MSGPACK),
        # Several header lines, joined by ", ".
        ("application/json;q=0.1, application/msgpack", MSGPACK),
    ],
    ids=lambda v: repr(v),
)
def test_choose_media_type(accept: str | None, expected: str | None) -> None:
    assert choose_media_type(accept, OFFERS) == expected


def test_choose_media_type_without_offers() -> None:
    assert choose_media_type("application/json", ()) is None
    assert choose_media_type(None, ()) is None


def test_ties_go_to_server_order() -> None:
    assert choose_media_type("*/*", (MSGPACK, JSON)) == MSGPACK
    assert choose_media_type("application/json, application/msgpack", (MSGPACK, JSON)) == MSGPACK


def test_huge_header_still_answers() -> None:
    header = ", ".join(["text/html;q=0.5"] * 100_000) + ", application/json"
    assert choose_media_type(header, OFFERS) is None
    header = ", ".join(["application/msgpack"] * 100_000)
    assert choose_media_type(header, OFFERS) == MSGPACK


@pytest.mark.parametrize(
    ("accept", "media_type", "expected"),
    [
        ("application/json;q=0.3", "application/json", 0.3),
        ("application/json;q=0.3", "application/json; charset=utf-8", 0.3),
        ("*/*;q=0.2, application/*;q=0.4", "application/msgpack", 0.4),
        ("text/html", "application/json", 0.0),
        ("application/json;q=0.5, application/json;q=1", "application/json", 0.5),
    ],
)
def test_media_type_quality(accept: str, media_type: str, expected: float) -> None:
    assert media_type_quality(parse_accept(accept), media_type) == expected


# --- parse_media_type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/json", ("application/json", {})),
        ("Application/JSON", ("application/json", {})),
        ("  application/json  ", ("application/json", {})),
        ("application/json;", ("application/json", {})),
        ("application/json; charset=UTF-8", ("application/json", {"charset": "utf-8"})),
        ('application/json; charset="utf-8"', ("application/json", {"charset": "utf-8"})),
        ("application/json; Version=V2", ("application/json", {"version": "V2"})),
        ('multipart/form-data; boundary="a,b c"', ("multipart/form-data", {"boundary": "a,b c"})),
        ("application/vnd.api+json", ("application/vnd.api+json", {})),
        ("", None),
        ("json", None),
        ("application/", None),
        ("/json", None),
        ("*/*", None),
        ("application/*", None),
        ("application/json/x", None),
        ("application/json x", None),
        ("application/json; charset", None),
        ("application/json; charset=a b", None),
        ("application/json; =utf-8", None),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_parse_media_type(value: str, expected: tuple[str, dict[str, str]] | None) -> None:
    assert parse_media_type(value) == expected


def test_parse_media_type_keeps_a_semicolon_inside_a_quoted_parameter() -> None:
    assert parse_media_type('application/json; v="a;b"') == ("application/json", {"v": "a;b"})


# --- Accept-Encoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("gzip", {"gzip": 1.0}),
        ("GZIP, Br;Q=0.5", {"gzip": 1.0, "br": 0.5}),
        ("x-gzip;q=0.3", {"gzip": 0.3}),
        ("gzip;q=0.2, gzip;q=1", {"gzip": 0.2}),
        ("gzip;q=0.2, x-gzip", {"gzip": 0.2}),
        ("*;q=0, identity", {"*": 0.0, "identity": 1.0}),
        ("gzip;q=2, br;q=-1, zstd;q=NaN, deflate;q=0.1234, identity", {"identity": 1.0}),
        ("gzip;q=0.5;ext=1", {"gzip": 0.5}),
        ("g zip, /, br", {"br": 1.0}),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_parse_accept_encoding(header: str, expected: dict[str, float]) -> None:
    assert parse_accept_encoding(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("identity", "identity"),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("GZIP", "gzip"),
        ("*", "br"),
        ("*;q=0.3", "br"),
        ("gzip, br", "br"),
        ("br, gzip", "br"),
        ("gzip;q=0.5, br", "br"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0, *", "br"),
        ("gzip;q=0", "identity"),
        ("gzip;q=0, br;q=0", "identity"),
        ("deflate", "identity"),
        ("zstd, gzip;q=0", "identity"),
        ("gzip;q=2", "identity"),
        ("identity, gzip;q=0.5", "identity"),
        ("identity;q=0.5, gzip;q=0.5", "gzip"),
        ("identity;q=0.001, gzip;q=0", "identity"),
        ("identity;q=0", None),
        ("identity;q=0, gzip", "gzip"),
        ("*;q=0", None),
        ("*;q=0, identity", "identity"),
        ("*;q=0, gzip", "gzip"),
        ("identity;q=0, *;q=0", None),
    ],
    ids=lambda v: repr(v),
)
def test_choose_encoding(header: str | None, expected: str | None) -> None:
    assert choose_encoding(header, CODINGS) == expected


def test_choose_encoding_ties_follow_server_order() -> None:
    assert choose_encoding("gzip, br", ("gzip", "br")) == "gzip"
    assert choose_encoding("gzip, br", ("br", "gzip")) == "br"


def test_choose_encoding_without_offers() -> None:
    assert choose_encoding("gzip", ()) == "identity"
    assert choose_encoding("identity;q=0", ()) is None


def test_accept_encoding_is_capped() -> None:
    header = ", ".join(f"c{i}" for i in range(100_000)) + ", gzip"
    assert len(parse_accept_encoding(header)) == MAX_ENTRIES
    assert choose_encoding(header, CODINGS) == "identity"


# --- never raise ------------------------------------------------------------------------------

header_text = st.text() | st.lists(
    st.sampled_from(
        ["application/json", "*/*", "gzip", "identity", "*", ";", ",", "=", '"', "\\", "q", "0.5"]
    )
).map("".join)


@given(header_text)
def test_parsers_never_raise(value: str) -> None:
    assert len(parse_accept(value)) <= MAX_ENTRIES
    assert choose_media_type(value, OFFERS) in (*OFFERS, None)
    assert len(parse_accept_encoding(value)) <= MAX_ENTRIES
    assert choose_encoding(value, CODINGS) in (*CODINGS, "identity", None)
    result = parse_media_type(value)
    assert result is None or "/" in result[0]


@pytest.mark.parametrize(
    ("headers", "token", "expected"),
    [
        ([], b"Accept", [(b"vary", b"Accept")]),
        ([(b"vary", b"Prefer")], b"Accept", [(b"vary", b"Prefer, Accept")]),
        ([(b"vary", b"accept")], b"Accept", [(b"vary", b"accept")]),
        ([(b"vary", b"*")], b"Accept", [(b"vary", b"*")]),
        ([(b"etag", b'"x"')], b"Accept", [(b"etag", b'"x"'), (b"vary", b"Accept")]),
    ],
    ids=["created", "appended", "case-insensitive", "star", "other-headers"],
)
def test_add_vary(
    headers: list[tuple[bytes, bytes]], token: bytes, expected: list[tuple[bytes, bytes]]
) -> None:
    from fastapi_serdes.vary import add_vary

    assert add_vary(list(headers), token) == expected
