"""The one per-request state: what the request negotiated and what the route decided.

``SerdesMiddleware`` puts a :class:`RequestState` under ``scope["fastapi_serdes"]``
(:data:`SCOPE_KEY`) before the app runs; ``SerdesRoute`` creates one itself when there is no
middleware. Everything the library passes between its parts during a request travels in it —
nothing else is written to the scope, and no part changes another part's long-lived objects.
Applications read what was negotiated with :func:`negotiated_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .cache import CachePolicy
    from .cache.response_cache import ResponseCache
    from .settings import Negotiated
    from .telemetry import Recorder
    from .transcoding import BodyTranscoder
    from .views import Selection

#: The scope key of the request's :class:`RequestState`.
SCOPE_KEY: Final = "fastapi_serdes"


@dataclass(slots=True, eq=False)
class RequestState:
    """What one request negotiated (set before the app runs) and what its route decided.

    Attributes:
        negotiated: the response format and the settings in force.
        cache: the response cache of the middleware serving the request (read, never changed,
            by the route: it finds the shared store and invalidates through it), or None.
        recorder: the telemetry recorder when someone listens (None: record nothing).
        route: the template of the route that answered (``/users/{user_id}``), for telemetry.
        policy: set by ``SerdesRoute`` when its answer may be stored by the response cache.
        tags: the tags to store that answer with.
        no_compression: the route asked that its answer stay uncompressed (BREACH).
        borrowed: the answer is another request's (the single flight shared it): that request
            stores it, this one must not (it may have started after an invalidation the
            answer predates).
        since: the response cache's invalidation clock, read before the app ran (a miss).
        selection: the view or fields the client selected.
        transcoder: the middleware's reader of a MessagePack body it hands plain routes as
            JSON; ``SerdesRoute`` reads the client's own bytes through it.
    """

    negotiated: Negotiated
    cache: ResponseCache | None = None
    recorder: Recorder | None = None
    route: str | None = None
    policy: CachePolicy | None = None
    tags: list[str] | None = None
    no_compression: bool = False
    borrowed: bool = False
    since: int | None = None
    selection: Selection | None = None
    transcoder: BodyTranscoder | None = None


def state_of(scope: Any) -> RequestState | None:
    """The request's state, or None when neither the middleware nor a route has set one."""
    state = scope.get(SCOPE_KEY)
    return state if isinstance(state, RequestState) else None


def negotiated_of(request: Any) -> Negotiated | None:
    """What a request negotiated (media type, codec, settings), for code that answers by hand.

    Takes a Starlette/FastAPI ``Request`` (or an ASGI scope); None when no ``SerdesMiddleware``
    or ``SerdesRoute`` has seen the request.
    """
    scope = getattr(request, "scope", request)
    state = state_of(scope) if isinstance(scope, dict) else None
    return state.negotiated if state is not None else None
