"""The library's errors, and RFC 9457 problem details (opt-in) for every error an app answers.

Every error the library raises is a :class:`ProblemError`, an ``HTTPException``: the app's
handlers render it in FastAPI's shape (``{"detail": "..."}``) by default. With
``problem_details=True`` on ``SerdesMiddleware``, :class:`ProblemDetailsApp` turns every error
response in FastAPI's shape into an ``application/problem+json`` document whose ``type`` URI is
stable (documented in ``docs/reference/problems.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from ._types import no_receive
from .negotiation import is_json_content_type

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The library's problem ``type`` URIs are this base and a slug of :data:`PROBLEM_TYPES`: stable
#: identifiers, compared as strings by clients (never change one).
PROBLEM_BASE_URI = "https://fastapi-serdes.dev/problems/"
#: The documentation of the library's problem types, one section per slug (``#not-acceptable``).
PROBLEM_DOCS_URI = "https://fastapi-serdes.dev/reference/problems/"

# slug -> (status, title) of each problem the library raises; the slug is also the docs anchor.
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
    "precondition-failed": (412, "Precondition Failed"),
}


class SerdesError(Exception):
    """Base class of every exception fastapi-serdes raises."""


class ProblemError(SerdesError, HTTPException):
    """An HTTP error that carries its RFC 9457 problem document.

    It is an ``HTTPException``: the app's handlers render it (FastAPI's default gives
    ``{"detail": detail}``); with ``problem_details=True`` on ``SerdesMiddleware`` the client
    gets the problem document, ``application/problem+json``, instead.

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
        self.problem_detail = detail
        self.extensions = extensions
        HTTPException.__init__(self, status, detail or self.title, dict(headers or {}))
        made = _MADE.get()
        if made is not None:
            made.append(self)

    def __str__(self) -> str:
        detail = self.problem_detail
        return f"{self.status} {self.title}: {detail}" if detail else f"{self.status} {self.title}"

    @classmethod
    def of(cls, slug: str, detail: str, **kwargs: Any) -> ProblemError:
        """One of the library's own problems, by its slug in ``PROBLEM_TYPES``."""
        status, title = PROBLEM_TYPES[slug]
        return cls(status, detail=detail, title=title, type=PROBLEM_BASE_URI + slug, **kwargs)

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document as a dict, members in the RFC's order."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.problem_detail is not None:
            doc["detail"] = self.problem_detail
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

    def render(self, problem_details: bool) -> Response:
        """The problem document, or what FastAPI's default ``HTTPException`` handler sends."""
        if problem_details:
            return self.to_response()
        return JSONResponse({"detail": self.detail}, self.status, headers=self.headers)


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

    The input values are not echoed back: they may be large, binary or secret.
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
        "validation-failed", f"{len(located)} validation {noun} in the request.", errors=located
    )


def unrenderable_validation(exc: BaseException) -> ProblemError | None:
    """The 422 that FastAPI's handler failed (``exc``) to render, else None.

    That handler echoes each error's input and fails on bytes that are not UTF-8, a lone
    surrogate or a non-finite number: a 500 for bad input. Its error is ``exc.__context__``.
    """
    context = exc.__context__
    if isinstance(exc, ValueError | TypeError) and isinstance(context, RequestValidationError):
        problem = validation_problem(context.errors())
        # FastAPI's shape, without the input it could not render.
        problem.detail = [  # type: ignore[assignment]
            {k: v for k, v in err.items() if k in ("type", "loc", "msg")}
            for err in context.errors()
        ]
        return problem
    return None


# The ProblemErrors made while ProblemDetailsApp serves a request: the app's handlers render one
# as {"detail": ...}, and the layer sends that problem's own document instead. A context variable,
# because the error is made deep inside the app, in endpoint code.
_MADE: ContextVar[list[ProblemError] | None] = ContextVar("fastapi_serdes_problems", default=None)


def problem_for(status: int, body: bytes, raised: ProblemError | None) -> ProblemError | None:
    """The problem for an error response in FastAPI's shape, or None for any other.

    FastAPI's shape is a JSON object whose only member is ``detail``: a string or a list of
    located errors. ``raised`` is the library's error behind it, used when its status matches.
    """
    if raised is not None and raised.status == status:
        return raised
    doc = _fastapi_error(body)
    if doc is None:
        return None
    detail = doc["detail"]
    if isinstance(detail, list) and all(isinstance(err, dict) for err in detail):
        problem = validation_problem(detail)
        if status != problem.status:
            problem = ProblemError(status, detail=problem.problem_detail, **problem.extensions)
        return problem
    return ProblemError(status, detail=detail if isinstance(detail, str) else str(detail))


def _fastapi_error(body: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and doc.keys() == {"detail"} else None


def _as_problem(
    start: dict[str, Any], body: bytes, made: list[ProblemError]
) -> tuple[dict[str, Any], bytes]:
    """A held error response, as a problem document when it is in FastAPI's shape."""
    raised = next((p for p in reversed(made) if p.status == start["status"]), None)
    problem = problem_for(start["status"], body, raised)
    if problem is None:
        return start, body
    body = orjson.dumps(problem.to_dict(), default=str)
    headers = [
        (k, v) for k, v in start.get("headers", ()) if k not in (b"content-type", b"content-length")
    ]
    headers.append((b"content-type", PROBLEM_MEDIA_TYPE.encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    return {**start, "headers": headers}, body


class ProblemDetailsApp:
    """Wraps an ASGI app so that it answers every error as a problem document.

    The start of an error response in JSON is held until its body is complete, then sent as a
    problem document when it is in FastAPI's shape. An exception no handler took is answered
    500 with a problem document that shows nothing of it, then re-raised so the server logs it,
    unless the app handles ``Exception`` / 500 itself or runs with ``debug=True``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        made: list[ProblemError] = []
        held: dict[str, Any] | None = None  # the start of an error response, until its body ends
        body: list[bytes] = []
        started = False

        async def send_problem(message: Any) -> None:
            nonlocal held, started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 400 and _is_json(message):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                start, content = _as_problem(held, b"".join(body), made)
                held = None
                await send(start)
                message = {"type": "http.response.body", "body": content}
            await send(message)

        token = _MADE.set(made)
        try:
            await self.app(scope, receive, send_problem)
        except Exception as exc:
            # An unrenderable validation error is SerdesMiddleware's to answer (a 422).
            if not (started or unrenderable_validation(exc) or _answers_errors(scope.get("app"))):
                internal = ProblemError(500, detail="The server failed to answer this request.")
                await internal.to_response()({"type": "http"}, no_receive, send)
            raise
        finally:
            _MADE.reset(token)


def _is_json(start: Any) -> bool:
    content_type = next((v for k, v in start.get("headers", ()) if k == b"content-type"), None)
    return content_type is not None and is_json_content_type(content_type)


def _answers_errors(app: Any) -> bool:
    """Whether the Starlette app answers unhandled exceptions itself (a handler, or debug)."""
    handlers = getattr(app, "exception_handlers", None) or {}
    return bool(getattr(app, "debug", False)) or Exception in handlers or 500 in handlers
