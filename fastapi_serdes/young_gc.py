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

A decoder that first builds plain objects and then validates them (MessagePack) calls
:func:`checkpoint` in between. Freeing those plain objects after validation gives back less of
the count than building them took (CPython keeps up to 80 freed dicts and 80 freed lists for
reuse and counts those as still allocated), so 21 KB of MessagePack users left the count at
about 800 after the decode, over the threshold: the next allocation walked every model just
built, and every tenth time moved them all to the oldest generation, which then needed a full
collection of the whole heap every hundred-odd requests. Collecting at the checkpoint walks the
plain objects once instead (they die moments later) and leaves the count about where a JSON
decode leaves it.

When the application turned collection off (``gc.disable()``, or a threshold of 0) nothing
happens. The one thing a pause can get wrong is a ``gc.disable()`` called by *another thread*
during a decode: :func:`resume` turns collection back on.
"""

from __future__ import annotations

import gc
from typing import Final

# The densest body a decode meets, in bytes per counted object it builds: users of eight objects
# each (a model, its __dict__ and fields-set, a nested one, a list, a time zone) take 85 bytes of
# MessagePack, 113 of JSON when their strings are short. Erring dense costs a collection of the
# few objects already there; erring sparse, one of every model the decode built.
BYTES_PER_OBJECT: Final = 8
# Below this a decode builds too few objects for a collection to matter (or to be likely).
MIN_SIZE: Final = 4096


# How many pauses are in force (0 or 1: decodes are synchronous); checkpoint() acts only then,
# never when the application itself turned collection off.
_paused = 0


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
    global _paused
    _paused += 1
    return True


def checkpoint(size: int) -> None:
    """Between the two phases of a paused decode (plain objects built, models next): collect
    the young generation now, while it holds the plain objects rather than the models, unless
    validating ``size`` body bytes surely stays under the threshold.

    The count cannot tell how many plain objects were built (those taken from the free lists
    are not counted), so the estimate is :func:`pause`'s. Does nothing outside a pause.
    """
    if _paused and gc.get_count()[0] + size // BYTES_PER_OBJECT >= gc.get_threshold()[0]:
        gc.collect(0)


def resume() -> None:
    """Turn automatic collection back on after :func:`pause` returned True."""
    global _paused
    _paused = max(_paused - 1, 0)
    gc.enable()
