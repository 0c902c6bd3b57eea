"""SerdesResponse: a response an endpoint returns itself, encoded in the negotiated codec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import ResponseValidationError
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response

from ._types import Codec, Receive, Scope, Send
from .response_encoding import encode_validated
from .route import not_acceptable
from .settings import Negotiated, SerdesSettings, header, negotiate
from .state import negotiated_of
from .telemetry import request_recorder
from .telemetry.spans import encode_span, route_of, type_name
from .vary import VARY_ACCEPT


class SerdesResponse(Response):
    """A response an endpoint returns explicitly, encoded in the negotiated codec when sent.

    Example::

        @router.post("/users", status_code=201)
        async def create(user: UserIn) -> SerdesResponse:
            return SerdesResponse(stored, status_code=201, headers={"Location": "/users/7"})

    Args:
        content: the value to encode (a model, a list, a dict...).
        status_code: the HTTP status.
        headers: extra headers.
        model: the type to validate and serialize ``content`` as (optional).
        background: a background task.
        settings: used only when no ``SerdesMiddleware`` negotiated already.
    """

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        model: Any = None,
        background: Any = None,
        settings: SerdesSettings | None = None,
    ) -> None:
        self.content = content
        self.status_code = status_code
        self.background = background
        self.body = b""
        self._model = model
        self._settings = settings
        self.init_headers(headers)

    def render(self, content: Any) -> bytes:
        return b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        negotiated = negotiated_of(scope) or negotiate(
            header(scope, b"accept"), self._settings or SerdesSettings.from_kwargs()
        )
        codec = negotiated.codec
        if codec is None:
            raise not_acceptable(negotiated.settings)  # the app's handlers render it
        adapter = TypeAdapter(self._model) if self._model is not None else None
        headers = [
            (k, v) for k, v in self.raw_headers if k not in (b"content-length", b"content-type")
        ]
        headers.append((b"content-type", str(negotiated.media_type).encode("latin-1")))
        if is_body_allowed_for_status_code(self.status_code):  # else the body stays empty
            self.body = self._encode(scope, negotiated, codec, adapter)
            headers.append((b"content-length", str(len(self.body)).encode("latin-1")))
        self.raw_headers = [*headers, VARY_ACCEPT]
        await super().__call__(scope, receive, send)

    def _encode(
        self, scope: Scope, negotiated: Negotiated, codec: Codec, adapter: TypeAdapter[Any] | None
    ) -> bytes:
        """The content, validated into ``adapter``'s type when given, encoded in ``codec``."""

        def encode() -> bytes:
            value = self.content
            if adapter is not None:
                try:
                    value = adapter.validate_python(value, from_attributes=True)
                except ValidationError as exc:
                    errors = exc.errors(include_url=False)
                    raise ResponseValidationError(errors=errors, body=self.content) from None
            return encode_validated(codec, value, adapter, {})

        recorder = request_recorder(scope, negotiated.settings.telemetry)
        if recorder is None:
            return encode()
        return encode_span(
            recorder,
            encode,
            media_type=negotiated.media_type,
            codec=codec,
            model=type_name(self._model) if self._model is not None else None,
            selection=None,
            route=route_of(scope),
        )
