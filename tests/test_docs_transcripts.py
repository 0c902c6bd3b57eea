"""The ``curl -si`` transcripts of the quickstart page are what the quickstart app answers.

Each ``$ curl -si ...`` in a ``console`` block of docs/quickstart.md (without a pipe) is sent to
the quickstart app in process, as curl sends it (``Accept: */*``, no ``Accept-Encoding``); the
status line, every header shown (and no other, but ``date`` and ``server``, which uvicorn adds)
and the body must be the page's. Blocks after the "Strict negotiation and problem details"
heading run with ``strict=True, problem_details=True``, as the page says.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.test_docs_examples import OPT_IN, load, switched_on

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).parent.parent / "docs" / "quickstart.md"
OPT_IN_HEADING = "## Strict negotiation and problem details"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Transcript:
    command: str
    status_line: str
    headers: list[tuple[str, str]]
    body: str
    opt_in: bool


def transcripts() -> list[Transcript]:
    text = PAGE.read_text()
    split = text.index(OPT_IN_HEADING)
    found: list[Transcript] = []
    for block in re.finditer(r"```console\n(.*?)```", text, re.S):
        lines = block.group(1).replace("\\\n", " ").splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.startswith("$ curl -si ") or "|" in line:
                continue
            output: list[str] = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            status, *rest = output
            blank = rest.index("") if "" in rest else len(rest)
            headers = [
                (name.lower(), value)
                for name, value in (header.split(": ", 1) for header in rest[:blank])
            ]
            body = [line for line in rest[blank + 1 :] if line]
            found.append(
                Transcript(line[2:], status, headers, "".join(body), block.start() > split)
            )
    return found


def request_of(command: str) -> tuple[str, str, dict[str, str], bytes]:
    words = shlex.split(command)[2:]  # past "curl -si"
    method, headers, data, url = "GET", {"accept": "*/*"}, b"", ""
    while words:
        word = words.pop(0)
        if word == "-X":
            method = words.pop(0)
        elif word == "-H":
            name, value = words.pop(0).split(": ", 1)
            headers[name.lower()] = value
        elif word in ("--data-binary", "-d"):
            data = words.pop(0).encode()
            method = "POST" if method == "GET" else method
        else:
            url = word
    return method, url, headers, data


ALL = transcripts()


def test_the_page_has_transcripts() -> None:
    assert len(ALL) >= 6
    assert any(t.opt_in for t in ALL)
    assert any(not t.opt_in for t in ALL)


@pytest.mark.parametrize("transcript", ALL, ids=[t.command[:60] for t in ALL])
async def test_the_transcript_is_what_the_app_answers(transcript: Transcript) -> None:
    app = load("quickstart")["create_app"]()
    if transcript.opt_in:
        app = switched_on(app, **OPT_IN)
    method, url, headers, data = request_of(transcript.command)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        del client.headers["accept-encoding"]  # curl sends none
        client.headers["user-agent"] = "curl/8"
        response = await client.request(method, url, headers=headers, content=data)
    shown = f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
    assert transcript.status_line == shown
    actual = [(name, value) for name, value in response.headers.items()]
    assert sorted(transcript.headers) == sorted(actual), transcript.command
    assert transcript.body == response.text
