"""What the routes declare for OpenAPI beyond their success and the library's own problems.

Each example document is made by the function the endpoint raises with, so the documentation
cannot drift from what the API sends; a test checks every status the routes answer is listed.
"""

from typing import Any

from example_app.pagination import invalid_cursor
from fastapi_serdes import ProblemError
from fastapi_serdes.cache.layer import precondition_failed
from fastapi_serdes.openapi import problem_response

#: Every ``GET`` on a ``SerdesRoute`` carries an ``ETag``; sent back in ``If-None-Match``, it
#: gets a bodiless 304 while the answer is the same.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not Modified: the ETag sent in If-None-Match still matches; no body.",
        "headers": {"ETag": {"description": "The strong ETag of the answer.", "schema": {}}},
    }
}

#: ``?cursor=`` that the API did not return, or a ``?view=`` / ``?fields=`` it cannot serve.
BAD_PAGE: dict[int | str, dict[str, Any]] = {
    400: problem_response(
        invalid_cursor("bm90LWEtY3Vyc29y"),
        ProblemError.of(
            "invalid-selection",
            "?view=: unknown view 'minimall'; did you mean "
            "'minimal'? Allowed: detailed, minimal, standard",
        ),
    )
}


def not_found(error: ProblemError) -> dict[int | str, dict[str, Any]]:
    """The 404 of a route that looks one resource up, ``error`` as its example."""
    return {404: problem_response(error)}


#: The 412 of a conditional write (``If-Match``) whose tag is no longer the current one.
PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = {
    412: problem_response(
        precondition_failed(),
        description="Precondition Failed: the video changed since the ETag in If-Match.",
    )
}
