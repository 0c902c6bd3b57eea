"""What a stored entry is worth now, by the rules of RFC 5861: a hit while fresh, a stale answer
within ``stale-while-revalidate`` (refreshed in the background), a fallback within
``stale-if-error``; and what a lookup found, for the middleware."""

from __future__ import annotations

import dataclasses
from typing import Final

from ..telemetry import CACHE_HIT, CACHE_MISS, CACHE_STALE
from . import CACHE_STATUS_NAME, CachePolicy, Entry

__all__ = ["MISSED", "Lookup", "judge"]

_NAME: Final = CACHE_STATUS_NAME.encode("latin-1")
_HIT: Final = (b"cache-status", _NAME + b"; hit")
_SWR: Final = (b"cache-status", _NAME + b"; fwd=stale; detail=stale-while-revalidate")


@dataclasses.dataclass(frozen=True, slots=True)
class Lookup:
    """What a response-cache lookup found."""

    served: bool = False  # the request was answered from the store
    refresh: str | None = None  # what was served is stale (stale-while-revalidate): its key
    fallback: Entry | None = None  # stale-if-error: the entry to answer if the endpoint fails
    result: str = CACHE_MISS  # for telemetry: hit, miss or stale
    since: int | None = None  # the store's clock read before the endpoint runs (None: no clock)


MISSED: Final = Lookup()
_STALE: Final = Lookup(result=CACHE_STALE)
_HIT_LOOKUP: Final = Lookup(served=True, result=CACHE_HIT)


def judge(
    entry: Entry, key: str, policy: CachePolicy, now: float, found: Lookup
) -> tuple[Lookup, tuple[bytes, bytes] | None]:
    """What a stored entry is worth: a hit, a stale answer within ``stale-while-revalidate``
    (with the ``Cache-Status`` to send), or at most the ``stale-if-error`` fallback."""
    age = now - entry.stored_at
    if age < entry.ttl:
        return _HIT_LOOKUP, _HIT
    if age < entry.ttl + policy.stale_while_revalidate:
        return Lookup(True, key, None, CACHE_STALE), _SWR
    if found.fallback is not None:
        return found, None
    if age < entry.ttl + policy.stale_if_error:
        return Lookup(False, None, entry, CACHE_STALE), None
    return _STALE, None
