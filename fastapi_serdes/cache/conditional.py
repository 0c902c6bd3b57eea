"""What ``SerdesRoute`` sends for what it produced: one ``Vary`` line, the strong ETag of a
GET's 200 and the 304 when the client already holds it (RFC 9110 §13), and the mark that lets
the response cache store it.
"""

from __future__ import annotations

from typing import Any

from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response

from ..settings import header
from ..state import RequestState
from ..vary import route_vary
from . import NOT_MODIFIED_HEADERS, CachePolicy, credentialed, etag_for, matching_tag


def respond(
    request: Request,
    state: RequestState,
    response: Response,
    *,
    media_type: str | None,
    views: bool,
    cache: CachePolicy | None,
    view_headers: list[tuple[bytes, bytes]],
) -> Response:
    """What FastAPI's handler answered, with what the negotiation adds: the negotiated
    ``Content-Type`` (``media_type``, None to keep FastAPI's), ``Vary``, the ETag of a GET's
    200 and the 304 when the client holds it, the mark that lets the response cache store it."""
    scope = request.scope
    code = response.status_code
    headers = response.raw_headers
    if media_type is not None and is_body_allowed_for_status_code(code):
        _replace(headers, b"content-type", media_type)
    get_ok = code == 200 and scope["method"] in ("GET", "HEAD")
    policy = _storable(cache, scope) if get_ok else None
    if policy is None:
        route_vary(headers, views=views, declared=(), request_headers=None)
    else:  # a per-principal key varies on the credentials the request carried
        request_headers = scope["headers"] if policy.key else None
        route_vary(headers, views=views, declared=policy.vary, request_headers=request_headers)
    headers.extend(view_headers)
    if not get_ok:
        return response
    etag = etag_for(bytes(response.body))
    headers.append((b"etag", etag.encode("latin-1")))
    if policy is not None:
        _mark_cacheable(policy, request, state, headers)
    theirs = matching_tag(header(scope, b"if-none-match"), etag)
    if theirs is None:
        return response
    # The client's own tag: for a compressed variant it is the "-<coding>" one its cached 200
    # carried, which the identity ETag computed here is not.
    if theirs != etag and theirs.startswith('"'):
        _replace(headers, b"etag", theirs)
    return _not_modified(headers, response.background)


def _replace(headers: list[tuple[bytes, bytes]], name: bytes, value: str) -> None:
    headers[:] = [(k, v) for k, v in headers if k != name]
    headers.append((name, value.encode("latin-1")))


def _storable(cache: CachePolicy | None, scope: Any) -> CachePolicy | None:
    """The route's cache policy, unless a shared entry would hold what a credentialed request
    got (only a per-principal key may)."""
    if cache is None or (cache.key is None and credentialed(scope)):
        return None
    return cache


def _not_modified(headers: list[tuple[bytes, bytes]], background: Any) -> Response:
    """304: what the 200 would have carried among ETag, Vary, Cache-Control... and no body."""
    response = Response(status_code=304, background=background)
    response.raw_headers = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS]
    return response


def _mark_cacheable(
    policy: CachePolicy, request: Request, state: RequestState, headers: list[Any]
) -> None:
    """Tell SerdesMiddleware, in the request's state, that this response may be stored, with
    its policy and tags."""
    state.policy = policy
    if policy.tags is not None:
        state.tags = list(policy.tags(request))
    if policy.cache_control is not None and not any(k == b"cache-control" for k, _ in headers):
        headers.append((b"cache-control", policy.cache_control.encode("latin-1")))
