"""Keep CPython's cyclic garbage collector out of request-body decoding.

CPython collects its youngest generation each time the number of container objects allocated
(less those freed) since the last collection passes ``gc.get_threshold()[0]`` (700 by default).
Decoding a body of a hundred models allocates about that many: each model, its ``__dict__`` and
fields-set, its lists and nested models, and, for MessagePack, the plain dicts and lists read
before validation. Left alone, the collection nearly always falls *during* the decode and walks
every object built so far, all of them alive. Those objects live as long as the request and are
freed by reference counting, so the walk is wasted work: on 27 KB of JSON it cost about a fifth
of the decode itself, on 21 KB of MessagePack two collections per request.

:func:`pause` therefore, for bodies of :data:`MIN_SIZE` bytes and more,

1. collects the young generation *first*, if the decode ahead would reach the threshold, while it
   holds only what the request had before (a few hundred objects at most), and
2. turns automatic collection off until :func:`resume`, so the intermediate objects a decode
   builds and drops (MessagePack's plain containers) cannot trigger one either.

The decode is synchronous (no ``await`` between the two calls), builds no reference cycles and
cannot be interrupted by another coroutine. After it, what survives is the decoded value: below
the threshold for ordinary bodies (no collection until the request is over and the value is
freed), or one collection later for very large ones, instead of many during the decode.

When the application turned collection off (``gc.disable()``, or a threshold of 0) nothing
happens. The one thing a pause can get wrong is a ``gc.disable()`` called by *another thread*
during a decode: :func:`resume` turns collection back on.
"""

from __future__ import annotations

import gc
from typing import Final

# A conservative guess of body bytes per container object a decode builds: 27 KB of JSON user
# records build about 640 (42 bytes each), the same users in MessagePack 21 KB (33 each).
BYTES_PER_OBJECT: Final = 32
# Below this a decode builds too few objects for a collection to matter (or to be likely).
MIN_SIZE: Final = 4096


def pause(size: int) -> bool:
    """Prepare the collector for decoding ``size`` body bytes.

    Returns True when automatic collection is now off: the caller must call :func:`resume`
    (in a ``finally``) once the decode is over, without awaiting anything in between.
    """
    if size < MIN_SIZE or not gc.isenabled():
        return False
    threshold = gc.get_threshold()[0]
    if not threshold:
        return False
    if gc.get_count()[0] + size // BYTES_PER_OBJECT >= threshold:
        gc.collect(0)
    gc.disable()
    return True


def resume() -> None:
    """Turn automatic collection back on after :func:`pause` returned True."""
    gc.enable()
