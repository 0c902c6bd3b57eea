"""Fragment caching: a list response re-encodes only the items whose version changed.

Each item's encoded bytes are kept in a per-route LRU bounded in bytes, keyed by (media type,
dump options, version); the list's bytes are the items' bytes joined (a JSON array, a
MessagePack array header). Only top-level lists in JSON and MessagePack are assembled this way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Final

from pydantic import TypeAdapter

from .._types import Codec, check_positive
from ..codecs import JSON_MEDIA_TYPE, MSGPACK_MEDIA_TYPES
from . import F, marking

Version = Callable[[Any], Hashable]

_ENTRY_OVERHEAD: Final = 200  # key tuple, OrderedDict node, bytes header: a conservative charge


def cached_fragments(version: Version, *, max_bytes: int = 16 * 1024 * 1024) -> Callable[[F], F]:
    """Encode each item of a list response once per version (``SerdesRoute`` endpoints).

    Args:
        version: gives an item's version, e.g. ``lambda video: (video.id, video.updated_at)``.
            Two items with the same version must serialise to the same bytes.
        max_bytes: the most encoded bytes kept (least recently used out).

    Raises:
        ValueError: ``max_bytes`` is not a positive int, or ``version`` is not callable.
    """
    if not callable(version):
        raise ValueError(f"version must be a callable item -> hashable, got {version!r}")
    check_positive("max_bytes", max_bytes)
    return marking("__serdes_fragments__", (version, max_bytes))


class Fragments:
    """The per-route fragment store: encoded items by version, bounded in bytes."""

    def __init__(self, version: Version, item_type: Any, max_bytes: int) -> None:
        self.version = version
        self.item_adapter: TypeAdapter[Any] = TypeAdapter(item_type)
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes charged now (encoded bytes plus a fixed overhead per entry)."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: Hashable, data: bytes) -> None:
        """Keep a new entry (one larger than the whole store is not kept), evicting the LRU."""
        cost = len(data) + _ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        self._entries[key] = data
        self._size += cost
        while self._size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted) + _ENTRY_OVERHEAD

    def encode(
        self, items: Sequence[Any], codec: Codec, options: Mapping[str, Any]
    ) -> bytes | None:
        """The list's bytes from its items' fragments; None when this codec cannot be joined."""
        media_type = codec.media_types[0]
        if media_type != JSON_MEDIA_TYPE and media_type not in MSGPACK_MEDIA_TYPES:
            return None
        item_options = _item_options(options)
        if item_options is None:
            return None
        context = (media_type, repr(sorted(item_options.items())))
        entries = self._entries
        parts: list[bytes] = []
        for item in items:
            key = (context, self.version(item))
            data = entries.get(key)
            if data is None:
                data = codec.encode(item, self.item_adapter, item_options)
                self._put(key, data)
            else:
                entries.move_to_end(key)
            parts.append(data)
        if media_type == JSON_MEDIA_TYPE:
            return b"[" + b",".join(parts) + b"]"
        return _msgpack_array_header(len(parts)) + b"".join(parts)


def _item_options(options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The dump options for one item of a list: ``include``/``exclude`` under ``__all__``."""
    out = dict(options)
    for name in ("include", "exclude"):
        tree = out.get(name)
        if tree is None:
            continue
        if not isinstance(tree, Mapping) or set(tree) != {"__all__"}:
            return None  # per-index selections: not a per-item shape
        out[name] = tree["__all__"]
    return out


def _msgpack_array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 2**16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
