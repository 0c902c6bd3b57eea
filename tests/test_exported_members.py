"""The public API: a name that appears or disappears must be a deliberate change."""

import fastapi_serdes


def test_exported_members() -> None:
    assert len(set(fastapi_serdes.__all__)) == len(fastapi_serdes.__all__)  # order: ruff RUF022
    assert set(fastapi_serdes.__all__) == {
        "ALL",
        "Codec",
        "Compression",
        "DecodeError",
        "EncodeError",
        "JSONCodec",
        "MemoryStore",
        "MsgPackCodec",
        "Negotiated",
        "ProblemError",
        "ResponseCache",
        "Selection",
        "SerdesError",
        "SerdesMiddleware",
        "SerdesResponse",
        "SerdesRoute",
        "SerdesSettings",
        "Store",
        "Telemetry",
        "Views",
        "__version__",
        "cached",
        "cached_fragments",
        "invalidate",
        "negotiated_of",
        "no_compression",
        "selection",
        "use_serdes_routes",
    }
    for name in fastapi_serdes.__all__:
        assert hasattr(fastapi_serdes, name), name
