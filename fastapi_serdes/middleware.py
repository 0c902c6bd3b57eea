"""``SerdesMiddleware``: pure ASGI; negotiates once per request and serves plain routes too.

It leaves the request's :class:`~fastapi_serdes.state.RequestState` under
``scope["fastapi_serdes"]`` and composes its layers per request: the response cache and
compression (outermost, after the transcoder) around ``send``, request decompression
(innermost) around ``receive``, and for routes that are not ``SerdesRoute`` the transcoding of
MessagePack bodies and complete JSON answers. The usual JSON request takes a fast path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from ._types import ASGIApp, Codec, Message, Receive, Scope, Send, Store, no_receive
from .cache.capture import StaleIfError
from .cache.layer import CacheLayer, response_cache_from
from .cache.response_cache import ResponseCache
from .codecs import JSON_MEDIA_TYPE, JSONCodec
from .compression import Compression
from .compression.layer import Choice, CompressionLayer, not_acceptable_encoding
from .compression.request_bodies import DecompressedBody, decompressing
from .compression.responses import CompressingSend
from .negotiation import RequestHeaders, read_headers
from .problems import ProblemDetailsApp, ProblemError, unrenderable_validation
from .settings import Negotiated, SerdesSettings, negotiate
from .state import SCOPE_KEY, RequestState
from .telemetry import Recorder, Telemetry
from .transcoding import transcoding
from .vary import ACCEPT_ENCODING, add_vary, mark_json, vary_marking
from .whole_app import document_problem_responses, warn_unreached_routes

# Negotiations memoised per Accept value: clients choose them, so the memo is bounded.
_ACCEPT_MEMO_SIZE = 256
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
# Requests of the general path between two questions to the telemetry whether someone listens.
_POLL_EVERY = 64


class SerdesMiddleware:
    """Negotiate the response format once per request; transcode for plain routes.

    Args:
        app: the ASGI application to wrap.
        codecs: the codecs offered, in server order (default: JSON, then MessagePack).
        strict: False (the default): an ``Accept`` that matches no offer, or a body no codec
            reads, is answered as stock FastAPI answers it; True: 406 and 415.
        problem_details: False (the default) keeps FastAPI's error shapes; True answers every
            error in FastAPI's shape (the library's, ``HTTPException``, validation errors,
            routing's 404 / 405) and every unhandled exception (500, no internals) as an
            RFC 9457 ``application/problem+json`` document, whatever the client's ``Accept``.
        max_body_size: the largest request body read, in bytes (default 1 MiB); for a
            compressed request body, the size after decompression.
        compression: a :class:`~fastapi_serdes.Compression` (codings, levels, minimum size,
            media types); ``True`` (the default) for ``Compression()``, which offers every
            coding whose library is installed; ``None`` or ``False`` to switch response
            compression and request decompression off.
        cache: where the response cache keeps what routes decorated with ``@cached`` answer:
            a :class:`~fastapi_serdes.Store` (e.g. ``RedisStore``), a ``ResponseCache``, or
            ``True`` (the default) for an in-process ``MemoryStore``; ``None``/``False`` for no
            response cache (ETags and 304s stay).
        telemetry: a :class:`~fastapi_serdes.Telemetry` (providers to use); ``True`` (the
            default) for the global OpenTelemetry providers, recorded only once an SDK is
            configured; ``False`` for no spans and no metrics at all.
        answer_head: True: GET routes of ``SerdesRoute`` (and the response cache) answer
            ``HEAD``; False (the default): FastAPI's 405 where only GET is declared.

    ``strict``, ``max_body_size``, compression and telemetry have ``FASTAPI_SERDES_*``
    environment variables for the values the code leaves unset (see the settings how-to);
    ``codecs`` and ``cache`` are code, not configuration.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        codecs: Sequence[Codec] | None = None,
        strict: bool | None = None,
        problem_details: bool = False,
        max_body_size: int | None = None,
        compression: Compression | bool | None = True,
        cache: Store | ResponseCache | bool | None = True,
        telemetry: Telemetry | bool | None = True,
        answer_head: bool = False,
    ) -> None:
        self.app = app
        self.cache = response_cache_from(cache)
        # The response cache's layer; its own requests (refreshes, If-Match) go through self.
        self._cache_layer = (
            CacheLayer(self.cache, lambda scope: (scope.get("app"), self.app), self)
            if self.cache is not None
            else None
        )
        self.settings = SerdesSettings.from_kwargs(
            codecs=codecs,
            strict=strict,
            problem_details=problem_details,
            max_body_size=max_body_size,
            telemetry=telemetry,
            answer_head=answer_head,
        )
        if problem_details:
            # Innermost: it sees the app's error responses and the exceptions no handler took.
            self.app = ProblemDetailsApp(app)
        self._recorder: Recorder | None = None
        self._countdown = 0  # general requests until the telemetry is asked again
        self._scanned = False  # the app's routes were looked at (at the first request)
        self.compression = Compression.from_environ(compression)
        self._layer = layer = (
            CompressionLayer(self.compression) if self.compression is not None else None
        )
        # How responses get their Vary headers: the layer's rules, or Vary: Accept on JSON.
        self._mark_vary = layer.mark_vary if layer is not None else mark_json
        # What they add to Starlette's usual 200 JSON start, computed once for the fast path.
        start: Message = {"status": 200, "headers": [_JSON_CONTENT_TYPE]}
        self._mark_vary(start, {})
        self._json_vary: tuple[tuple[bytes, bytes], ...] = tuple(start["headers"][1:])
        self._negotiated: dict[bytes | None, Negotiated] = {}
        # The fast path's memo: Accept values answered in JSON (or refused: the route's 406).
        self._json_answers: dict[bytes | None, Negotiated] = {}
        self._json = JSONCodec()  # reads plain routes' JSON for transcoding

    def _negotiate(self, request: RequestHeaders) -> Negotiated:
        """What ``Accept`` chooses, memoised per value (not several lines joined: rare)."""
        accept = request.accept
        negotiated = self._negotiated.get(accept)
        if negotiated is None:
            text = accept.decode("latin-1") if accept is not None else None
            negotiated = negotiate(text, self.settings)
            if request.several_accept:
                return negotiated
            if len(self._negotiated) >= _ACCEPT_MEMO_SIZE:
                self._negotiated.clear()
                self._json_answers.clear()
            self._negotiated[accept] = negotiated
            codec = negotiated.codec
            if codec is None or JSON_MEDIA_TYPE in codec.media_types:
                # JSON needs no transcoding, and the route answers the 406 itself.
                self._json_answers[accept] = negotiated
        return negotiated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = read_headers(scope)
        negotiated = self._plain_json(request)
        if negotiated is None:
            await self._serve(scope, receive, send, request)
            return
        # The usual request: only the Vary headers to add. Nothing here records telemetry
        # (a SerdesRoute asks for its recorder itself).
        state = scope[SCOPE_KEY] = RequestState(negotiated, self.cache)
        vary = self._json_vary
        mark = self._mark_vary

        # A plain function returning the downstream awaitable (no coroutine per message).
        def send_vary(message: Message) -> Awaitable[None]:
            # Only http.response.start has a status. Few checks, few objects: this runs once
            # the app has pushed this code out of the CPU caches.
            if "status" in message:
                headers = message.get("headers")
                if (
                    type(headers) is list
                    and len(headers) == 2
                    and message["status"] == 200
                    and headers[1] == _JSON_CONTENT_TYPE
                    and headers[0][0] == b"content-length"
                    and not state.no_compression
                ):
                    headers.extend(vary)
                else:
                    mark(message, scope)
            return send(message)

        try:  # _run_app(), without a coroutine of its own
            await self.app(scope, receive, send_vary)
        except Exception as exc:
            await self._unrenderable(exc, send_vary, self._recorder)
        if state.policy is not None and self._cache_layer is not None:
            self._cache_layer.leave(scope)

    def _plain_json(self, request: RequestHeaders) -> Negotiated | None:
        """What the request negotiated when the fast path can serve it, else None: no
        compressed body, a JSON body or none, a single ``Accept`` line already answered in JSON,
        identity coding already chosen for this ``Accept-Encoding`` (or none sent), and no route
        of the app that caches. The first request fills the memos and reads the route table."""
        content_type = request.content_type
        if (
            request.content_encoding is not None
            or request.several_accept
            or (content_type is not None and not content_type.startswith(b"application/json"))
        ):
            return None
        if self._cache_layer is not None and self._cache_layer.consulted:
            return None
        accept_encoding = request.accept_encoding
        layer = self._layer
        if (
            accept_encoding is not None
            and layer is not None
            and not layer.identity_chosen(accept_encoding)
        ):
            return None
        return self._json_answers.get(request.accept)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, request: RequestHeaders
    ) -> None:
        """The general path: each layer wraps ``send`` or ``receive``."""
        recorder = self._recorder_for(scope)
        state = scope[SCOPE_KEY] = RequestState(self._negotiate(request), self.cache, recorder)
        layer = self._layer
        choice = layer.choose(request.accept_encoding) if layer is not None else None
        if layer is not None and choice is None:  # identity and every coding refused
            problem = not_acceptable_encoding(list(layer.encoders))
            await self._answer(problem, send, recorder, ACCEPT_ENCODING)
            return
        entered, fallback = await self._entered(scope, send, state, choice)
        if entered is None:
            return  # answered by the response cache
        send, compressing = self._compressing(scope, entered, choice, recorder)
        body = decompressing(
            scope, receive, request.content_encoding, layer, self.settings, recorder
        )
        if isinstance(body, ProblemError):
            await self._answer(body, send, recorder)
            return
        try:
            await self._run_layers(scope, receive, send, request, state, compressing, body)
        except Exception:
            if fallback is None or not await fallback.failed(500):
                raise
        if self._cache_layer is not None:
            self._cache_layer.leave(scope)

    async def _entered(
        self, scope: Scope, send: Send, state: RequestState, choice: Choice | None
    ) -> tuple[Send | None, StaleIfError | None]:
        """``send`` through the response cache (which stores what is sent after compression:
        one variant per coding) and its stale-if-error fallback; None when it answered."""
        cache = self._cache_layer
        if cache is None:
            return send, None
        layer = self._layer
        codings = choice.codings if choice is not None else ("identity",)
        entered, fallback = await cache.enter(
            scope, send, state, codings, layer.leaves_alone if layer is not None else None
        )
        if isinstance(entered, ProblemError):
            await self._answer(entered, send, state.recorder)
            return None, None
        return entered, fallback

    def _compressing(
        self, scope: Scope, send: Send, choice: Choice | None, recorder: Recorder | None
    ) -> tuple[Send, CompressingSend | None]:
        """The response side of compression: ``send`` compressing, or only adding ``Vary``."""
        layer = self._layer
        if layer is None or choice is None or choice.encoder is None:
            return vary_marking(send, scope, self._mark_vary), None
        compressing = CompressingSend(send, scope, choice, layer, recorder)
        return compressing.send, compressing

    async def _run_layers(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: RequestHeaders,
        state: RequestState,
        compressing: CompressingSend | None,
        body: DecompressedBody | None,
    ) -> None:
        """Transcoding for plain routes, then the app; closes the streaming layers."""
        outer_send = send
        if body is not None:
            receive, send = body.receive, body.guard(send)
        receive, send = transcoding(scope, receive, send, request.content_type, state, self._json)
        try:
            await self._run_app(scope, receive, send, state.recorder)
        except BaseException as exc:
            if compressing is not None:
                compressing.close(exc)
            if body is None or not await body.answer_failure(exc, outer_send):
                raise
        else:
            if compressing is not None:
                compressing.close()
            if body is not None:
                body.close()

    def _recorder_for(self, scope: Scope) -> Recorder | None:
        """The telemetry recorder: asked again every _POLL_EVERY requests (the telemetry
        settles, or looks for a provider at most once a second). The first time, also look at
        the app's routes."""
        if self._countdown:
            self._countdown -= 1
            return self._recorder
        self._countdown = _POLL_EVERY - 1
        if not self._scanned:
            self._scanned = True
            warn_unreached_routes(scope.get("app"))
            if self.settings.problem_details:
                document_problem_responses(scope.get("app"))
        telemetry = self.settings.telemetry
        self._recorder = telemetry.active() if telemetry is not None else None
        return self._recorder

    async def _run_app(
        self, scope: Scope, receive: Receive, send: Send, recorder: Recorder | None
    ) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            await self._unrenderable(exc, send, recorder)

    async def _unrenderable(self, exc: Exception, send: Send, recorder: Recorder | None) -> None:
        """The 422 a validation error should have been when FastAPI failed to render it; else
        re-raise ``exc``."""
        problem = unrenderable_validation(exc)
        if problem is None:
            raise exc
        await self._answer(problem, send, recorder)

    async def _answer(
        self, problem: ProblemError, send: Send, recorder: Recorder | None, vary: bytes = b""
    ) -> None:
        """Answer with ``problem`` before the app runs, in the shape the settings ask for."""
        if recorder is not None:
            recorder.problem(problem.status, problem.type, None)
        response = problem.render(self.settings.problem_details)
        if vary:
            response.raw_headers = add_vary(response.raw_headers, vary)
        await response({"type": "http"}, no_receive, send)
