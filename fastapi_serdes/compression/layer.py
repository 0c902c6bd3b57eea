"""How one middleware decides about compression: which coding a request gets, and the ``Vary``
of a response that could have been compressed.

:class:`CompressionLayer` is built once per middleware from a
:class:`~fastapi_serdes.compression.Compression`; per request it picks a content coding from
``Accept-Encoding`` (a :class:`Choice`, memoised per header value) and marks each response start
with its ``Vary`` (memoised per usual header shape). The bytes are compressed by
:class:`~fastapi_serdes.compression.responses.CompressingSend`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.requests import Request

from .._types import Message, Scope, Send
from ..cache import Entry
from ..negotiation import choose_encoding, is_json_content_type, parse_accept_encoding
from ..problems import ProblemError
from ..state import state_of
from ..vary import VaryJoiner
from . import Compression, could_compress, is_compressible, scan_start
from .encoders import Encoder, build_encoders

# Entries of each memo (Accept-Encoding values, Content-Type values, response shapes): clients
# and apps choose them, so the memos are bounded.
_MEMO_SIZE: Final = 256
_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(memo: dict[_K, _V], key: _K, value: _V) -> _V:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


@dataclass(frozen=True, slots=True)
class Choice:
    """What one ``Accept-Encoding`` value allows.

    Attributes:
        encoder: the encoder to use, or None to answer with identity.
        identity_ok: whether identity is acceptable (if not, small bodies are compressed too).
        codings: the codings a response may carry, preferred first (for the response cache).
    """

    encoder: Encoder | None
    identity_ok: bool
    codings: tuple[str, ...]

    @classmethod
    def of(cls, encoder: Encoder | None, identity_ok: bool) -> Choice:
        if encoder is None:
            return cls(None, identity_ok, ("identity",))
        codings = (encoder.coding, "identity") if identity_ok else (encoder.coding,)
        return cls(encoder, identity_ok, codings)


def no_compression(request: Request) -> None:
    """FastAPI dependency that keeps a route's responses uncompressed.

    Use it per route (``dependencies=[Depends(no_compression)]``) or per router, for responses
    that mix secrets with attacker-controlled input (BREACH, RFC 9110 §17.6). Request bodies are
    still decompressed.
    """
    state = state_of(request.scope)
    if state is not None:  # no middleware: nothing compresses
        state.no_compression = True


def not_acceptable_encoding(offers: str) -> ProblemError:
    """406 for an ``Accept-Encoding`` that refuses identity and every coding on offer."""
    return ProblemError.of(
        "not-acceptable-encoding",
        "Accept-Encoding refuses identity and every coding on offer; accept one of "
        f"{offers} or identity.",
        available=[c.strip() for c in offers.split(",") if c.strip()],
    )


class CompressionLayer:
    """Response compression for one middleware: settings, encoders and memo tables."""

    __slots__ = ("_kinds", "_shapes", "_vary", "choices", "encoders", "settings")

    def __init__(self, settings: Compression) -> None:
        self.settings = settings
        self.encoders = build_encoders(settings)
        self.choices: dict[bytes | None, Choice | None] = {}
        self._vary = VaryJoiner()
        # Content-Type value -> (compressible, JSON)
        self._kinds: dict[bytes, tuple[bool, bool]] = {}
        # (status, Content-Type, Vary) -> (could be compressed, the Vary it gets)
        self._shapes: dict[_ShapeKey, tuple[bool, bytes | None]] = {}

    @property
    def offers(self) -> str:
        """The offered codings, for ``Accept-Encoding`` response headers."""
        return ", ".join(self.encoders)

    def choose(self, accept_encoding: bytes | None) -> Choice | None:
        """The coding for an ``Accept-Encoding`` value; None when nothing is acceptable (406)."""
        if accept_encoding in self.choices:
            return self.choices[accept_encoding]
        text = accept_encoding.decode("latin-1") if accept_encoding is not None else None
        coding = choose_encoding(text, self.encoders)
        choice = None
        if coding is not None:
            weights = parse_accept_encoding(text) if text is not None else {}
            identity_ok = weights.get("identity", weights.get("*", 1.0)) > 0
            choice = Choice.of(self.encoders.get(coding), identity_ok)
        return _remember(self.choices, accept_encoding, choice)

    def identity_chosen(self, accept_encoding: bytes) -> bool:
        """Whether identity was already chosen for this ``Accept-Encoding`` value (False when
        the value was not seen yet)."""
        choice = self.choices.get(accept_encoding)
        return choice is not None and choice.encoder is None

    def leaves_alone(self, entry: Entry) -> bool:
        """Whether compression would have left this stored identity response alone (small,
        or of a type not compressed): then it may answer a client that accepts a coding."""
        if len(entry.body) < self.settings.minimum_size:
            return True
        content_type = next((v for k, v in entry.headers if k == b"content-type"), None)
        return content_type is None or not self.compressible(content_type)

    def compressible(self, content_type: bytes) -> bool:
        """The content-type policy, memoised per header value."""
        return self._kind(content_type)[0]

    def _kind(self, content_type: bytes) -> tuple[bool, bool]:
        """(compressible, JSON) for a Content-Type value, memoised per header value."""
        known = self._kinds.get(content_type)
        if known is not None:
            return known
        compressible = is_compressible(content_type.decode("latin-1"), self.settings.media_types)
        return _remember(
            self._kinds, content_type, (compressible, is_json_content_type(content_type))
        )

    def mark_vary(self, start: Message, scope: Scope) -> tuple[bool, bytes | None]:
        """Add ``Vary: Accept-Encoding`` to a response that could be compressed and ``Vary:
        Accept`` to JSON; return whether it could be compressed, and its Content-Length."""
        headers = start.get("headers", ())
        if type(headers) is list and 2 <= len(headers) <= 4 and not _uncompressed(scope):
            # The usual shapes: Starlette's (Content-Length, Content-Type) and SerdesRoute's
            # 200 (those, Vary, ETag). The answer depends on the status, the type and the Vary
            # only, and is memoised for them.
            key = _usual_shape(start["status"], headers)
            if key is not None:
                could, vary = self._shapes.get(key) or self._shape(key)
                if vary is not None:
                    if len(headers) == 2:
                        headers.append((b"vary", vary))
                    else:
                        headers[2] = (b"vary", vary)
                return could, headers[0][1]
        return self._mark_any(start, scope)

    def _mark_any(self, start: Message, scope: Scope) -> tuple[bool, bytes | None]:
        """mark_vary for a start of any shape."""
        content_type, content_length, vary, untouchable = scan_start(start.get("headers", ()))
        compressible, accept = self._kind(content_type) if content_type else (False, False)
        could = not (untouchable or _uncompressed(scope)) and could_compress(
            start["status"], content_type, compressible
        )
        # JSON's format was negotiated (a plain route's JSON too): Vary: Accept.
        if could or accept:
            self._vary.mark(start, vary, accept, could)
        return could, content_length

    def _shape(self, key: _ShapeKey) -> tuple[bool, bytes | None]:
        """What :meth:`_mark_any` decides for a response of this status, Content-Type and Vary
        (None: no Vary): whether it could be compressed, and its Vary (None: none)."""
        status, content_type, vary = key
        headers = [(b"content-type", content_type)]
        if vary is not None:
            headers.append((b"vary", vary))
        start: Message = {"status": status, "headers": headers}
        could, _ = self._mark_any(start, {})
        marked = next((v for k, v in start["headers"] if k == b"vary"), None)
        return _remember(self._shapes, key, (could, marked))


_ShapeKey = tuple[int, bytes, bytes | None]


def _usual_shape(status: int, headers: list[tuple[bytes, bytes]]) -> _ShapeKey | None:
    """(status, Content-Type, Vary) of a start with the usual headers: Content-Length and
    Content-Type (Starlette's), or those then Vary and ETag (SerdesRoute's 200); else None."""
    (first, _), (second, content_type) = headers[0], headers[1]
    if first != b"content-length" or second != b"content-type":
        return None
    if len(headers) == 2:
        return status, content_type, None
    if len(headers) == 4 and headers[2][0] == b"vary" and headers[3][0] == b"etag":
        return status, content_type, headers[2][1]
    return None


def _uncompressed(scope: Scope) -> bool:
    """Whether the route asked that its answer stay uncompressed."""
    state = state_of(scope)
    return state is not None and state.no_compression


def vary_only(send: Send, scope: Scope, layer: CompressionLayer) -> Send:
    """The ``send`` for a request only identity can answer (no ``Accept-Encoding``, or only
    ``identity``): nothing to compress, the ``Vary`` headers to add all the same."""

    def send_vary(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            layer.mark_vary(message, scope)
        return send(message)

    return send_vary
