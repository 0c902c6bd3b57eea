"""ProblemError (an HTTPException), the library's problem types, JSON Pointers, and the opt-in
RFC 9457 rendering of every error (``SerdesMiddleware(problem_details=True)``)."""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from fastapi_serdes import DecodeError, EncodeError, ProblemError, SerdesError, SerdesMiddleware
from fastapi_serdes.problems import (
    PROBLEM_BASE_URI,
    PROBLEM_DOCS_URI,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPES,
    json_pointer,
    problem_for,
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
        "precondition-failed": (412, "Precondition Failed"),
    }
    assert PROBLEM_BASE_URI == "https://fastapi-serdes.dev/problems/"


def test_each_problem_type_has_its_docs_section() -> None:
    """docs/reference/problems.md (served at PROBLEM_DOCS_URI) has one section per slug, its
    anchor the slug, naming the type URI, status and title the library sends."""
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "reference" / "problems.md").read_text(encoding="utf-8")
    site = re.search(r"^site_url: (\S+)$", (root / "mkdocs.yml").read_text(), re.MULTILINE)
    assert site is not None
    assert site.group(1).rstrip("/") + "/reference/problems/" == PROBLEM_DOCS_URI
    sections = dict(re.findall(r"^## (\S+) \{ #(\S+) \}$", page, re.MULTILINE))
    for slug, (status, title) in PROBLEM_TYPES.items():
        assert sections.get(slug) == slug, f"no section '## {slug} {{ #{slug} }}'"
        body = page.split(f"{{ #{slug} }}", 1)[1].split("\n## ", 1)[0]
        assert f"- **type:** `{PROBLEM_BASE_URI}{slug}`" in body
        assert f"- **status:** {status} · **title:** {title}" in body
        assert f"| [`{slug}`](#{slug}) | {status} | {title} |" in page


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


# --- ProblemError is FastAPI's HTTPException; rendered in FastAPI's shape or as a problem -------


def test_problem_error_is_an_http_exception() -> None:
    problem = ProblemError.of("invalid-selection", "No such view.", headers={"X-A": "1"}, views=[])
    assert isinstance(problem, HTTPException)
    assert (problem.status_code, problem.status) == (400, 400)
    assert problem.detail == "No such view."  # what FastAPI's handler writes
    assert problem.problem_detail == "No such view."
    assert problem.type == PROBLEM_BASE_URI + "invalid-selection"
    assert problem.headers == {"X-A": "1"}
    untold = ProblemError(503)
    assert untold.detail == "Service Unavailable"  # the title when there is no detail
    assert untold.problem_detail is None
    assert "detail" not in untold.to_dict()


def test_render_in_fastapis_shape_or_as_a_problem() -> None:
    problem = ProblemError.of("body-too-large", "Too big.", headers={"Retry-After": "1"}, limit=10)
    plain = problem.render(problem_details=False)
    assert plain.status_code == 413
    assert plain.headers["content-type"] == "application/json"
    assert plain.headers["retry-after"] == "1"
    assert orjson.loads(plain.body) == {"detail": "Too big."}
    rfc = problem.render(problem_details=True)
    assert rfc.status_code == 413
    assert rfc.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert rfc.headers["retry-after"] == "1"
    assert orjson.loads(rfc.body) == problem.to_dict()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"detail":"Not Found"}', {"type": "about:blank", "title": "Not Found",
                                         "status": 404, "detail": "Not Found"}),
        (418, b'{"detail":{"why":"teapot"}}', {"type": "about:blank",
                                              "title": "I'm a Teapot", "status": 418,
                                              "detail": "{'why': 'teapot'}"}),
        (422, b'{"detail":[{"type":"missing","loc":["query","q"],"msg":"Field required"}]}',
         {"type": PROBLEM_BASE_URI + "validation-failed", "title": "Request Validation Failed",
          "status": 422, "detail": "1 validation error in the request.",
          "errors": [{"detail": "Field required", "pointer": "/query/q", "code": "missing"}]}),
    ],
)  # fmt: skip
def test_problem_for_fastapis_error_shapes(
    status: int, body: bytes, expected: dict[str, Any]
) -> None:
    problem = problem_for(status, body, None)
    assert problem is not None
    assert problem.to_dict() == expected


@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", b'{"detail":"x","extra":1}', b'{"message":"x"}']
)
def test_problem_for_leaves_other_shapes_alone(body: bytes) -> None:
    assert problem_for(400, body, None) is None


def test_problem_for_prefers_the_librarys_own_problem() -> None:
    raised = ProblemError.of("not-acceptable", "Nothing fits.", available=["application/json"])
    assert problem_for(406, b'{"detail":"Nothing fits."}', raised) is raised
    # Not the error behind this response (another status): derived from the body.
    other = problem_for(500, b'{"detail":"boom"}', raised)
    assert other is not None
    assert other.type == "about:blank"


# --- every error of an app: FastAPI's shape by default, problems with problem_details=True ------


def errors_app(problem_details: bool) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, problem_details=problem_details)

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, detail="Short and stout", headers={"X-Tea": "1"})

    @app.get("/count")
    async def count(n: int) -> int:
        return n

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal secret")

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("no", status_code=409)

    return app


async def answers(app: FastAPI) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return {
            "teapot": await c.get("/teapot"),
            "validation": await c.get("/count?n=x"),
            "not-found": await c.get("/nowhere"),
            "method": await c.post("/count?n=1"),
            "unhandled": await c.get("/boom"),
            "text": await c.get("/text"),
        }


@pytest.mark.anyio
async def test_by_default_every_error_keeps_fastapis_shape() -> None:
    res = await answers(errors_app(problem_details=False))
    for name in ("teapot", "validation", "not-found", "method"):
        assert res[name].headers["content-type"] == "application/json", name
    assert res["teapot"].json() == {"detail": "Short and stout"}
    assert res["teapot"].headers["x-tea"] == "1"
    (error,) = res["validation"].json()["detail"]
    assert (res["validation"].status_code, error["loc"]) == (422, ["query", "n"])
    assert (res["not-found"].status_code, res["not-found"].json()) == (404, {"detail": "Not Found"})
    assert res["method"].status_code == 405
    assert res["method"].json() == {"detail": "Method Not Allowed"}
    assert (res["unhandled"].status_code, res["unhandled"].text) == (500, "Internal Server Error")
    assert (res["text"].status_code, res["text"].text) == (409, "no")


@pytest.mark.anyio
async def test_problem_details_turns_every_error_into_a_problem() -> None:
    res = await answers(errors_app(problem_details=True))
    for name in ("teapot", "validation", "not-found", "method", "unhandled"):
        assert res[name].headers["content-type"] == PROBLEM_MEDIA_TYPE, name
        assert res[name].json()["status"] == res[name].status_code, name
    assert res["teapot"].json() == {"type": "about:blank", "title": "I'm a Teapot",
                                    "status": 418, "detail": "Short and stout"}  # fmt: skip
    assert res["teapot"].headers["x-tea"] == "1"
    validation = res["validation"].json()
    assert res["validation"].status_code == 422
    assert validation["type"] == PROBLEM_BASE_URI + "validation-failed"
    assert [e["pointer"] for e in validation["errors"]] == ["/query/n"]
    assert set(validation["errors"][0]) == {"detail", "pointer", "code"}  # no input echoed
    assert res["not-found"].json()["type"] == "about:blank"
    assert res["not-found"].status_code == 404
    assert (res["method"].status_code, res["method"].json()["title"]) == (405, "Method Not Allowed")
    assert res["unhandled"].status_code == 500
    assert res["unhandled"].json()["type"] == "about:blank"
    assert "secret" not in res["unhandled"].text
    # An error the app answers in its own format is the app's.
    assert (res["text"].status_code, res["text"].text) == (409, "no")
