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
    PROBLEM_TYPES,
    ProblemError,
)

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
                "properties": {
                    "detail": {"type": "string"},
                    "pointer": {"type": "string"},
                    "code": {"type": "string"},
                },
                "required": ["detail", "pointer"],
            },
        },
    },
}


# One example document per problem the library raises: what a client of a typical route gets.
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
    "validation-failed": "1 validation error in the request.",
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
_EXAMPLE_EXTENSIONS: dict[str, dict[str, Any]] = {
    "validation-failed": {
        "errors": [{"detail": "Field required", "pointer": "/body/name", "code": "missing"}]
    },
}


def problem_example(slug: str) -> dict[str, Any]:
    """An example document of the library's problem ``slug``, with its real ``type`` URI."""
    return ProblemError.of(
        slug, _EXAMPLE_DETAILS[slug], **_EXAMPLE_EXTENSIONS.get(slug, {})
    ).to_dict()


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


def _problem(slug: str, schema: dict[str, Any] = PROBLEM_SCHEMA) -> dict[str, Any]:
    title = PROBLEM_TYPES[slug][1]
    example = {"summary": title, "value": problem_example(slug)}
    return {
        "description": title,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": schema, "examples": {slug: example}}},
    }


def problem_responses(*, has_body: bool, has_params: bool) -> dict[int | str, dict[str, Any]]:
    """The problem responses a ``SerdesRoute`` may give, for its ``responses``."""
    responses: dict[int | str, dict[str, Any]] = {406: _problem("not-acceptable")}
    if has_body:
        responses[400] = _problem("malformed-body")
        responses[413] = _problem("body-too-large")
        responses[415] = _problem("unsupported-media-type")
    if has_body or has_params:
        responses[422] = _problem("validation-failed", _VALIDATION_SCHEMA)
    return responses


def route_problem_responses(route: Any) -> dict[int | str, dict[str, Any]]:
    """:func:`problem_responses` for an ``APIRoute``: its body, its parameters."""
    dependant = route.dependant
    has_params = bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.dependencies
    )
    return problem_responses(has_body=route.body_field is not None, has_params=has_params)


class GeneratedExtra(dict[str, Any]):
    """An ``openapi_extra`` this module computed, holding what the user passed.

    FastAPI releases before 0.160 copy a route when a router is included, passing the computed
    ``openapi_extra`` on: the copy starts again from the user's own (its paths differ).
    """

    def __init__(self, extra: dict[str, Any], user: dict[str, Any] | None) -> None:
        super().__init__(extra)
        self.user = user


def user_extra_of(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the user passed as ``openapi_extra`` (see :class:`GeneratedExtra`)."""
    return extra.user if isinstance(extra, GeneratedExtra) else extra


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def operation_extra(
    route: Any, settings: Any, user_extra: dict[str, Any] | None, views: Any = None
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
    method = sorted(route.methods)[0].lower()
    base = f"#/paths/{_escape(route.path_format)}/{method}"
    status = route.status_code or 200
    if is_body_allowed_for_status_code(status):  # a 204 has no content
        response = extra.setdefault("responses", {}).setdefault(str(status), {})
        _point_at_json(response, media_types, f"{base}/responses/{status}")
    # Only a JSON body has codec equivalents (not forms, files, or another declared media type).
    if _json_body(getattr(route.body_field, "field_info", None)):
        _point_at_json(extra.setdefault("requestBody", {}), media_types, f"{base}/requestBody")
    return GeneratedExtra(extra, user_extra)


def _point_at_json(entry: dict[str, Any], media_types: list[str], pointer: str) -> None:
    """Add ``media_types`` to ``entry``'s content, each with the schema of its JSON content
    (``pointer`` locates ``entry`` in the OpenAPI document)."""
    ref = {"$ref": f"{pointer}/content/{_escape('application/json')}/schema"}
    content = entry.setdefault("content", {})
    for media_type in media_types:
        content.setdefault(media_type, {"schema": ref})


def _json_body(field_info: Any) -> bool:
    if field_info is None or isinstance(field_info, params.Form):  # File is a Form
        return False
    # The codecs' entries point at the application/json schema: only that one has equivalents.
    media_type = str(getattr(field_info, "media_type", "application/json"))
    return is_json_content_type(media_type.encode("latin-1"))


def view_parameters(views: Any) -> list[dict[str, Any]]:
    """The ``view`` and ``fields`` query parameters of a route with views."""
    names = sorted(views.views)
    member = views.members[0]
    fields = sorted([*member.model_fields, *member.model_computed_fields])
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


def selection_responses(existing: dict[int | str, dict[str, Any]]) -> dict[int | str, Any]:
    """The 400 ``invalid-selection`` response of a route with views (merged with a body's 400)."""
    title = PROBLEM_TYPES["invalid-selection"][1]
    current = existing.get(400)
    if current is not None and "content" in current:
        merged = copy.deepcopy(current)
        media = merged["content"].setdefault(PROBLEM_MEDIA_TYPE, {"schema": PROBLEM_SCHEMA})
        media.setdefault("examples", {}).update(
            _problem("invalid-selection")["content"][PROBLEM_MEDIA_TYPE]["examples"]
        )
        return {400: {**merged, "description": f"{current['description']}, or {title}"}}
    return {400: _problem("invalid-selection")}
