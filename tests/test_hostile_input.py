"""Hostile or unusual input gets a clear answer, never a 500 or a transformed partial body."""

from __future__ import annotations

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int


def build(**middleware: object) -> FastAPI:
    app = FastAPI()

    @app.post("/plain")
    async def plain(item: Item) -> Item:
        return item

    @app.get("/partial")
    async def partial() -> Response:
        return Response(
            b'{"a": 1',
            status_code=206,
            media_type="application/json",
            headers={"Content-Range": "bytes 0-6/20"},
        )

    router = APIRouter(route_class=SerdesRoute)

    @router.get("/me")
    @cached(60, key=lambda request: request.headers.get("authorization"))
    async def me(request: Request) -> dict[str, str | None]:
        return {"user": request.headers.get("authorization")}

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, **middleware)
    return app


async def call(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("problem_details", [False, True])
@pytest.mark.parametrize("body", [b'{"id": NaN}', b'{"id": Infinity}', b'{"id": -Infinity}'])
async def test_a_non_finite_number_for_an_int_is_a_422(problem_details: bool, body: bytes) -> None:
    # Stock FastAPI answers 500: its handler cannot render the NaN it echoes.
    response = await call(
        build(problem_details=problem_details),
        "POST",
        "/plain",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    if problem_details:
        assert response.json()["errors"][0]["pointer"] == "/body/id"
    else:
        assert response.json()["detail"][0]["loc"] == ["body", "id"]


@pytest.mark.parametrize("accept", ["application/msgpack", "application/json"])
async def test_partial_content_passes_untouched(accept: str) -> None:
    response = await call(build(), "GET", "/partial", headers={"accept": accept})
    assert response.status_code == 206
    assert response.content == b'{"a": 1'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-range"] == "bytes 0-6/20"


async def test_per_principal_answers_vary_on_the_principal() -> None:
    app = build()
    response = await call(app, "GET", "/me", headers={"authorization": "Bearer a"})
    assert response.status_code == 200
    vary = {v.strip() for v in response.headers["vary"].split(",")}
    assert "Authorization" in vary
    other = await call(
        app, "GET", "/me", headers={"authorization": "Bearer b", "accept": "application/msgpack"}
    )
    assert msgpack.unpackb(other.content) == {"user": "Bearer b"}


@pytest.mark.parametrize("accept_encoding", ["gzip", "identity"])
async def test_json_compressed_by_an_inner_gzip_middleware_reaches_msgpack_clients(
    accept_encoding: str,
) -> None:
    from starlette.middleware.gzip import GZipMiddleware

    app = FastAPI()

    @app.get("/big")
    async def big() -> dict[str, list[int]]:
        return {"values": list(range(2000))}

    app.add_middleware(GZipMiddleware, minimum_size=100)  # inside: added first
    app.add_middleware(SerdesMiddleware)
    response = await call(
        app,
        "GET",
        "/big",
        headers={"accept": "application/msgpack", "accept-encoding": accept_encoding},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/msgpack"
    # httpx decodes whatever coding the answer carries; what arrives is MessagePack.
    assert msgpack.unpackb(response.content) == {"values": list(range(2000))}


async def test_a_msgpack_body_that_transcodes_to_too_much_json_is_a_413() -> None:
    # 60,000 empty arrays: 60 KB of MessagePack, 180 KB of JSON for the plain route.
    body = msgpack.packb([[] for _ in range(60_000)])
    assert len(body) < 64 * 1024
    app = build(max_body_size=64 * 1024)
    response = await call(
        app, "POST", "/plain", content=body, headers={"content-type": "application/msgpack"}
    )
    assert response.status_code == 413
    assert "as JSON" in response.json()["detail"]


async def test_large_msgpack_bodies_are_decoded_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from fastapi_serdes import MsgPackCodec

    threads: list[threading.Thread] = []
    original = MsgPackCodec.decode

    def spy(self: MsgPackCodec, data: bytes, adapter: object = None) -> object:
        threads.append(threading.current_thread())
        return original(self, data, adapter)  # type: ignore[arg-type]

    monkeypatch.setattr(MsgPackCodec, "decode", spy)
    app = build()
    small = msgpack.packb({"id": 1})
    large = msgpack.packb({"id": 1, "pad": "x" * 100_000})
    for body in (small, large):
        response = await call(
            app, "POST", "/plain", content=body, headers={"content-type": "application/msgpack"}
        )
        assert response.status_code == 200
    main = threading.current_thread()
    assert threads[0] is main
    assert threads[1] is not main


async def test_a_msgpack_timestamp_out_of_range_is_a_422() -> None:
    # Seconds past year 9999 in a timestamp extension: msgpack raises OverflowError.
    timestamp = b"\xc7\x0c\xff" + bytes(4) + b"\x00\x00\x00\x7f" + bytes(4)
    response = await call(
        build(),
        "POST",
        "/plain",
        content=b"\x81\xa2id" + timestamp,
        headers={"content-type": "application/msgpack"},
    )
    assert response.status_code == 400


async def test_an_error_msgpack_cannot_carry_reaches_a_msgpack_client_as_json() -> None:
    # FastAPI's 422 echoes the integer past 64 bits, which MessagePack cannot hold.
    response = await call(
        build(),
        "POST",
        "/plain",
        content=b"[18446744073709551616]",
        headers={"content-type": "application/json", "accept": "application/msgpack"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"][0]["input"] == [18446744073709551616]
