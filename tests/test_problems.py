"""RFC 9457 problem details: ProblemError, the library's problem types, JSON Pointers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import pytest

from fastapi_serdes import DecodeError, EncodeError, ProblemError, SerdesError
from fastapi_serdes.problems import (
    PROBLEM_BASE_URI,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPES,
    json_pointer,
    validation_problem,
)


def test_problem_media_type() -> None:
    assert PROBLEM_MEDIA_TYPE == "application/problem+json"


def test_exception_tree() -> None:
    assert issubclass(ProblemError, SerdesError)
    assert issubclass(DecodeError, SerdesError)
    assert issubclass(EncodeError, SerdesError)
    assert issubclass(SerdesError, Exception)


# --- ProblemError ----------------------------------------------------------------------------


def test_defaults() -> None:
    problem = ProblemError(404)
    assert problem.to_dict() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert problem.headers == {}
    assert str(problem) == "404 Not Found"


def test_members_in_rfc_order_then_extensions() -> None:
    problem = ProblemError(
        409,
        detail="Version 3 is stale; reload.",
        title="Edit Conflict",
        type="https://example.com/problems/conflict",
        current_version=4,
        links=["/a"],
    )
    doc = problem.to_dict(instance="/items/7")
    assert list(doc) == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "current_version",
        "links",
    ]
    assert doc == {
        "type": "https://example.com/problems/conflict",
        "title": "Edit Conflict",
        "status": 409,
        "detail": "Version 3 is stale; reload.",
        "instance": "/items/7",
        "current_version": 4,
        "links": ["/a"],
    }
    assert str(problem) == "409 Edit Conflict: Version 3 is stale; reload."


def test_detail_and_instance_are_omitted_when_absent() -> None:
    doc = ProblemError(400).to_dict()
    assert "detail" not in doc
    assert "instance" not in doc


def test_to_response() -> None:
    problem = ProblemError(
        429, detail="Slow down.", headers={"Retry-After": "30"}, retry_in_seconds=30
    )
    response = problem.to_response(instance="/search")
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "30"
    assert response.headers["content-length"] == str(len(response.body))
    body = orjson.loads(response.body)
    assert body == problem.to_dict(instance="/search")
    assert list(body) == ["type", "title", "status", "detail", "instance", "retry_in_seconds"]


def test_to_response_renders_non_json_extensions_as_text() -> None:
    response = ProblemError(400, when=HTTPStatus.OK, what=frozenset()).to_response()
    body = orjson.loads(response.body)
    assert body["when"] == 200
    assert body["what"] == str(frozenset())


def test_headers_are_copied() -> None:
    headers = {"Vary": "Accept"}
    problem = ProblemError(406, headers=headers)
    headers["Vary"] = "changed"
    assert problem.headers == {"Vary": "Accept"}


@pytest.mark.parametrize("status", [400, 401, 404, 422, 500, 503, 511])
def test_status_range_is_accepted(status: int) -> None:
    assert ProblemError(status).to_dict()["title"] == HTTPStatus(status).phrase
    assert ProblemError(status).to_dict()["status"] == status


@pytest.mark.parametrize("status", [0, 200, 302, 399, 600, 1000, -404])
def test_status_outside_400_599_raises(status: int) -> None:
    with pytest.raises(ValueError, match=rf"400-599, got {status}"):
        ProblemError(status)


@pytest.mark.parametrize("status", [499, 599])
def test_unregistered_status(status: int) -> None:
    doc = ProblemError(status, detail="x").to_dict()
    assert doc["status"] == status
    assert isinstance(doc["title"], str)
    assert doc["title"]


def test_unregistered_status_with_a_title() -> None:
    assert ProblemError(499, title="Client Closed Request").to_dict()["title"] == (
        "Client Closed Request"
    )


# --- the library's own problems --------------------------------------------------------------


def test_problem_types_table() -> None:
    assert dict(PROBLEM_TYPES) == {
        "not-acceptable": (406, "Not Acceptable"),
        "unsupported-media-type": (415, "Unsupported Media Type"),
        "malformed-body": (400, "Malformed Request Body"),
        "body-too-large": (413, "Request Body Too Large"),
        "validation-failed": (422, "Request Validation Failed"),
        "encode-failed": (500, "Response Encoding Failed"),
        "not-acceptable-encoding": (406, "No Acceptable Content Coding"),
        "unsupported-content-encoding": (415, "Unsupported Content Coding"),
        "invalid-selection": (400, "Invalid View or Field Selection"),
    }
    assert PROBLEM_BASE_URI == "https://fastapi-serdes.dev/problems/"


@pytest.mark.parametrize("slug", sorted(PROBLEM_TYPES))
def test_of(slug: str) -> None:
    status, title = PROBLEM_TYPES[slug]
    problem = ProblemError.of(slug, "what to do", headers={"X-Slug": slug}, extra=1)
    assert problem.status == status
    assert problem.headers == {"X-Slug": slug}
    assert problem.to_dict() == {
        "type": PROBLEM_BASE_URI + slug,
        "title": title,
        "status": status,
        "detail": "what to do",
        "extra": 1,
    }
    response = problem.to_response()
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


def test_of_unknown_slug() -> None:
    with pytest.raises(KeyError):
        ProblemError.of("no-such-problem", "x")


# --- JSON Pointer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), ""),
        (("body",), "/body"),
        (("body", "items", 0, "name"), "/body/items/0/name"),
        (("a/b",), "/a~1b"),
        (("m~n",), "/m~0n"),
        (("~1",), "/~01"),
        (("/~",), "/~1~0"),
        (("",), "/"),
        (("", ""), "//"),
        (("a b", "é"), "/a b/é"),
        ([1, 2], "/1/2"),
    ],
    ids=lambda v: repr(v),
)
def test_json_pointer(loc: Any, expected: str) -> None:
    assert json_pointer(loc) == expected


# --- validation problems ---------------------------------------------------------------------


def test_validation_problem_shape() -> None:
    problem = validation_problem(
        [
            {
                "loc": ("body", "items", 0, "a/b"),
                "msg": "Input should be a valid integer",
                "type": "int_parsing",
                "input": "SECRET-input",
                "ctx": {"secret": "SECRET-ctx"},
            },
            {"loc": ("query", "limit"), "msg": "Field required", "type": "missing"},
        ]
    )
    doc = problem.to_dict()
    assert doc == {
        "type": PROBLEM_BASE_URI + "validation-failed",
        "title": "Request Validation Failed",
        "status": 422,
        "detail": "2 validation errors in the request.",
        "errors": [
            {
                "detail": "Input should be a valid integer",
                "pointer": "/body/items/0/a~1b",
                "code": "int_parsing",
            },
            {"detail": "Field required", "pointer": "/query/limit", "code": "missing"},
        ],
    }
    assert b"SECRET" not in problem.to_response().body


def test_validation_problem_singular_and_defaults() -> None:
    doc = validation_problem([{}]).to_dict()
    assert doc["detail"] == "1 validation error in the request."
    assert doc["errors"] == [{"detail": "invalid value", "pointer": "", "code": "value_error"}]


def test_validation_problem_from_pydantic() -> None:
    from pydantic import BaseModel, ValidationError

    class Item(BaseModel):
        id: int
        tags: list[str]

    with pytest.raises(ValidationError) as info:
        Item.model_validate({"id": "x", "tags": ["a", 1]})
    doc = validation_problem(info.value.errors()).to_dict()
    assert [e["pointer"] for e in doc["errors"]] == ["/id", "/tags/1"]
    assert [e["code"] for e in doc["errors"]] == ["int_parsing", "string_type"]
