"""Regenerate docs/how-to/stats-page.png from the real stats page.

    .venv/bin/python docs/stats_screenshot.py

Starts the example app under uvicorn on a fresh database (in a temporary directory), sends it
the requests of :func:`visit` so that every table and chart of ``/stats`` has something to show,
and takes a screenshot of the page in headless Chromium (``apt-get install chromium``).

``tests/test_stats_view.py`` does the same with these functions, into a temporary directory,
and checks what the browser shows against the JSON snapshot; only this script writes into docs/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import msgpack

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "how-to" / "stats-page.png"
# The docs page shows the screenshot at this size: wide enough for the routes table's columns,
# tall enough for the four tables the visit fills.
DOCS_WINDOW = (1200, 860)
MSGPACK = "application/msgpack"


def chromium() -> str:
    """The Chromium executable on PATH."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "the stats page is opened in a headless Chromium, and none is installed: "
            "apt-get install -y chromium (.ci/run does it when /usr/bin/chromium is missing)"
        )
    return found


def run_chromium(
    profile: Path, *args: str, window: tuple[int, int] = (1400, 1000)
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with ``args`` (``--dump-dom URL``, ``--screenshot=PATH URL``) and a
    throwaway profile in ``profile``; raises when it fails."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # the CI runs as root
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done


def visit(client: httpx.Client) -> None:
    """The requests behind the page, each checked for the status it must get: cache misses and
    hits, MessagePack answers (gzip and zstd compressed), MessagePack bodies (one that is not
    MessagePack), and 4xx answers the library gives (406, 415, and a 406 before routing)."""
    packed = {"accept": MSGPACK}
    sent: list[tuple[int, httpx.Response]] = []
    for user_id in (1, 2, 1, 2, 1):  # JSON: FastAPI's own bytes, nothing for the library to encode
        sent.append((200, client.get(f"/users/{user_id}")))
    for video_id in (1, 2, 3, 1, 2):
        sent.append((200, client.get(f"/videos/{video_id}", headers=packed)))
    for url, coding in (("/videos?limit=30", "gzip"), ("/users?limit=50", "zstd")):
        sent.append((200, client.get(url, headers={**packed, "accept-encoding": coding})))
    for name in ("stats_otter", "stats_heron", "stats_lynx"):
        user = {"username": name, "display_name": name.title(), "email": f"{name}@example.com"}
        body = msgpack.packb(user)
        sent.append((201, client.post("/users", content=body, headers={"content-type": MSGPACK})))
    sent.append((422, client.post("/users", content=b"\xc1", headers={"content-type": MSGPACK})))
    sent.append((406, client.get("/users", headers={"accept": "text/csv"})))
    sent.append((415, client.post("/users", content=b"a,b", headers={"content-type": "text/csv"})))
    sent.append((406, client.get("/users/1", headers={"accept-encoding": "identity;q=0"})))
    for status, response in sent:
        if response.status_code != status:
            raise RuntimeError(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}, not {status}: {response.text[:300]}"
            )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.example_server import serve_example  # the test suite's server, not a copy

    with tempfile.TemporaryDirectory() as tmp, serve_example(Path(tmp) / "example.sqlite3") as base:
        with httpx.Client(base_url=base) as client:
            visit(client)
        run_chromium(
            Path(tmp) / "chromium-profile",
            f"--screenshot={OUTPUT}",
            f"{base}/stats",
            window=DOCS_WINDOW,
        )
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
