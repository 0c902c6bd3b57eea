"""OpenAPI additions for ``SerdesRoute``: every codec's media type, and the problem responses.

FastAPI documents one media type per operation. A ``SerdesRoute`` answers and accepts every
codec's media types with the same schema, so each extra media type points (JSON Reference) at the
schema FastAPI generated for ``application/json`` in the same operation: no schema is copied and
component names stay FastAPI's.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import params
from fastapi.utils import is_body_allowed_for_status_code

from .negotiation import is_json_content_type
from .problems import (
    PROBLEM_BASE_URI,
    PROBLEM_DOCS_URI,
    PROBLEM_MEDIA_TYPE,
    ProblemError,
    json_pointer,
    validation_problem,
)
from .view_models import fields_of

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": (
                "The problem type: the library's are documented at "
                f"{PROBLEM_DOCS_URI}; about:blank when the status says it all."
            ),
            # Without an example, documentation tools invent one ("path/index.html").
            "examples": [PROBLEM_BASE_URI + "validation-failed", "about:blank"],
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}

_VALIDATION_SCHEMA: dict[str, Any] = {
    **PROBLEM_SCHEMA,
    "title": "ValidationProblem",
    "properties": {
        **PROBLEM_SCHEMA["properties"],
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {name: {"type": "string"} for name in ("detail", "pointer", "code")},
                "required": ["detail", "pointer"],
            },
        },
    },
}


# The detail of one example per problem the library raises: what a client of a typical route gets.
_EXAMPLE_DETAILS: dict[str, str] = {
    "not-acceptable": (
        "None of the media types in Accept can be produced; accept one of application/json, "
        "application/msgpack."
    ),
    "unsupported-media-type": (
        "Content-Type 'text/csv' is not supported; send one of application/json, "
        "application/msgpack."
    ),
    "malformed-body": "Invalid MessagePack: the body is truncated",
    "body-too-large": "The request body is larger than the 1048576 bytes this server reads.",
    "encode-failed": (
        "The response could not be encoded: application/msgpack: /price: NaN is not a finite number"
    ),
    "not-acceptable-encoding": (
        "Accept-Encoding refuses identity and every coding on offer; accept one of zstd, br, "
        "gzip or identity."
    ),
    "unsupported-content-encoding": (
        "Content-Encoding 'deflate' is not supported; send the body with one of zstd, br, gzip "
        "(or uncompressed)."
    ),
    "precondition-failed": (
        "If-Match names none of the current representation's entity tags: it changed since "
        "you read it; GET it again."
    ),
    "invalid-selection": "?view=: unknown view 'minimall'; did you mean 'minimal'?",
}


def problem_example(slug: str) -> ProblemError:
    """An example of the library's problem ``slug``, with its real ``type`` URI."""
    if slug == "validation-failed":
        missing = {"msg": "Field required", "loc": ("body", "name"), "type": "missing"}
        return validation_problem([missing])
    return ProblemError.of(slug, _EXAMPLE_DETAILS[slug])


def problem_response(*errors: ProblemError, description: str | None = None) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for problems an endpoint raises, one example each.

    Example::

        @router.get("/users/{user_id}", responses={
            404: problem_response(ProblemError(404, detail="No user with id 7.")),
        })

    Args:
        *errors: example errors of one status (their documents are the examples).
        description: the response's description; default: the examples' titles.
    """
    statuses = sorted({error.status for error in errors})
    if len(statuses) != 1:
        raise ValueError(f"problem_response needs examples of one status, got {statuses or None}")
    examples: dict[str, Any] = {}
    for error in errors:
        key = _example_key(error)
        key = key if key not in examples else f"{key}-{len(examples) + 1}"
        examples[key] = {"summary": error.title, "value": error.to_dict()}
    titles = dict.fromkeys(error.title for error in errors)
    return {
        "description": description or ", or ".join(titles),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA, "examples": examples}},
    }


def _example_key(error: ProblemError) -> str:
    """The library's slug for its own problems, else the title in lower-case words and hyphens."""
    if error.type.startswith(PROBLEM_BASE_URI):
        return error.type.removeprefix(PROBLEM_BASE_URI)
    return "-".join(re.findall(r"[a-z0-9]+", error.title.lower())) or str(error.status)


def _problem(*slugs: str, schema: dict[str, Any] = PROBLEM_SCHEMA) -> dict[str, Any]:
    """The ``responses`` entry of some of the library's problems, all of one status."""
    response = problem_response(*map(problem_example, slugs))
    response["content"][PROBLEM_MEDIA_TYPE]["schema"] = schema
    return response


def route_problem_responses(route: Any) -> dict[int | str, dict[str, Any]]:
    """The problem responses an ``APIRoute`` may give (by its body and parameters)."""
    responses: dict[int | str, dict[str, Any]] = {406: _problem("not-acceptable")}
    has_body = route.body_field is not None
    if has_body:
        responses[400] = _problem("malformed-body")
        responses[413] = _problem("body-too-large")
        responses[415] = _problem("unsupported-media-type")
    kinds = ("path_params", "query_params", "header_params", "cookie_params", "dependencies")
    if has_body or any(getattr(route.dependant, kind) for kind in kinds):
        responses[422] = _problem("validation-failed", schema=_VALIDATION_SCHEMA)
    return responses


def selection_responses(existing: dict[int | str, dict[str, Any]]) -> dict[int | str, Any]:
    """The 400 ``invalid-selection`` response of a route with views (merged with a body's 400)."""
    if 400 in existing:  # the body's malformed-body
        return {400: _problem("malformed-body", "invalid-selection")}
    return {400: _problem("invalid-selection")}


class GeneratedExtra(dict[str, Any]):
    """An ``openapi_extra`` this module computed, holding what the user passed: FastAPI releases
    before 0.160 copy an included route with it, and the copy starts again from the user's own."""

    def __init__(self, extra: dict[str, Any], user: dict[str, Any] | None) -> None:
        super().__init__(extra)
        self.user = user


def user_extra_of(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the user passed as ``openapi_extra`` (see :class:`GeneratedExtra`)."""
    return extra.user if isinstance(extra, GeneratedExtra) else extra


def operation_extra(
    route: Any, settings: Any, user_extra: dict[str, Any] | None, views: Any
) -> dict[str, Any]:
    """``openapi_extra`` adding every codec's media types to the route's operation(s).

    ``route`` is the route as included (its ``path_format`` holds the router prefixes);
    ``user_extra`` is what the user passed as ``openapi_extra``, kept on top.
    """
    media_types = [m for m in settings.offers if m != "application/json"]
    extra: dict[str, Any] = copy.deepcopy(user_extra or {})
    if views is not None:
        extra.setdefault("parameters", []).extend(view_parameters(views))
    if not media_types or not route.methods:
        return GeneratedExtra(extra, user_extra)
    base = "#" + json_pointer(["paths", route.path_format, sorted(route.methods)[0].lower()])
    status = route.status_code or 200
    if is_body_allowed_for_status_code(status):  # a 204 has no content
        response = extra.setdefault("responses", {}).setdefault(str(status), {})
        _point_at_json(response, media_types, f"{base}/responses/{status}")
    # Only a JSON body has codec equivalents (not forms, files, or another declared media type).
    if _json_body(getattr(route.body_field, "field_info", None)):
        _point_at_json(extra.setdefault("requestBody", {}), media_types, f"{base}/requestBody")
    return GeneratedExtra(extra, user_extra)


def _point_at_json(entry: dict[str, Any], media_types: list[str], pointer: str) -> None:
    """Add ``media_types`` to the content of ``entry`` (at ``pointer``), with its JSON schema."""
    ref = {"$ref": pointer + json_pointer(["content", "application/json", "schema"])}
    content = entry.setdefault("content", {})
    for media_type in media_types:
        content.setdefault(media_type, {"schema": ref})


def _json_body(field_info: Any) -> bool:
    if field_info is None or isinstance(field_info, params.Form):  # File is a Form
        return False
    media_type = str(getattr(field_info, "media_type", "application/json"))
    return is_json_content_type(media_type.encode("latin-1"))


def view_parameters(views: Any) -> list[dict[str, Any]]:
    """The ``view`` and ``fields`` query parameters of a route with views."""
    names = sorted(views.views)
    fields = sorted(fields_of(views.members[0]))
    return [
        {
            "name": views.query_view,
            "in": "query",
            "required": False,
            "description": "The response view. `Prefer: return=minimal` selects `minimal`.",
            "schema": {"type": "string", "enum": names, "default": views.default},
        },
        {
            "name": views.query_fields,
            "in": "query",
            "required": False,
            "description": (
                "Comma-separated fields to return (dotted paths for nested fields, "
                f"at most {views.max_fields}, {views.max_depth} levels). Top-level fields: "
                + ", ".join(fields)
            ),
            "schema": {"type": "string"},
        },
    ]
