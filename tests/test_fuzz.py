"""Fuzzing in CI (issue 16): no exception but the documented ones, no crash, linear-time parsing.

- The decoders (JSON and MessagePack into typed models, the gzip / br / zstd request-body
  decoders, the whole middleware over HTTP) run in a child process, ``tests/fuzz_worker.py``, so
  a segfault in a C extension fails one test instead of killing the run; see that module for the
  inputs and invariants of each target.
- The header parsers (``Accept``, ``Accept-Encoding``, ``Content-Type``, ``Content-Encoding``,
  ``If-None-Match``, ``Cache-Control``) run here: arbitrary text never raises, and the work done
  is linear in the header length, counted as Python line events (never wall-clock time).

Every run is derandomised (the same examples each time, so CI is not flaky), with
``FUZZ_EXAMPLES`` examples per target (default 400). A longer run, e.g. before a release::

    FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

(``FUZZ_SEED=<int>`` explores other inputs than the fixed run; ``FUZZ_STRICT=1`` fails on the
known bugs listed in ``fuzz_worker.KNOWN_BUGS`` instead of counting them.) The worker also runs
alone and prints its figures: ``python -m tests.fuzz_worker all --examples 20000``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from fastapi_serdes import DecodeError, JSONCodec, MsgPackCodec
from fastapi_serdes.cache import cache_control
from fastapi_serdes.cache.conditional import matching_tag
from fastapi_serdes.compression.request_bodies import request_coding
from fastapi_serdes.negotiation import (
    MAX_ENTRIES,
    MAX_HEADER_LENGTH,
    choose_encoding,
    choose_media_type,
    is_json_content_type,
    is_json_family,
    parse_accept,
    parse_accept_encoding,
    parse_media_type,
    parse_qvalue,
    split_list,
)
from fastapi_serdes.vary import add_vary

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
WORKER = Path(__file__).with_name("fuzz_worker.py")
ROOT = WORKER.parent.parent

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the decoders, in a child process ------------------------------------------------------------


@pytest.mark.parametrize("target", ["json", "msgpack", "decoders", "http"])
def test_decoders_in_a_child_process(target: str) -> None:
    # About 2-4 s per target at 400 examples on one core; the timeout scales with the budget.
    timeout = 120 + EXAMPLES * 0.1
    completed = subprocess.run(
        [sys.executable, str(WORKER), target, "--examples", str(EXAMPLES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode < 0:
        name = signal.Signals(-completed.returncode).name
        pytest.fail(f"the {target} fuzz worker crashed ({name}):\n{completed.stderr[-8000:]}")
    assert completed.returncode == 0, completed.stderr[-8000:]
    # The worker prints one JSON line of figures per target: the examples did run.
    print(completed.stdout, end="")  # shown with -s: examples per outcome, seconds
    figures = json.loads(completed.stdout.splitlines()[-1])
    assert figures["target"] == target
    assert figures["examples"] >= EXAMPLES // 2, figures


# --- header parsers: arbitrary text never raises --------------------------------------------------

# Text made mostly of the characters that matter to the parsers, and text of any character.
_SPECIAL = list(',;="\\ \t/*qQ.0123456789-+W\x00\x7f\xe9\u2028abcgjnoprstxyz')
header_text = st.one_of(
    st.text(st.sampled_from(_SPECIAL), max_size=80),
    st.text(max_size=40),
    st.lists(
        st.tuples(
            st.sampled_from(["application/json", "*/*", "text/*", "gzip", "br", '"x"', 'W/"x"']),
            st.lists(
                st.tuples(st.sampled_from(["q", "Q", "charset", "a", ""]), st.text(_SPECIAL)),
                max_size=3,
            ),
        ),
        max_size=6,
    ).map(
        lambda members: ", ".join(
            head + "".join(f";{name}={value}" for name, value in params) for head, params in members
        )
    ),
)
OFFERS = ("application/json", "application/msgpack", "application/x-msgpack")
CODINGS = ("zstd", "br", "gzip")
ETAG = '"0123456789abcdef"'


@FUZZ
@given(header_text)
def test_negotiation_parsers_never_raise(value: str) -> None:
    members = split_list(value)
    assert len(members) <= MAX_ENTRIES
    assert all(m and m == m.strip() for m in members)
    for media_range in parse_accept(value):
        assert 0.0 <= media_range.q <= 1.0
    assert choose_media_type(value, OFFERS) in (*OFFERS, None)
    weights = parse_accept_encoding(value)
    assert len(weights) <= MAX_ENTRIES
    assert all(0.0 <= q <= 1.0 for q in weights.values())
    assert choose_encoding(value, CODINGS) in (*CODINGS, "identity", None)
    parsed = parse_media_type(value)
    assert parsed is None or parsed[0].count("/") == 1
    q = parse_qvalue(value)
    assert q is None or 0.0 <= q <= 1.0
    raw = value.encode("utf-8", "surrogatepass")
    assert is_json_content_type(raw) in (True, False)
    assert is_json_family(raw) in (True, False)
    assert add_vary([(b"vary", raw)], b"Accept")[0][0] == b"vary"


@FUZZ
@given(header_text)
def test_cache_header_parsers_never_raise(value: str) -> None:
    found = matching_tag(value, ETAG)
    assert found is None or found == ETAG or found in split_list(value)
    directives = cache_control(value)
    assert len(directives) <= MAX_ENTRIES
    assert all(name == name.lower() and name for name in directives)


@FUZZ
@given(st.one_of(header_text.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary()))
def test_request_coding_never_raises(value: bytes) -> None:
    coding = request_coding(value)
    assert coding is None or (coding and "," not in coding)


# --- linear time, counted as Python line events ------------------------------------------------


def line_events(call: Callable[[], object]) -> int:
    """Python line events while ``call()`` runs: a deterministic measure of the work done
    (C-level work such as a slice or a regex match counts one line)."""
    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        return local

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


def _negotiation(value: str) -> None:
    parse_accept(value)
    choose_media_type(value, OFFERS)
    parse_accept_encoding(value)
    choose_encoding(value, CODINGS)
    parse_media_type(value)


def _caching(value: str) -> None:
    matching_tag(value, ETAG)
    cache_control(value)


# name -> a header of about n characters made of one pathological pattern.
PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "commas": lambda n: "," * n,
    "commas and spaces": lambda n: ", " * (n // 2),
    "quotes": lambda n: '"' * n,
    "open quote": lambda n: 'a/b;x="' + "," * n,
    "escapes in a quote": lambda n: 'a/b;x="' + "\\" * n + '"',
    "semicolons": lambda n: "application/json" + ";" * n,
    "parameters": lambda n: "application/json" + ";a=1" * (n // 4),
    "long q-value": lambda n: "application/json;q=0." + "0" * n,
    "long token": lambda n: "a" * (n // 2) + "/" + "b" * (n // 2),
    "many members": lambda n: "application/json;q=0.5, " * (n // 24),
    "many codings": lambda n: "gzip;q=0.1, " * (n // 12),
    "etags": lambda n: 'W/"abc", ' * (n // 9),
    "etag suffixes": lambda n: '"' + "-gzip" * (n // 5) + '", ',
    "directives": lambda n: "max-age=1, " * (n // 11),
    "quoted directive": lambda n: 'no-cache="' + "a," * (n // 2) + '"',
}
SMALL = 400  # 8 * SMALL stays under MAX_HEADER_LENGTH, so the cut does not hide a slope


@pytest.mark.parametrize("parse", [_negotiation, _caching], ids=["negotiation", "cache"])
@pytest.mark.parametrize("pattern", list(PATHOLOGICAL))
def test_header_parsing_is_linear(pattern: str, parse: Callable[[str], None]) -> None:
    make = PATHOLOGICAL[pattern]
    small, large = make(SMALL), make(8 * SMALL)
    assert len(large) <= MAX_HEADER_LENGTH
    n_small = line_events(lambda: parse(small))
    n_large = line_events(lambda: parse(large))
    # Linear work is at most 8x (plus a constant); quadratic would be 64x.
    assert n_large <= 16 * max(n_small, 50), (pattern, n_small, n_large)


@pytest.mark.parametrize("pattern", list(PATHOLOGICAL))
def test_headers_past_the_limit_cost_no_more(pattern: str) -> None:
    make = PATHOLOGICAL[pattern]
    at_limit = make(MAX_HEADER_LENGTH)
    huge = make(16 * MAX_HEADER_LENGTH)
    n_limit = line_events(lambda: (_negotiation(at_limit), _caching(at_limit)))
    n_huge = line_events(lambda: (_negotiation(huge), _caching(huge)))
    assert n_huge <= 2 * max(n_limit, 50), (pattern, n_limit, n_huge)


CHECKABLE: TypeAdapter[Any] = TypeAdapter(list[float | str | dict[str, int | str]])
# Bodies that make the codecs do Python-level work (screens, parses and walks).
BODIES: dict[str, Callable[[int], bytes]] = {
    "json 19-digit numbers": lambda n: b"[" + b",".join([b"1234567890123456789"] * n) + b"]",
    "json NaN strings": lambda n: b'["' + b'","'.join([b"NaN"] * n) + b'"]',
    "json N and I letters": lambda n: b'"' + b"NI" * n + b'"',
    "json 3-digit exponents": lambda n: b"[" + b",".join([b"1e300"] * n) + b"]",
    "json objects": lambda n: b"[" + b",".join([b'{"id": 1, "name": "x"}'] * n) + b"]",
    "msgpack floats": lambda n: msgpack.packb([1.5] * n + [float("inf")]),
    "msgpack float patterns": lambda n: msgpack.packb([b"\xcb\x7f\xf0"] * n),
    "msgpack maps": lambda n: msgpack.packb([{"id": 1, "name": "x"}] * n),
}


@pytest.mark.parametrize("body", list(BODIES))
def test_codec_work_is_linear(body: str) -> None:
    codec: JSONCodec | MsgPackCodec = JSONCodec() if body.startswith("json") else MsgPackCodec()
    # Untyped, not checkable (the byte screen) and checkable (the compiled check).
    adapters = (None, TypeAdapter(Any), TypeAdapter(list[dict[str, Any]]), CHECKABLE)

    def decode(data: bytes) -> None:
        for adapter in adapters:
            with contextlib.suppress(DecodeError, ValueError):  # ValidationError: a ValueError
                codec.decode(data, adapter)

    make = BODIES[body]
    decode(make(8))  # compiled checks and memos are built once, outside the count
    n_small = line_events(lambda: decode(make(500)))
    n_large = line_events(lambda: decode(make(4000)))
    assert n_large <= 16 * max(n_small, 50), (body, n_small, n_large)
