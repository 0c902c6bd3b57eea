"""``SerdesMiddleware``: pure ASGI; negotiates once per request and serves plain routes too.

Per request it parses ``Accept`` once (results are memoised per header value) and leaves a
:class:`~fastapi_serdes.settings.Negotiated` under ``scope["fastapi_serdes"]`` for
``SerdesRoute``. For routes that are not ``SerdesRoute`` it is the slower, documented path:

- a MessagePack request body is decoded and handed to the route as JSON (``Content-Type``
  rewritten), within the same size limit; ``SerdesRoute`` still reads the original bytes;
- a complete ``application/json`` response is transcoded to the client's codec
  (``Vary: Accept`` added); streaming responses, bodiless ones, ``HEAD`` and anything that is
  not JSON pass through untouched.

With ``compression`` on (the default) it also compresses responses and decodes compressed request
bodies, for every route: one ``send`` wrapper outermost (it compresses what the transcoder
produced) and one ``receive`` wrapper innermost (the transcoder and ``SerdesRoute`` read decoded
bytes, with ``Content-Encoding`` and ``Content-Length`` removed from the scope's headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from ._types import ASGIApp, Codec, Message, Receive, Scope, Send, Store
from .cache import CachedRoutes, Entry
from .codecs import JSON_MEDIA_TYPE, JSONCodec
from .compression import Compression
from .compression_layer import (
    Choice,
    CompressingSend,
    CompressionLayer,
    not_acceptable_encoding,
    vary_only,
)
from .decompression import (
    DecompressedBody,
    request_coding,
    strip_encoding_headers,
    unsupported_encoding,
)
from .memory_store import MemoryStore
from .negotiation import add_vary, is_json_content_type
from .problems import ProblemError
from .request_body import TRANSCODER_SCOPE_KEY
from .response_cache import RESPONSE_CACHE_SCOPE_KEY, ResponseCache
from .settings import SCOPE_KEY, Negotiated, SerdesSettings, negotiate
from .telemetry import RECORDER_SCOPE_KEY, Recorder, Telemetry
from .transcoding import BodyTranscoder, Responder, no_receive

# Negotiations memoised per Accept value: clients choose the values, so the memo is bounded and
# cleared when full.
_ACCEPT_MEMO_SIZE = 256
_IDENTITY = ("identity",)


class SerdesMiddleware:
    """Negotiate the response format once per request; transcode for plain routes.

    Args:
        app: the ASGI application to wrap.
        codecs: the codecs offered, in server order (default: JSON, then MessagePack).
        on_not_acceptable: ``"problem"`` (406, the default) or ``"default"`` (answer in the
            default format) when the client accepts none of the offered media types.
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

    ``on_not_acceptable``, ``max_body_size``, compression and telemetry can be overridden by
    ``FASTAPI_SERDES_*`` environment variables (see the settings how-to); ``codecs`` and ``cache``
    are code, not configuration.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        codecs: Sequence[Codec] | None = None,
        on_not_acceptable: str | None = None,
        max_body_size: int | None = None,
        compression: Compression | bool | None = True,
        cache: Store | ResponseCache | bool | None = True,
        telemetry: Telemetry | bool | None = True,
    ) -> None:
        self.app = app
        self.settings = SerdesSettings.from_kwargs(
            codecs=codecs,
            on_not_acceptable=on_not_acceptable,
            max_body_size=max_body_size,
            telemetry=telemetry,
        )
        self._telemetry = self.settings.telemetry
        resolved = Compression.from_environ(compression)
        self.compression = resolved
        self._layer = CompressionLayer(resolved) if resolved is not None else None
        self.cache = _response_cache(cache)
        self._negotiated: dict[bytes | None, Negotiated] = {}
        self._json = JSONCodec()  # reads plain routes' JSON for transcoding

    def _negotiate(self, accept: bytes | None) -> Negotiated:
        negotiated = self._negotiated.get(accept)
        if negotiated is None:
            text = accept.decode("latin-1") if accept is not None else None
            negotiated = negotiate(text, self.settings)
            if len(self._negotiated) >= _ACCEPT_MEMO_SIZE:
                self._negotiated.clear()
            self._negotiated[accept] = negotiated
        return negotiated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept: bytes | None = None
        content_type: bytes | None = None
        accept_encoding: bytes | None = None
        content_encoding: bytes | None = None
        several_accept = False
        for name, value in scope["headers"]:
            if name == b"accept":
                if accept is None:
                    accept = value
                else:
                    accept += b", " + value
                    several_accept = True
            elif name == b"content-type":
                content_type = value
            elif name == b"accept-encoding":
                accept_encoding = (
                    value if accept_encoding is None else accept_encoding + b", " + value
                )
            elif name == b"content-encoding":
                content_encoding = value
        negotiated = self._negotiated.get(accept) if not several_accept else None
        if negotiated is None:
            negotiated = (
                self._negotiate(accept) if not several_accept else self._negotiate_once(accept)
            )
        scope[SCOPE_KEY] = negotiated
        telemetry = self._telemetry
        recorder = telemetry.active() if telemetry is not None else None
        if recorder is not None:
            scope[RECORDER_SCOPE_KEY] = recorder
        layer = self._layer
        choice: Choice | None = None
        if layer is not None:
            choice = layer.choices.get(accept_encoding) or layer.choose(accept_encoding)
            if choice is None:
                problem = not_acceptable_encoding(layer.offers)
                await _answer(problem, send, b"Accept-Encoding", recorder)
                return
        cache = self.cache
        if cache is not None:
            scope[RESPONSE_CACHE_SCOPE_KEY] = cache
            # The cache answers from its store when it can; otherwise the rest of the
            # middleware runs and the cache stores what is sent (after compression: one
            # variant per coding).
            policy = cache.lookup_policy(scope) if cache.paths else None
            if policy is not None and await cache.answer(
                scope,
                send,
                policy,
                media_type=negotiated.media_type,
                codings=choice.codings if choice is not None else _IDENTITY,
                uncompressed_ok=self._uncompressed_ok,
                recorder=recorder,
            ):
                return
            if CachedRoutes.declared:  # else nothing to store or invalidate (no call at all)
                send = cache.wrap(scope, send, negotiated.media_type)
        # Then compression, request decompression, transcoding for plain routes, and the app.
        body: DecompressedBody | None = None
        compressing: CompressingSend | None = None
        layer = self._layer
        # JSON responses get Vary: Accept (a plain route's JSON too: its format was
        # negotiated); the compression layer adds it with its own Vary when it runs.
        vary_json = True
        if layer is not None and choice is not None:
            vary_json = False
            if choice.encoder is None:
                send = vary_only(send, scope, layer)
            else:
                compressing = CompressingSend(send, scope, choice, layer, recorder)
                send = compressing.send
            if content_encoding is not None:
                coding = request_coding(content_encoding)
                if coding not in layer.encoders and coding != "identity":
                    problem = unsupported_encoding(content_encoding.decode("latin-1"), layer.offers)
                    await _answer(problem, send, None, recorder)
                    return
                if coding != "identity":
                    assert coding is not None
                    length = next((v for n, v in scope["headers"] if n == b"content-length"), None)
                    body = DecompressedBody(
                        receive, coding, self.settings.max_body_size, length, recorder
                    )
                    strip_encoding_headers(scope)
                    receive = body.receive
        transcoder: BodyTranscoder | None = None
        # Only a non-JSON body can need transcoding; the prefix test is a fast path, the
        # decision is the settings' codec_for().
        if content_type is not None and not content_type.startswith(b"application/json"):
            transcoder = self._transcoder(scope, receive, content_type)
            if transcoder is not None:
                transcoder.recorder = recorder
                receive = transcoder.receive
        codec = negotiated.codec
        outer_send = send
        if body is not None:
            send = body.guard(send)
        if transcoder is None and (
            codec is None or JSON_MEDIA_TYPE in codec.media_types or scope["method"] == "HEAD"
        ):
            if vary_json:
                send = _vary_on_json(send)
        else:
            if scope["method"] == "HEAD":
                # No body to transcode: HEAD keeps the JSON headers GET would have had before us.
                negotiated = Negotiated(None, None, negotiated.settings)
            responder = Responder(send, negotiated, transcoder, self._json)
            responder.recorder = recorder
            send = responder.send
        if body is None and compressing is None:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            if compressing is not None:
                compressing.close(exc)
            if body is not None:
                body.close()
            # A plain route may let the decoding problem (raised from receive) escape.
            if (
                body is None
                or body.problem is None
                or body.answered
                or not isinstance(exc, Exception)
            ):
                raise
            await body.answer(outer_send)
        else:
            if compressing is not None:
                compressing.close()
            if body is not None:
                body.close()

    def _uncompressed_ok(self, entry: Entry) -> bool:
        """Whether compression would have left this stored identity response alone."""
        layer = self._layer
        if layer is None:
            return True
        if len(entry.body) < layer.settings.minimum_size:
            return True
        content_type = next((v for k, v in entry.headers if k == b"content-type"), None)
        return content_type is None or not layer.compressible(content_type)

    def _negotiate_once(self, accept: bytes | None) -> Negotiated:
        # Several Accept lines joined: rare, not worth a cache entry.
        text = accept.decode("latin-1") if accept is not None else None
        return negotiate(text, self.settings)

    def _transcoder(
        self, scope: Scope, receive: Receive, content_type: bytes
    ) -> BodyTranscoder | None:
        codec = self.settings.codec_for(content_type.decode("latin-1"))
        if codec is None or JSON_MEDIA_TYPE in codec.media_types:
            return None
        content_length = None
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value.decode("latin-1")
            elif name != b"content-type":
                headers.append((name, value))
        headers.append((b"content-type", b"application/json"))
        transcoder = BodyTranscoder(
            receive, content_type.decode("latin-1"), content_length, codec, self.settings
        )
        scope["headers"] = headers
        scope[TRANSCODER_SCOPE_KEY] = transcoder
        return transcoder


def _response_cache(cache: Store | ResponseCache | bool | None) -> ResponseCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResponseCache(MemoryStore())
    if isinstance(cache, ResponseCache):
        return cache
    if isinstance(cache, Store):
        return ResponseCache(cache)
    raise TypeError(f"cache must be a Store, a ResponseCache, True or None, got {cache!r}")


async def _answer(
    problem: ProblemError, send: Send, vary: bytes | None, recorder: Recorder | None
) -> None:
    """Answer with ``problem`` before the app runs."""
    if recorder is not None:
        recorder.problem(problem.status, problem.type, None)
    response = problem.to_response()
    if vary is not None:
        response.raw_headers = add_vary(response.raw_headers, vary)
    await response({"type": "http"}, no_receive, send)


def _vary_on_json(send: Send) -> Send:
    """Add ``Vary: Accept`` to JSON responses: their format was negotiated."""

    # A plain function returning the downstream awaitable: no coroutine of its own per message.
    def send_with_vary(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            for name, value in headers:
                if name == b"content-type":
                    if value == b"application/json" or is_json_content_type(value):
                        message["headers"] = add_vary(list(headers), b"Accept")
                    break
        return send(message)

    return send_with_vary
