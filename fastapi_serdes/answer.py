"""What ``SerdesRoute`` sends for what it produced: one ``Vary`` line, the strong ETag of a
GET's 200 and the 304 when the client already holds it (RFC 9110 §13), and the mark that lets
the response cache store it.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response

from .cache import (
    CACHE_SCOPE_KEY,
    NOT_MODIFIED_HEADERS,
    TAGS_SCOPE_KEY,
    CachePolicy,
    credentialed,
    etag_for,
    matching_tag,
)
from .flights import Produced
from .negotiation import add_vary
from .response_cache import response_cache_of
from .settings import Negotiated, header

#: The Vary header of a response whose format was negotiated.
VARY_ACCEPT: Final = (b"vary", b"Accept")
_VARY_ACCEPT_PREFER: Final = (b"vary", b"Accept, Prefer")


def respond(
    request: Request,
    negotiated: Negotiated,
    produced: Produced,
    *,
    views: bool,
    cache: CachePolicy | None,
    view_headers: list[tuple[bytes, bytes]],
) -> Response:
    """The response for what a route produced: ``Vary``, the ETag of a GET's 200 and the 304
    when the client holds it, the mark that lets the response cache store it."""
    scope = request.scope
    code, content = produced.status, produced.content
    allowed = is_body_allowed_for_status_code(code)
    # One Vary line: Accept always, Prefer when a view can be picked by it.
    extra = [_VARY_ACCEPT_PREFER if views else VARY_ACCEPT, *view_headers]
    extra.extend(produced.headers)
    if code == 200 and scope["method"] in ("GET", "HEAD"):
        etag = etag_for(content)
        extra.append((b"etag", etag.encode("latin-1")))
        if cache is not None:
            _mark_cacheable(cache, request, extra)
        theirs = matching_tag(header(scope, b"if-none-match"), etag)
        if theirs is not None:
            # The client's own tag: for a compressed variant it is the "-<coding>" one its
            # cached 200 carried, which the identity ETag computed here is not.
            if theirs != etag and theirs.startswith('"'):
                extra = [(k, v) for k, v in extra if k != b"etag"]
                extra.append((b"etag", theirs.encode("latin-1")))
            return _not_modified(extra, produced.background)
    return fast_response(content, code, negotiated.media_type if allowed else None, extra,
                          produced.background)  # fmt: skip


def fast_response(
    content: bytes,
    status: int,
    media_type: str | None,
    headers: list[tuple[bytes, bytes]],
    background: Any,
) -> Response:
    """A ``Response`` with its headers set directly: Starlette's ``__init__`` re-derives
    Content-Length and Content-Type through several checks this route has already made."""
    response = Response.__new__(Response)
    response.status_code = status
    response.background = background
    response.body = content
    raw: list[tuple[bytes, bytes]] = []
    if media_type is not None:
        raw.append((b"content-length", str(len(content)).encode("latin-1")))
        raw.append((b"content-type", media_type.encode("latin-1")))
    raw.extend(headers)
    response.raw_headers = raw
    return response


def _not_modified(headers: list[tuple[bytes, bytes]], background: Any) -> Response:
    """304: what the 200 would have carried among ETag, Vary, Cache-Control... and no body."""
    response = Response(status_code=304, background=background)
    response.raw_headers = [(k, v) for k, v in headers if k in NOT_MODIFIED_HEADERS]
    return response


def _mark_cacheable(policy: CachePolicy, request: Request, headers: list[Any]) -> None:
    """Tell SerdesMiddleware this response may be stored, with its policy and tags."""
    scope = request.scope
    if policy.key is None and credentialed(scope):
        return  # a shared entry never holds what a credentialed request got
    scope[CACHE_SCOPE_KEY] = policy
    cache = response_cache_of(scope)
    if cache is not None:
        # The middleware looks up (and stores) only the paths it knows are cacheable.
        cache.learn(scope, policy)
    if policy.tags is not None:
        scope[TAGS_SCOPE_KEY] = list(policy.tags(request))
    if policy.cache_control is not None and not any(k == b"cache-control" for k, _ in headers):
        headers.append((b"cache-control", policy.cache_control.encode("latin-1")))
    for name in policy.vary:  # onto the route's own Vary line
        add_vary(headers, name.encode("latin-1"))
