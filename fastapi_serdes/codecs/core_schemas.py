"""What a type's pydantic core schema tells the codecs, and the memo that reads it once per type.

Both readers walk the schema iteratively (recursive models are definitions, visited once) and
answer conservatively for what they do not know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

_T = TypeVar("_T")
_MEMO_SIZE: Final = 512
_JSON_ONLY_CONFIG: Final = {"ser_json_timedelta": "iso8601", "ser_json_temporal": "iso8601"}
# Not listed: bytes settings (MessagePack carries bytes natively, the documented difference;
# a type that needs JSON mode for another reason gets its bytes as JSON text there) and
# ser_json_inf_nan (non-finite floats are refused anyway).


def memoised(table: dict[Any, _T], key: Any, compute: Callable[[], _T]) -> _T:
    """``compute()``, once per hashable ``key`` in ``table`` (bounded: cleared when full)."""
    try:
        return table[key]
    except KeyError:
        pass
    except TypeError:  # not hashable
        return compute()
    value = compute()
    if len(table) >= _MEMO_SIZE:
        table.clear()
    table[key] = value
    return value


def has_json_only_serialization(schema: Any) -> bool:
    """Whether ``schema`` serialises differently in JSON mode (so MessagePack must dump in JSON
    mode to give what the JSON codec gives): a ``ser_json_*`` setting off its default, or a
    serializer ``when_used="json"`` / ``"json-unless-none"``."""
    stack = [schema]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            if _json_only_node(node):
                return True
            node = node.values()
        stack.extend(v for v in node if isinstance(v, Mapping | list | tuple))
    return False


def _json_only_node(node: Mapping[str, Any]) -> bool:
    config = node.get("config")
    if isinstance(config, Mapping) and any(
        config.get(key, default) != default for key, default in _JSON_ONLY_CONFIG.items()
    ):
        return True
    return node.get("when_used") in ("json", "json-unless-none")


# Schemas whose value is serialised as their inner "schema" (a field keeps its key through them).
_WRAPPERS: Final = frozenset({"nullable", "default", "function-after", "function-before"})
# Schemas that may write a float anywhere: any value, a validator's own output, a serializer's.
_ANY_FLOAT: Final = frozenset({"any", "function-plain", "function-wrap", "is-instance"})


def json_null_keys(schema: Mapping[str, Any]) -> tuple[bytes, ...] | None:
    """The ``"key":null`` byte patterns behind which pydantic's JSON for ``schema`` may hide a
    NaN or an infinity, or None when a float may sit anywhere (a list of floats, ``Any``, a
    serializer, extra fields...): then every ``null`` counts. ``()`` for a type without floats.

    Keys are a model field's name and its serialization alias (``by_alias`` picks either).
    """
    definitions = {d["ref"]: d for d in schema.get("definitions", ()) if "ref" in d}
    keys: set[bytes] = set()
    stack: list[tuple[Mapping[str, Any], frozenset[str]]] = [(schema, frozenset())]
    seen: set[str] = set()
    while stack:
        node, names = stack.pop()
        is_float = node.get("type") == "float"
        if is_float and names:
            keys.update(f'"{name}":null'.encode() for name in names)
        elif is_float or _may_write_any_float(node):
            return None
        else:
            stack.extend(_inner(node, names, definitions, seen))
    return tuple(sorted(keys))


def _may_write_any_float(node: Mapping[str, Any]) -> bool:
    serialization = node.get("serialization")
    return (
        node.get("type") in _ANY_FLOAT
        or any(isinstance(value, float) for value in node.get("expected", ()))  # a literal
        or (isinstance(serialization, Mapping) and "function" in serialization)
        or node.get("extra_behavior") == "allow"
        or (node.get("config") or {}).get("extra_fields_behavior") == "allow"
    )


def _inner(
    node: Mapping[str, Any],
    names: frozenset[str],
    definitions: Mapping[str, Mapping[str, Any]],
    seen: set[str],
) -> Iterator[tuple[Mapping[str, Any], frozenset[str]]]:
    """The schemas inside ``node``, each with the JSON keys it is written under directly; a
    definition (a model, maybe recursive) the first time only."""
    kind = node.get("type")
    if kind == "definition-ref":
        ref = node["schema_ref"]
        if ref not in seen:
            seen.add(ref)
            yield definitions[ref], names
    elif kind in _WRAPPERS:
        yield node["schema"], names
    elif kind == "model-fields":
        for name, field in node["fields"].items():
            yield field["schema"], frozenset({name, field.get("serialization_alias") or name})
        for field in node.get("computed_fields", ()):
            name = field["property_name"]
            yield field["return_schema"], frozenset({name, field.get("alias") or name})
    else:
        yield from ((child, frozenset()) for child in _schemas_in(node))


def _schemas_in(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every schema directly inside ``value`` (in lists, tagged-union choices...)."""
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    for key, item in items:
        if key in ("metadata", "serialization", "config", "ref"):
            continue
        if isinstance(item, Mapping) and "type" in item:
            yield item
        elif isinstance(item, Mapping | list | tuple):
            yield from _schemas_in(item)
