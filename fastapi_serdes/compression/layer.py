"""How one middleware decides about compression: which coding a request gets, and the ``Vary``
of a response that could have been compressed.

:class:`CompressionLayer` picks a :class:`Choice` per ``Accept-Encoding`` value and marks each
response start with its ``Vary`` (memos bounded: clients and apps choose the keys). The bytes are
compressed by :class:`~fastapi_serdes.compression.responses.CompressingSend`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.requests import Request

from .._types import Message, Scope
from ..cache import Entry
from ..negotiation import choose_encoding, is_json_content_type, parse_accept_encoding
from ..problems import ProblemError
from ..state import state_of
from ..vary import VaryJoiner
from . import Compression, has_no_transform, is_compressible
from .encoders import Encoder, build_encoders

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
    """What one ``Accept-Encoding`` value allows."""

    encoder: Encoder | None  # None: answer with identity
    identity_ok: bool  # if not, small bodies are compressed too
    codings: tuple[str, ...]  # what a response may carry, preferred first (for the cache)

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


def not_acceptable_encoding(codings: list[str]) -> ProblemError:
    """406 for an ``Accept-Encoding`` that refuses identity and every coding on offer."""
    return ProblemError.of(
        "not-acceptable-encoding",
        "Accept-Encoding refuses identity and every coding on offer; accept one of "
        f"{', '.join(codings)} or identity.",
        available=codings,
    )


class CompressionLayer:
    """Response compression for one middleware: settings, encoders and memo tables."""

    __slots__ = ("_kinds", "_vary", "choices", "encoders", "settings")

    def __init__(self, settings: Compression) -> None:
        self.settings = settings
        self.encoders = build_encoders(settings)
        self.choices: dict[bytes | None, Choice | None] = {}
        self._vary = VaryJoiner()
        # Content-Type value -> (compressible, JSON)
        self._kinds: dict[bytes, tuple[bool, bool]] = {}

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
        """Whether identity was already chosen for this ``Accept-Encoding`` value."""
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
        return self._kind(content_type)[0]

    def _kind(self, content_type: bytes) -> tuple[bool, bool]:
        """(compressible, JSON) for a Content-Type value."""
        known = self._kinds.get(content_type)
        if known is not None:
            return known
        compressible = is_compressible(content_type.decode("latin-1"), self.settings.media_types)
        kind = (compressible, is_json_content_type(content_type))
        return _remember(self._kinds, content_type, kind)

    def mark_vary(self, start: Message, scope: Scope) -> tuple[bool, bytes | None]:
        """Add ``Vary: Accept-Encoding`` to a response that could be compressed and ``Vary:
        Accept`` to JSON; return whether it could be compressed, and its Content-Length."""
        content_type, content_length, vary, untouchable = _scan_start(start.get("headers", ()))
        compressible, accept = self._kind(content_type) if content_type else (False, False)
        state = state_of(scope)
        if state is not None and state.no_compression:  # the route asked for it
            untouchable = True
        could = not untouchable and _could_compress(start["status"], content_type, compressible)
        # JSON's format was negotiated (a plain route's JSON too): Vary: Accept.
        if could or accept:
            self._vary.mark(start, vary, accept, could)
        return could, content_length


def _scan_start(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes | None, bytes | None, bytes | None, bool]:
    """Content-Type, Content-Length, Vary, and whether the response must not be touched: it is
    encoded already, a range, or its ``Cache-Control`` says ``no-transform``."""
    content_type = content_length = vary = None
    untouchable = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            content_length = value
        elif name == b"vary":
            vary = value
        elif name in (b"content-encoding", b"content-range"):
            untouchable = True
        elif name == b"cache-control":
            untouchable = untouchable or has_no_transform(value.decode("latin-1"))
    return content_type, content_length, vary, untouchable


def _could_compress(status: int, content_type: bytes | None, compressible: bool) -> bool:
    """Whether a response could be compressed: then it gets ``Vary: Accept-Encoding``,
    compressed or not, a 304 included (its 200 had it)."""
    if status in (204, 205, 304):  # no body
        return status == 304 and (content_type is None or compressible)
    return status != 206 and compressible
