"""pytest plugin (``-p compat.inject``): injects fastapi-serdes as ``SERDES_COMPAT_MODE`` says.

The patching itself is in :mod:`compat.patch`; this reports what it patched.
"""

from typing import Any

import pytest

from compat.patch import counts, install_when_imported, mode, write_counts


def pytest_configure(config: pytest.Config) -> None:
    install_when_imported()


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_counts()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"serdes-compat: mode={mode()} patched={dict(counts)}")
