"""pytest plugin (``-p compat.inject``): injects fastapi-serdes as ``SERDES_COMPAT_MODE`` says.

The patching itself is in :mod:`compat.patch`. This reports what it patched, and explains a
failed ``==`` of two dicts or lists (OpenAPI documents, JSON bodies) as a short list of ``~ ``
lines, one per distinct difference (operation paths shown as ``*``), that the harness groups
failures by.
"""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from compat.patch import counts, install_when_imported, mode, write_counts

MAX_CAUSES = 30
# Keys below which the next few levels name one operation (path and method, callback name,
# expression and method): a diff path shows them as "*", so the same cause reads the same.
OPERATION_LEVELS = {"paths": 2, "webhooks": 2, "callbacks": 3}
Keys = tuple[str | int, ...]


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def leaf_diffs(left: Any, right: Any, keys: Keys = ()) -> Iterator[tuple[Keys, str]]:
    """(keys, what) for each difference; ``left`` is the actual value, ``right`` the expected."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() - right.keys(), key=str):
            value = left[key]
            yield (
                (*keys, key),
                "unexpected" + ("" if isinstance(value, dict | list) else f" {short(value)}"),
            )
        for key in sorted(right.keys() - left.keys(), key=str):
            yield (*keys, key), "missing"
        for key in sorted(left.keys() & right.keys(), key=str):
            yield from leaf_diffs(left[key], right[key], (*keys, key))
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (item, expected) in enumerate(zip(left, right, strict=True)):
            yield from leaf_diffs(item, expected, (*keys, index))
    elif (
        isinstance(left, list | set)
        and isinstance(right, list | set)
        and str in set(map(type, [*left, *right]))
    ):
        yield from (((*keys, "[]"), f"unexpected {short(i)}") for i in left if i not in right)
        yield from (((*keys, "[]"), f"missing {short(i)}") for i in right if i not in left)
    elif left != right:
        yield keys, f"{short(left)} != {short(right)}"


def render(keys: Keys) -> str:
    parts, hidden = [], 0
    for key in keys:
        if hidden:
            parts.append(".*")
            hidden -= 1
            continue
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}".replace(".[]", "[]"))
        hidden = OPERATION_LEVELS.get(key, 0) if isinstance(key, str) else 0
    return "".join(parts) or "value"


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    """Explain a failed ``==`` of dicts or lists by its distinct differences, a ``~`` line each."""
    if (
        op != "=="
        or not isinstance(left, dict | list | set)
        or not isinstance(right, dict | list | set)
    ):
        return None
    causes: Counter[str] = Counter()
    for keys, what in leaf_diffs(left, right):
        cause = f"{render(keys)}: {what}"
        if cause not in causes and len(causes) == MAX_CAUSES:
            break
        causes[cause] += 1
    lines = [f"~ {cause}  (x{n})" if n > 1 else f"~ {cause}" for cause, n in causes.items()]
    return [f"{short(left)} == {short(right)}", *lines] if lines else None


def pytest_configure(config: pytest.Config) -> None:
    install_when_imported()


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_counts()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"serdes-compat: mode={mode()} patched={dict(counts)}")
