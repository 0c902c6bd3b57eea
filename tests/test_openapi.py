"""OpenAPI: every codec's media type, and the problem responses, without ``responses=``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import build_app


def resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for token in ref.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_app().openapi()


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


def test_problem_responses(spec: dict[str, Any]) -> None:
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
