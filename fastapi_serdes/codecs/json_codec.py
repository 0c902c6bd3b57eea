"""``application/json``: pydantic-core writes and reads it, under the number policy."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from ..problems import DecodeError, EncodeError
from .core_schemas import json_null_keys
from .value_policy import describe, find_bad_number, problem_in_validated

JSON_MEDIA_TYPE: Final = "application/json"
#: Deepest nesting a JSON body may have (pydantic-core's parser limit): a value inside more than
#: 200 arrays or objects is refused (an empty innermost container is not counted as a value).
JSON_MAX_DEPTH: Final = 200

_MEMO_SIZE: Final = 512


class JSONCodec:
    """``application/json``: pydantic-core writes and reads it.

    Decoding rejects invalid UTF-8, a BOM, lone surrogates, NaN / Infinity literals, numbers that
    overflow a double, integers past 64 bits, trailing data and nesting deeper than
    :data:`JSON_MAX_DEPTH`; duplicate keys keep the last value.
    """

    media_types: tuple[str, ...] = (JSON_MEDIA_TYPE,)
    name = "json"

    def __init__(self) -> None:
        # type -> where its JSON may hide a NaN as null (see core_schemas.json_null_keys). By
        # type, not adapter: a SerdesResponse builds a new adapter for each response.
        self._null_keys: dict[Any, tuple[bytes, ...] | None] = {}

    def encode(
        self,
        value: Any,
        adapter: TypeAdapter[Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Encode ``value`` as JSON, through ``adapter`` when its type is known.

        ``options`` are pydantic dump options (``exclude_none``, ``include``...), applied with an
        adapter.

        Raises:
            EncodeError: the value holds a non-finite float (the message locates it) or a type
                pydantic cannot serialise.
        """
        opts = options or {}
        try:
            if adapter is None:
                data = to_json(value, inf_nan_mode="null")
            else:
                data = adapter.dump_json(value, **opts)
            if self._may_hide_non_finite(data, adapter):
                # pydantic writes NaN and Infinity as null: look at what was serialised, as
                # plain data (JSON mode keeps non-finite floats; the look is fastest on it).
                dumped = (
                    value if adapter is None else adapter.dump_python(value, mode="json", **opts)
                )
                found = find_bad_number(dumped, ints=False)
                if found is not None:
                    raise EncodeError(f"{JSON_MEDIA_TYPE}: {describe(found)}")
        except EncodeError:
            raise
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{JSON_MEDIA_TYPE}: cannot encode the value: {exc}") from exc
        return data

    def _may_hide_non_finite(self, data: bytes, adapter: TypeAdapter[Any] | None) -> bool:
        """Whether pydantic's JSON ``data`` for ``adapter``'s type may hold a NaN or an infinity
        written as ``null``: a ``null`` where the type has a float."""
        if b"null" not in data:
            return False
        keys = None if adapter is None else self._null_keys_of(adapter)
        return keys is None or any(key in data for key in keys)

    def _null_keys_of(self, adapter: TypeAdapter[Any]) -> tuple[bytes, ...] | None:
        tp = getattr(adapter, "_type", None)
        try:
            return self._null_keys[tp]
        except (KeyError, TypeError):  # new, or not hashable
            pass
        keys = json_null_keys(adapter.core_schema)
        if len(self._null_keys) >= _MEMO_SIZE:
            self._null_keys.clear()
        with contextlib.suppress(TypeError):
            self._null_keys[tp] = keys
        return keys

    def decode(self, data: bytes, adapter: TypeAdapter[Any] | None = None) -> Any:
        """Decode JSON bytes into plain objects, or validate them into ``adapter``'s type.

        With an adapter, a number outside the policy under a key the type ignores is dropped
        with the key, unread (a ``NaN`` or ``Infinity`` literal is malformed JSON anywhere).

        Raises:
            DecodeError: malformed JSON or a number outside the value policy.
            pydantic.ValidationError: the data does not fit the type.
        """
        if data.startswith(b"\xef\xbb\xbf"):
            raise DecodeError("Invalid JSON: a UTF-8 byte order mark (BOM) is not allowed")
        try:
            obj = from_json(data, allow_inf_nan=False)
        except ValueError as exc:
            raise DecodeError(f"Invalid JSON: {_json_reason(exc)}") from None
        found = find_bad_number(obj)
        if adapter is None:
            _refuse(found)
            return obj
        try:
            # From the bytes, not from obj: JSON mode (strict models read datetimes from strings).
            value = adapter.validate_json(data)
        except ValidationError:
            _refuse(found)  # a 400 rather than the 422 it caused
            raise
        _refuse(problem_in_validated(value, found))
        return value


def _refuse(found: Any) -> None:
    if found is not None:
        raise DecodeError(f"Invalid JSON number at {describe(found)}")


def _json_reason(exc: Exception) -> str:
    text = str(exc)
    if "recursion limit" in text:
        return f"depth limit: nested deeper than {JSON_MAX_DEPTH} levels ({text})"
    if "invalid unicode code point" in text or "invalid utf-8" in text.lower():
        return f"the text is not valid UTF-8 ({text})"
    return text
