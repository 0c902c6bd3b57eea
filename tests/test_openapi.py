"""OpenAPI: every codec's media type, FastAPI's error responses by default, and the problem
responses of routes whose settings turn ``problem_details`` on, without ``responses=``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from fastapi_serdes.openapi import (
    problem_example,
    problem_response,
    route_problem_responses,
    selection_responses,
)
from fastapi_serdes.problems import PROBLEM_BASE_URI, PROBLEM_TYPES, ProblemError
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


def problem_media(response: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = response["content"]["application/problem+json"]
    return media


def test_problem_examples_carry_the_real_type_uris(problem_spec: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path in problem_spec["paths"].values():
        for op in path.values():
            for status, response in op["responses"].items():
                if "application/problem+json" not in response.get("content", {}):
                    continue
                media = problem_media(response)
                assert media["schema"]["properties"]["type"]["examples"], status
                for slug, example in media["examples"].items():
                    doc = example["value"]
                    assert doc["type"] == f"https://fastapi-serdes.dev/problems/{slug}"
                    assert (doc["status"], doc["title"]) == PROBLEM_TYPES[slug]
                    assert str(doc["status"]) == status
                    assert example["summary"] == doc["title"]
                    seen.add(slug)
    assert seen >= {
        "not-acceptable",
        "malformed-body",
        "body-too-large",
        "unsupported-media-type",
        "validation-failed",
    }


async def create(item: Item) -> Item:
    return item


async def read(item_id: int) -> Item:
    return Item(id=item_id, name="x")


def test_a_views_400_lists_both_problems() -> None:
    responses = route_problem_responses(APIRoute("/items", create, methods=["POST"]))
    merged = selection_responses(responses)[400]
    assert merged["description"] == "Malformed Request Body, or Invalid View or Field Selection"
    assert set(problem_media(merged)["examples"]) == {"malformed-body", "invalid-selection"}
    assert set(problem_media(responses[400])["examples"]) == {"malformed-body"}  # not mutated
    alone = selection_responses(route_problem_responses(APIRoute("/items/{item_id}", read)))[400]
    assert set(problem_media(alone)["examples"]) == {"invalid-selection"}


def test_problem_response_for_an_apps_own_problems() -> None:
    taken = ProblemError(409, title="Username taken", detail="'ada' is taken.", username="ada")
    conflict = ProblemError(409, detail="The video is being processed.")
    response = problem_response(taken, conflict)
    assert response["description"] == "Username taken, or Conflict"
    examples = problem_media(response)["examples"]
    assert examples == {
        "username-taken": {"summary": "Username taken", "value": taken.to_dict()},
        "conflict": {"summary": "Conflict", "value": conflict.to_dict()},
    }
    assert examples["conflict"]["value"]["type"] == "about:blank"
    twice = problem_media(problem_response(conflict, conflict))["examples"]
    assert list(twice) == ["conflict", "conflict-2"]
    with pytest.raises(ValueError, match=r"one status, got \[404, 409\]"):
        problem_response(taken, ProblemError(404))
    with pytest.raises(ValueError, match="one status, got None"):
        problem_response()


def test_problem_example_is_the_library_document() -> None:
    for slug in PROBLEM_TYPES:
        doc = problem_example(slug).to_dict()
        assert doc["type"] == PROBLEM_BASE_URI + slug
        assert doc["detail"]
