"""Request bodies sent with ``Content-Encoding: gzip | br | zstd``, decoded within the size limit.

The body is decoded as it arrives and handed on in chunks of at most :data:`CHUNK_SIZE` bytes
(for zstd, one block: at most 128 KiB), counting the **decoded** bytes against ``max_body_size``
(RFC 9110 §15.5.14): a few hundred bytes of brotli that expand to 256 MiB are refused with 413
having held about the limit in memory, never the expansion. The compressed bytes read are limited
too (a stream of empty blocks would otherwise be read forever). A corrupt or truncated body is a
400 problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from opentelemetry.trace import Span

from .._types import Message, Receive, Scope, Send, no_receive
from ..problems import ProblemError
from ..telemetry import ATTR_CODING, SPAN_DECOMPRESS, Recorder
from ..telemetry.spans import coding_sizes
from .decoders import new_decoder

if TYPE_CHECKING:
    from ..settings import SerdesSettings
    from .layer import CompressionLayer

#: Largest chunk of decoded bytes handed on per ``receive()``.
CHUNK_SIZE: Final = 64 * 1024


class DecompressedBody:
    """Per-request ``receive`` that decodes a compressed body, and the ``send`` guard it needs.

    A problem found while decoding (413, 400) is raised from ``receive`` for the reader to handle
    (``SerdesRoute`` answers it) and kept in :attr:`problem`: whatever response a plain route
    then starts (FastAPI answers its own 400 for a body it could not read) is replaced by it.
    """

    def __init__(
        self,
        receive: Receive,
        coding: str,
        limit: int,
        content_length: bytes | None,
        recorder: Recorder | None = None,
        *,
        problem_details: bool = False,
    ) -> None:
        self._receive = receive
        self._problem_details = problem_details
        self._coding = coding
        self._decoder = new_decoder(coding)
        self._limit = limit
        self._content_length = content_length
        self._size = 0  # decoded bytes handed on
        self._raw_size = 0  # compressed bytes read
        self._input_done = False
        self._recorder = recorder
        self._span: Span | None = None
        self.done = False
        self.answered = False
        self.problem: ProblemError | None = None

    async def receive(self) -> Message:
        if self.done:
            return await self._receive()
        self._begin()
        while True:
            out = self._read()
            if out:
                return {"type": "http.request", "body": out, "more_body": True}
            if self._input_done:
                if not self._decoder.finished():
                    raise self._fail(self._corrupt("it ends before the compressed stream does"))
                self.done = True
                self.close()
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self._receive()
            if message["type"] != "http.request":
                return message
            self._feed(message)

    def _begin(self) -> None:
        """Before each read: raise the problem found already, or a declared length past the
        limit; open the span (serdes.decompress, from the first read to the end of the body)."""
        if self.problem is not None:
            raise self.problem
        if self._span is None and self._recorder is not None:
            self._span = self._recorder.start(SPAN_DECOMPRESS, {ATTR_CODING: self._coding})
        length = self._content_length
        if length is not None and length.isdigit() and int(length) > self._limit:
            raise self._fail(self._too_large())

    def _read(self) -> bytes:
        """Up to CHUNK_SIZE decoded bytes (b"": the decoder needs more input), counted."""
        try:
            out = self._decoder.read(CHUNK_SIZE)
        except self._decoder.error as exc:
            raise self._fail(self._corrupt(str(exc))) from None
        self._size += len(out)
        if self._size > self._limit:
            raise self._fail(self._too_large())
        return out

    def _feed(self, message: Message) -> None:
        data = message.get("body", b"")
        self._raw_size += len(data)
        if self._raw_size > self._limit:
            raise self._fail(self._too_large())
        self._decoder.feed(data)
        self._input_done = not message.get("more_body", False)

    def _fail(self, problem: ProblemError) -> ProblemError:
        self.problem = problem
        span, self._span = self._span, None
        if span is not None and self._recorder is not None:
            self._recorder.fail(span, problem)
        return problem

    def _too_large(self) -> ProblemError:
        return ProblemError.of(
            "body-too-large",
            f"The request body is larger than the {self._limit} bytes this server reads "
            "(decompressed size).",
        )

    def _corrupt(self, reason: str) -> ProblemError:
        name = "brotli" if self._coding == "br" else self._coding
        return ProblemError.of(
            "malformed-body",
            f"The request body is not valid {name} (Content-Encoding: {self._coding}): {reason}.",
        )

    def close(self) -> None:
        """End the decompression span, if open, with the byte counts so far."""
        span, self._span = self._span, None
        if span is not None and self._recorder is not None:
            self._recorder.end(span, coding_sizes(self._raw_size, self._size, decoding=True))

    def guard(self, send: Send) -> Send:
        """Wrap ``send`` so a decoding problem replaces whatever response the app starts."""

        async def guarded(message: Message) -> None:
            if self.problem is None:
                await send(message)
            elif message["type"] == "http.response.start" and not self.answered:
                await self.answer(send)

        return guarded

    async def answer(self, send: Send) -> None:
        """Send the problem as the response."""
        assert self.problem is not None
        self.answered = True
        response = self.problem.render(self._problem_details)
        await response({"type": "http"}, no_receive, send)

    async def answer_failure(self, exc: BaseException, send: Send) -> bool:
        """After the app failed with ``exc``: close, and answer with the decoding problem when
        that is what failed (a plain route may let it escape from ``receive``). True when the
        problem was answered now; False when ``exc`` is the app's own to raise."""
        self.close()
        if self.problem is None or self.answered or not isinstance(exc, Exception):
            return False
        await self.answer(send)
        return True


def request_coding(value: bytes) -> str | None:
    """The one coding a request ``Content-Encoding`` names (``x-gzip`` is ``gzip``):
    ``"identity"`` for identity or an empty value, None for several codings (not supported)."""
    codings = [c.strip().lower() for c in value.decode("latin-1").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        return None
    return "gzip" if codings[0] == "x-gzip" else codings[0]


def decompressing(
    scope: Scope,
    receive: Receive,
    content_encoding: bytes | None,
    layer: CompressionLayer | None,
    settings: SerdesSettings,
    recorder: Recorder | None,
) -> DecompressedBody | ProblemError | None:
    """The decoder of a compressed request body; a 415 problem for a coding not on offer
    (RFC 9110 §15.5.16); None for none, identity, or no compression."""
    if content_encoding is None or layer is None:
        return None
    coding = request_coding(content_encoding)
    if coding == "identity":
        return None
    if coding is None or coding not in layer.encoders:
        return ProblemError.of(
            "unsupported-content-encoding",
            f"Content-Encoding {content_encoding.decode('latin-1')!r} is not supported; send the "
            f"body with one of {layer.offers} (or uncompressed).",
            headers={"Accept-Encoding": layer.offers},
            supported=list(layer.encoders),
        )
    headers = scope["headers"]
    length = next((v for n, v in headers if n == b"content-length"), None)
    body = DecompressedBody(
        receive,
        coding,
        settings.max_body_size,
        length,
        recorder,
        problem_details=settings.problem_details,
    )
    # They described the compressed bytes.
    scope["headers"] = [
        (n, v) for n, v in headers if n not in (b"content-encoding", b"content-length")
    ]
    return body
