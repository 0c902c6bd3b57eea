"""RFC 9457 problem details: the library's exceptions and their rendering.

Every error the library produces is an ``application/problem+json`` document with a stable
``type`` URI (documented in ``docs/reference/problems.md``), a stable ``title``, the HTTP
``status``, a ``detail`` that helps the client fix the request, and sometimes extensions such
as ``errors`` (validation failures located by JSON Pointer) or ``available`` (media types).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE_URI = "https://fastapi-serdes.dev/problems/"

# One entry per problem the library itself raises: slug -> (status, title).
# The slug is the last segment of the ``type`` URI and the anchor of its docs section.
PROBLEM_TYPES: Mapping[str, tuple[int, str]] = {
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


class SerdesError(Exception):
    """Base class of every exception fastapi-serdes raises."""


class ProblemError(SerdesError):
    """An HTTP error rendered as RFC 9457 problem details.

    Raise it from an endpoint (or a dependency) behind ``SerdesRoute`` to answer with
    ``application/problem+json``.

    Args:
        status: the HTTP status code, 400-599.
        detail: a human explanation specific to this occurrence.
        title: a short summary, stable per ``type``; defaults to the status phrase.
        type: a URI naming the problem type; defaults to ``about:blank``.
        headers: extra response headers.
        **extensions: more members of the problem document (JSON-serialisable values).
    """

    def __init__(
        self,
        status: int,
        *,
        detail: str | None = None,
        title: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"ProblemError status must be 400-599, got {status!r}")
        self.status = status
        self.type = type or "about:blank"
        self.title = title or _phrase(status)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(f"{status} {self.title}: {detail}" if detail else f"{status} {self.title}")

    @classmethod
    def of(
        cls,
        slug: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> ProblemError:
        """Build one of the library's own problems from its slug in ``PROBLEM_TYPES``."""
        status, title = PROBLEM_TYPES[slug]
        return cls(
            status,
            detail=detail,
            title=title,
            type=PROBLEM_BASE_URI + slug,
            headers=headers,
            **extensions,
        )

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document as a dict, members in the RFC's order."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            doc["detail"] = self.detail
        if instance is not None:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc

    def to_response(self, instance: str | None = None) -> Response:
        """Render as an ``application/problem+json`` response."""
        body = orjson.dumps(self.to_dict(instance), default=str)
        return Response(
            body, status_code=self.status, headers=self.headers, media_type=PROBLEM_MEDIA_TYPE
        )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status without a registered phrase, e.g. 499
        return "Client Error" if status < 500 else "Server Error"


class DecodeError(SerdesError, ValueError):
    """Bytes that a codec cannot turn into a value (malformed, truncated, over a limit)."""


class EncodeError(SerdesError, ValueError):
    """A value that a codec cannot represent; the message names the field and the codec."""


def json_pointer(loc: Sequence[str | int]) -> str:
    """RFC 6901 JSON Pointer for a pydantic error location."""
    parts = (str(p).replace("~", "~0").replace("/", "~1") for p in loc)
    return "/" + "/".join(parts) if loc else ""


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> ProblemError:
    """A 422 problem from pydantic / FastAPI validation errors, each located by JSON Pointer.

    The first element of a FastAPI location names where the value came from (``body``,
    ``query``, ``path``, ``header``, ``cookie``); it is kept as the pointer's first segment.
    Input values are not echoed back: they may be large, binary or secret.
    """
    located = [
        {
            "detail": str(err.get("msg", "invalid value")),
            "pointer": json_pointer(tuple(err.get("loc", ()))),
            "code": str(err.get("type", "value_error")),
        }
        for err in errors
    ]
    noun = "error" if len(located) == 1 else "errors"
    return ProblemError.of(
        "validation-failed",
        f"{len(located)} validation {noun} in the request.",
        errors=located,
    )


def unrenderable_validation(exc: BaseException) -> ProblemError | None:
    """The 422 a plain route meant, when FastAPI's default handler for its
    ``RequestValidationError`` failed (``exc``) to render it.

    That handler echoes each error's input, and fails on a binary body (a route expecting JSON
    sent bytes that are not UTF-8) or a lone surrogate (``"\\ud800"``): a 500 for bad input.
    The error it was rendering is ``exc.__context__``. None for any other exception.
    """
    context = exc.__context__
    if isinstance(exc, UnicodeError) and isinstance(context, RequestValidationError):
        return validation_problem(context.errors())
    return None
