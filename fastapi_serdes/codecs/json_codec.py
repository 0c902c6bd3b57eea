"""``application/json``: pydantic-core writes and reads it, under the number policy."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Final

from pydantic import TypeAdapter
from pydantic_core import from_json, to_json

from ..problems import DecodeError, EncodeError
from .core_schemas import json_null_keys, memoised
from .value_policy import describe, find_bad_number, validated

JSON_MEDIA_TYPE: Final = "application/json"
#: Deepest nesting a JSON body may have (pydantic-core's parser limit): a value inside more than
#: 200 arrays or objects is refused (an empty innermost container is not counted as a value).
JSON_MAX_DEPTH: Final = 200


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
        """Encode ``value`` as JSON, through ``adapter`` and pydantic dump ``options``
        (``exclude_none``, ``include``...) when given.

        Raises:
            EncodeError: the value holds a non-finite float (the message locates it) or a type
                pydantic cannot serialise.
        """
        opts = options or {}
        found = None
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
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{JSON_MEDIA_TYPE}: cannot encode the value: {exc}") from exc
        if found is not None:
            raise EncodeError(f"{JSON_MEDIA_TYPE}: {describe(found)}")
        return data

    def _may_hide_non_finite(self, data: bytes, adapter: TypeAdapter[Any] | None) -> bool:
        """Whether ``data`` has a ``null`` where ``adapter``'s type may have a float."""
        if b"null" not in data:
            return False
        if adapter is None:
            return True
        tp = getattr(adapter, "_type", None)
        keys = memoised(self._null_keys, tp, lambda: json_null_keys(adapter.core_schema))
        return keys is None or any(key in data for key in keys)

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
        # From the bytes, not from obj: JSON mode (strict models read datetimes from strings).
        validate = None if adapter is None else partial(adapter.validate_json, data)
        return validated(obj, find_bad_number(obj), validate, "Invalid JSON number")


def _json_reason(exc: Exception) -> str:
    text = str(exc)
    if "recursion limit" in text:
        return f"depth limit: nested deeper than {JSON_MAX_DEPTH} levels ({text})"
    if "invalid unicode code point" in text or "invalid utf-8" in text.lower():
        return f"the text is not valid UTF-8 ({text})"
    return text
