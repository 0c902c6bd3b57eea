"""The Vary decisions at their edges: credentials of a per-principal answer, starts without a
Content-Type, header tuples, and the bounded memo of joined values."""

from __future__ import annotations

from fastapi_serdes.vary import _MEMO_SIZE, VaryJoiner, mark_json, route_vary


def test_a_per_principal_answer_varies_on_the_credentials_it_was_given() -> None:
    headers: list[tuple[bytes, bytes]] = []
    route_vary(
        headers,
        views=False,
        request_headers=[(b"cookie", b"s=1"), (b"accept", b"*/*"), (b"authorization", b"x")],
    )
    assert headers == [(b"vary", b"Accept, Cookie, Authorization")]


def test_a_start_without_content_type_is_left_alone() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}
    mark_json(start)
    assert start["headers"] == [(b"x-a", b"1")]
    bare = {"type": "http.response.start", "status": 204}
    mark_json(bare)
    assert "headers" not in bare


def test_only_the_first_content_type_decides() -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-type", b"application/json")],
    }
    mark_json(start)
    assert all(name != b"vary" for name, _ in start["headers"])


def test_mark_takes_header_tuples_too() -> None:
    joiner = VaryJoiner()
    start = {"headers": ((b"content-type", b"application/json"), (b"vary", b"Origin"))}
    joiner.mark(start, b"Origin", accept=True, encoding=True)
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"vary", b"Origin, Accept, Accept-Encoding"),
    ]


def test_the_memo_is_bounded_and_answers_stay_right() -> None:
    joiner = VaryJoiner()
    for i in range(_MEMO_SIZE + 10):
        assert joiner(f"X-{i}".encode(), True, False) == f"X-{i}, Accept".encode()
    assert len(joiner._joined) <= _MEMO_SIZE
    assert joiner(b"X-0", True, True) == b"X-0, Accept, Accept-Encoding"
    unchanged = b"Accept, Accept-Encoding"
    assert joiner(unchanged, True, True) is unchanged
