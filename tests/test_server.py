"""End to end through a real uvicorn on 127.0.0.1: the example app, both codecs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import msgpack
import pytest

from tests.example_server import serve_example

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_example(tmp_path_factory.mktemp("db") / "example.sqlite3") as base:
        yield base


def test_json_and_msgpack_over_a_real_socket(server: str) -> None:
    with httpx.Client(base_url=server) as c:
        as_json = c.get("/users/1")
        as_msgpack = c.get("/users/1", headers={"accept": "application/msgpack"})
        assert as_json.headers["content-type"] == "application/json"
        assert as_msgpack.headers["content-type"] == "application/msgpack"
        assert "Accept" in [t.strip() for t in as_msgpack.headers["vary"].split(",")]
        assert msgpack.unpackb(as_msgpack.content) == as_json.json()


def test_msgpack_post_and_problems_over_a_real_socket(server: str) -> None:
    with httpx.Client(base_url=server) as c:
        body = msgpack.packb({"username": "e2e_user", "email": "e2e@example.com",
                              "display_name": "E2E", "country": "FR"})  # fmt: skip
        res = c.post("/users", content=body, headers={"content-type": "application/msgpack"})
        assert res.status_code == 201, res.text
        # The example app opts in to problem_details=True and strict=True. A malformed
        # MessagePack body is FastAPI's 422 (a body decode error), as a validation problem.
        res = c.post("/users", content=b"\xc1", headers={"content-type": "application/msgpack"})
        assert res.status_code == 422
        assert res.headers["content-type"] == "application/problem+json"
        problem = res.json()
        assert problem["type"] == "https://fastapi-serdes.dev/problems/validation-failed"
        assert problem["errors"][0]["pointer"] == "/body"
        assert problem["errors"][0]["detail"].startswith("Body decode error: ")
        res = c.get("/videos", headers={"accept": "text/html"})
        assert res.status_code == 406
        assert res.headers["content-type"] == "application/problem+json"
        assert res.json()["type"] == "https://fastapi-serdes.dev/problems/not-acceptable"
