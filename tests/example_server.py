"""The example app served by a real uvicorn on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from benchmarks.redis_servers import free_ports

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serve_example(db: Path, ready_within: float = 60) -> Iterator[str]:
    """The example app on its own database; yields its base URL once ``/health/ready`` is 200."""
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "example_app.main:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=ROOT,
        env={"EXAMPLE_DB_PATH": str(db), "PATH": os.environ["PATH"]},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"uvicorn did not become ready in {ready_within:g} s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
