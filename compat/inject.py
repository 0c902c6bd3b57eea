"""pytest plugin (``-p compat.inject``): injects fastapi-serdes as ``SERDES_COMPAT_MODE`` says.

The patching itself is in :mod:`compat.patch`. This reports what it patched, and explains a
failed ``==`` of two dicts or lists (OpenAPI documents, JSON bodies) as a short list of ``~ ``
lines, one per differing leaf, which the harness groups failures by.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from compat.patch import counts, install_when_imported, mode, write_counts

MAX_DIFFS = 30


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def leaf_diffs(left: Any, right: Any, path: str = "") -> Iterator[str]:
    """``path: what`` for each difference; left is the actual value, right the expected one."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() - right.keys(), key=str):
            yield f"{path}.{key}: unexpected {short(left[key])}"
        for key in sorted(right.keys() - left.keys(), key=str):
            yield f"{path}.{key}: missing"
        for key in sorted(left.keys() & right.keys(), key=str):
            yield from leaf_diffs(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (item, expected) in enumerate(zip(left, right, strict=True)):
            yield from leaf_diffs(item, expected, f"{path}[{index}]")
    elif isinstance(left, list) and isinstance(right, list) and str in set(map(type, left + right)):
        yield from (f"{path}[]: unexpected {short(item)}" for item in left if item not in right)
        yield from (f"{path}[]: missing {short(item)}" for item in right if item not in left)
    elif left != right:
        yield f"{path or 'value'}: {short(left)} != {short(right)}"


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    if op != "==" or not isinstance(left, dict | list) or not isinstance(right, dict | list):
        return None
    diffs = []
    for diff in leaf_diffs(left, right):
        diffs.append(f"~ {diff}")
        if len(diffs) == MAX_DIFFS:
            diffs.append("~ ...")
            break
    return [f"{short(left)} == {short(right)}", *diffs] if diffs else None


def pytest_configure(config: pytest.Config) -> None:
    install_when_imported()


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_counts()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"serdes-compat: mode={mode()} patched={dict(counts)}")
