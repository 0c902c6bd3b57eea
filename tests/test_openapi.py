"""OpenAPI: every codec's media type, FastAPI's error responses by default, and the problem
responses of routes whose settings turn ``problem_details`` on, without ``responses=``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Item, build_app


def resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for token in ref.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_app().openapi()


@pytest.fixture(scope="module")
def problem_spec() -> dict[str, Any]:
    return build_app(middleware=False, problem_details=True).openapi()


@pytest.fixture(scope="module")
def stock_spec() -> dict[str, Any]:
    app = FastAPI()

    @app.post("/api/items", status_code=201)
    async def create_item(item: Item) -> Item:
        return item

    return app.openapi()


def test_response_media_types_point_at_the_json_schema(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/api/items/{item_id}"]["get"]
    content = op["responses"]["200"]["content"]
    assert set(content) >= {"application/json", "application/msgpack", "application/x-msgpack"}
    json_schema = content["application/json"]["schema"]
    for media_type in ("application/msgpack", "application/vnd.msgpack"):
        assert resolve(spec, content[media_type]["schema"]["$ref"]) == json_schema


def test_request_body_media_types(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/api/items"]["post"]
    content = op["requestBody"]["content"]
    assert (
        resolve(spec, content["application/msgpack"]["schema"]["$ref"])
        == (content["application/json"]["schema"])
    )
    assert resolve(spec, op["responses"]["201"]["content"]["application/msgpack"]["schema"]["$ref"])


def test_fastapis_error_responses_by_default(
    spec: dict[str, Any], stock_spec: dict[str, Any]
) -> None:
    post = spec["paths"]["/api/items"]["post"]["responses"]
    assert post["422"] == stock_spec["paths"]["/api/items"]["post"]["responses"]["422"]
    assert (
        spec["components"]["schemas"]["HTTPValidationError"]
        == (stock_spec["components"]["schemas"]["HTTPValidationError"])
    )
    for path in spec["paths"].values():
        for op in path.values():
            for status, response in op["responses"].items():
                assert "application/problem+json" not in response.get("content", {}), status


def test_problem_responses(problem_spec: dict[str, Any]) -> None:
    spec = problem_spec
    post = spec["paths"]["/api/items"]["post"]["responses"]
    for status in ("400", "406", "413", "415", "422"):
        assert "application/problem+json" in post[status]["content"], status
    get = spec["paths"]["/api/items/{item_id}"]["get"]["responses"]
    assert "406" in get
    assert "415" not in get
    assert "application/problem+json" in get["422"]["content"]


def test_plain_routes_unchanged(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/plain"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"application/json"}
