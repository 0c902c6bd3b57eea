"""SerdesSettings: validation, environment overrides, offers, negotiate() and header()."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from fastapi_serdes import JSONCodec, MsgPackCodec, Negotiated, SerdesMiddleware, SerdesSettings
from fastapi_serdes.settings import (
    DEFAULT_MAX_BODY_SIZE,
    ENV_PREFIX,
    header,
    negotiate,
)

NO_ENV: Mapping[str, str] = {}
JSON = "application/json"
MSGPACK_TYPES = ("application/msgpack", "application/vnd.msgpack", "application/x-msgpack")


class CBORCodec:
    """A minimal third-party codec: the protocol is all it needs."""

    media_types = ("Application/CBOR", "application/json")

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        return b""

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        return None


def settings(**kwargs: Any) -> SerdesSettings:
    return SerdesSettings.from_kwargs(environ=NO_ENV, **kwargs)


# --- defaults and validation -----------------------------------------------------------------


def test_defaults() -> None:
    s = settings()
    assert [type(c) for c in s.codecs] == [JSONCodec, MsgPackCodec]
    assert s.strict is False
    assert s.problem_details is False
    assert s.max_body_size == DEFAULT_MAX_BODY_SIZE == 1024 * 1024
    assert s.offers == (JSON, *MSGPACK_TYPES)
    assert s.default_media_type == JSON
    assert ENV_PREFIX == "FASTAPI_SERDES_"


def test_kwargs_are_applied() -> None:
    s = settings(strict=True, max_body_size=10)
    assert (s.strict, s.max_body_size) == (True, 10)


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(AttributeError):
        s.max_body_size = 5  # type: ignore[misc]


def test_codecs_empty() -> None:
    with pytest.raises(ValueError, match="codecs must name at least one codec, got an empty"):
        settings(codecs=[])


@pytest.mark.parametrize("bad", [object(), "json", None], ids=["object", "str", "none"])
def test_codecs_not_a_codec(bad: Any) -> None:
    with pytest.raises(
        TypeError, match=r"^codecs: " + re.escape(repr(bad)) + " does not implement"
    ):
        settings(codecs=[JSONCodec(), bad])


def test_codecs_refuse_a_codec_class() -> None:
    with pytest.raises(TypeError, match="codecs"):
        settings(codecs=[JSONCodec])


@pytest.mark.parametrize("flag", ["strict", "problem_details", "answer_head"])
@pytest.mark.parametrize("bad", ["406", "yes", 1, None])
def test_flags_bad(flag: str, bad: Any) -> None:
    with pytest.raises(
        ValueError, match=flag + r" must be True or False, got " + re.escape(repr(bad))
    ):
        SerdesSettings(**{flag: bad})
    if flag == "strict" and bad is None:
        return  # the middleware's strict=None means: FASTAPI_SERDES_STRICT, else False
    with pytest.raises(ValueError, match=flag):
        SerdesMiddleware(FastAPI(), **{flag: bad})


@pytest.mark.parametrize("bad", [0, -1, True, False, "x", "1024", 1.5], ids=repr)
def test_max_body_size_bad(bad: Any) -> None:
    with pytest.raises(
        ValueError,
        match=r"max_body_size must be a positive int \(bytes\), got " + re.escape(repr(bad)),
    ):
        settings(max_body_size=bad)


# --- environment overrides -------------------------------------------------------------------


def test_kwargs_win_over_env() -> None:
    s = SerdesSettings.from_kwargs(
        strict=False,
        max_body_size=10,
        environ={"FASTAPI_SERDES_MAX_BODY_SIZE": "4194304", "FASTAPI_SERDES_STRICT": " On "},
    )
    assert (s.max_body_size, s.strict) == (10, False)


def test_env_fills_in_unset_kwargs() -> None:
    s = SerdesSettings.from_kwargs(
        environ={"FASTAPI_SERDES_MAX_BODY_SIZE": "4194304", "FASTAPI_SERDES_STRICT": " On "},
    )
    assert (s.max_body_size, s.strict) == (4194304, True)


def test_env_applies_without_kwargs() -> None:
    s = SerdesSettings.from_kwargs(environ={"FASTAPI_SERDES_MAX_BODY_SIZE": " 42 "})
    assert s.max_body_size == 42
    assert s.strict is False


def test_unrelated_env_is_ignored() -> None:
    s = SerdesSettings.from_kwargs(
        max_body_size=7, environ={"MAX_BODY_SIZE": "1", "FASTAPI_SERDES_OTHER": "x"}
    )
    assert s.max_body_size == 7


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTAPI_SERDES_MAX_BODY_SIZE", "99")
    assert SerdesSettings.from_kwargs().max_body_size == 99
    assert SerdesSettings.from_kwargs(max_body_size=10).max_body_size == 10
    monkeypatch.delenv("FASTAPI_SERDES_MAX_BODY_SIZE")
    assert SerdesSettings.from_kwargs().max_body_size == DEFAULT_MAX_BODY_SIZE


@pytest.mark.parametrize("bad", ["lots", "", "1e6", "4 MB", "0x10"])
def test_env_max_body_size_not_an_integer(bad: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"^FASTAPI_SERDES_MAX_BODY_SIZE must be a positive integer, got "
        + re.escape(repr(bad)),
    ):
        SerdesSettings.from_kwargs(environ={"FASTAPI_SERDES_MAX_BODY_SIZE": bad})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FASTAPI_SERDES_MAX_BODY_SIZE", "0"),
        ("FASTAPI_SERDES_MAX_BODY_SIZE", "-5"),
        ("FASTAPI_SERDES_STRICT", "nope"),
    ],
)
def test_env_error_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable) as info:
        SerdesSettings.from_kwargs(environ={variable: value})
    assert value in str(info.value)


# --- offers ----------------------------------------------------------------------------------


def test_offers_follow_codec_order() -> None:
    s = settings(codecs=[MsgPackCodec(), JSONCodec()])
    assert s.offers == (*MSGPACK_TYPES, JSON)
    assert s.default_media_type == "application/msgpack"


def test_first_codec_wins_a_shared_media_type_and_types_are_lowercased() -> None:
    cbor, json_codec = CBORCodec(), JSONCodec()
    s = settings(codecs=[cbor, json_codec])
    assert s.offers == ("application/cbor", JSON)
    assert s.by_media_type == {"application/cbor": cbor, JSON: cbor}
    s = settings(codecs=[json_codec, cbor])
    assert s.offers == (JSON, "application/cbor")
    assert s.by_media_type[JSON] is json_codec


# --- negotiate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type", "codec"),
    [
        (None, JSON, JSONCodec),
        ("", JSON, JSONCodec),
        ("application/x-msgpack", "application/x-msgpack", MsgPackCodec),
        ("application/json;q=0, */*", "application/msgpack", MsgPackCodec),
        (
            "application/vnd.msgpack;q=0.9, application/json;q=0.8",
            "application/vnd.msgpack",
            MsgPackCodec,
        ),
    ],
    ids=repr,
)
def test_negotiate(accept: str | None, media_type: str, codec: type) -> None:
    s = settings()
    negotiated = negotiate(accept, s)
    assert negotiated.media_type == media_type
    assert isinstance(negotiated.codec, codec)
    assert negotiated.codec is s.by_media_type[media_type]
    assert negotiated.settings is s


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0, application/*;q=0"])
def test_negotiate_not_acceptable_problem(accept: str) -> None:
    s = settings(strict=True)
    assert negotiate(accept, s) == Negotiated(None, None, s)


@pytest.mark.parametrize("accept", ["text/html", "*/*;q=0"])
def test_negotiate_not_acceptable_default(accept: str) -> None:
    s = settings(codecs=[MsgPackCodec(), JSONCodec()])
    negotiated = negotiate(accept, s)
    assert negotiated.media_type == "application/msgpack"
    assert negotiated.codec is s.codecs[0]


# --- header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"accept-encoding", b"gzip")], None),
        ([(b"accept", b"application/json")], "application/json"),
        ([(b"accept", b"")], ""),
        (
            [(b"accept", b"text/html"), (b"x-other", b"1"), (b"accept", b"application/msgpack")],
            "text/html, application/msgpack",
        ),
        ([(b"accept", b"caf\xe9")], "caf\u00e9"),
    ],
    ids=["absent", "other-header", "one", "empty", "several-lines", "latin-1"],
)
def test_header(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert header({"headers": headers}, b"accept") == expected


def test_header_lines_negotiate_as_one_list() -> None:
    scope = {
        "headers": [(b"accept", b"application/json;q=0.1"), (b"accept", b"application/msgpack")]
    }
    assert negotiate(header(scope, b"accept"), settings()).media_type == "application/msgpack"


def test_codec_for_reads_content_types_like_rfc_9110_and_keeps_no_state() -> None:
    settings = SerdesSettings.from_kwargs()
    msgpack_codec = settings.by_media_type["application/msgpack"]
    assert settings.codec_for("application/msgpack") is msgpack_codec
    assert settings.codec_for("Application/MsgPack; charset=x") is msgpack_codec
    assert settings.codec_for("application/json;charset=utf-8") is settings.codecs[0]
    assert settings.codec_for("text/plain") is None
    assert settings.codec_for("not a media type") is None
    for i in range(1000):
        assert settings.codec_for(f"text/x-{i}") is None
    assert settings.codec_for("application/msgpack") is msgpack_codec
    with pytest.raises(TypeError):
        settings.by_media_type["text/x-new"] = msgpack_codec  # type: ignore[index]
