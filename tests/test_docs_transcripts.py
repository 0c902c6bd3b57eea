"""Every ``curl`` the pages show is what the app the page is about answers.

The pages are README.md and every page under docs/. Each fenced code block is read:

- In a ``console`` block, a ``$ `` line holding ``curl`` is a *transcript*: the lines below it,
  up to the next ``$ ``, are its output. The command is replayed and its output must be the
  page's, line for line: status line, every header shown (in the order the app sends them, and
  no other), body. The page leaves out the ``date`` and ``server`` headers uvicorn adds (as with
  ``uvicorn --no-date-header --no-server-header``); the reason phrase is the one uvicorn sends
  (``http.HTTPStatus``). Nothing else is volatile in these apps, so no placeholder is needed.
- In any other block, a line holding ``curl`` is a command shown without its output. It is
  replayed too and must answer 2xx; a trailing ``# comment`` on it is a claim about the answer,
  checked by :data:`CLAIMS`.

How a command is replayed: ``curl`` itself is emulated (:func:`curl`, the options the pages use,
as curl sends them: ``Accept: */*``, no ``Accept-Encoding``) against the page's app in process,
through ``httpx.ASGITransport``; the other commands of its pipeline (``python -c ...``, ``grep``,
``head``) run in a real ``bash`` on curl's output (or produce its ``--data-binary @-``).

Which app: :data:`APPS` names it per page (and per section, when a section restarts the server
with other settings); a page's commands run in page order against one instance of it, as a
reader's session against one server would. A ``curl`` the replay cannot run is listed in
:data:`NOT_REPLAYED` with the reason; any other ``curl`` that appears in a page without an app
fails :func:`test_every_curl_is_accounted_for`.
"""

from __future__ import annotations

import asyncio
import http
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.test_docs_examples import OPT_IN, load, switched_on

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
MSGPACK = "application/msgpack"


# --- the apps the pages are about ---------------------------------------------------------------


def readme_app(_: Path) -> FastAPI:
    """The app README.md's Quickstart defines (its first ``python`` block)."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"^## Quickstart\n.*?^```python\n(.*?)^```$", text, re.M | re.S)
    assert code is not None, "README.md has no Quickstart app"
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    app: FastAPI = namespace["app"]
    return app


def example_app(tmp: Path) -> FastAPI:
    """``example_app.main``, on its own database."""
    from example_app.main import create_app

    return create_app(str(tmp / "example.sqlite3"))


def quickstart(_: Path) -> FastAPI:
    app: FastAPI = load("quickstart")["create_app"]()
    return app


def quickstart_opted_in(tmp: Path) -> FastAPI:
    return switched_on(quickstart(tmp), **OPT_IN)


def custom_codec(_: Path) -> FastAPI:
    app: FastAPI = load("custom_codec")["create_app"]()
    return app


def caching(_: Path) -> FastAPI:
    app: FastAPI = load("caching")["create_app"](True)  # the in-process store, as without Redis
    return app


Factory = Callable[[Path], FastAPI]

# page -> [(the section heading from which on the factory applies, None: the top), factory].
# A new section means a new instance: the reader restarted the server.
APPS: dict[str, list[tuple[str | None, Factory]]] = {
    "README.md": [(None, readme_app)],
    "docs/index.md": [(None, example_app)],
    "docs/quickstart.md": [
        (None, quickstart),
        ("## Strict negotiation and problem details", quickstart_opted_in),
        ("## Plain routes", quickstart),
    ],
    "docs/how-to/custom-codec.md": [(None, custom_codec)],
    "docs/how-to/caching.md": [
        ("## A complete example", caching),
        ("## Conditional writes", caching),
    ],
}

NOT_REPLAYED: dict[str, tuple[str, list[str]]] = {
    "docs/how-to/deploy.md": (
        "they talk to the Compose deployment (nginx in front of two replicas, Redis, the "
        "collector), which needs Docker; tests/test_deploy_files.py checks its files offline",
        [
            "curl -i http://127.0.0.1:8000/health/ready",
            "curl -s -H 'Accept: application/msgpack' http://127.0.0.1:8000/users/1 "
            "| xxd | head -3",
            "curl -si http://127.0.0.1:8000/health/ready | head -1",
            "for i in $(seq 20); do curl -s -o /dev/null "
            "http://127.0.0.1:8000/videos?limit=5; done",
            "curl -s -o /dev/null http://127.0.0.1:8000/users/1",
            "curl -si http://127.0.0.1:8000/users/1 | grep -i cache-status",
            "curl -si http://127.0.0.1:8000/users/1 | grep -i etag",
            "for i in $(seq 10); do curl -s -o /dev/null -w '%{http_code} ' "
            "http://127.0.0.1:8000/users/1; done",
        ],
    ),
}

# The claims trailing ``# comments`` make about commands shown without their output.
CLAIMS: dict[str, Callable[[httpx.Response], bool]] = {
    "MessagePack": lambda r: r.headers["content-type"] == MSGPACK,
    "JSON (406 with strict=True)": lambda r: r.headers["content-type"] == "application/json",
    "MessagePack in, JSON out": lambda r: (
        r.request.headers["content-type"] == MSGPACK
        and r.headers["content-type"] == "application/json"
    ),
}


# --- reading the pages --------------------------------------------------------------------------

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Command:
    page: str  # relative to the repository root
    number: int  # its place among the page's commands
    offset: int  # of its block in the page
    text: str  # the command line, continuations joined, without a trailing comment
    comment: str | None
    shown: str | None  # the output a console block shows; None: shown without output
    raw: str = field(repr=False)  # ``text`` with its spacing, to run
    block: tuple[str, ...] = field(repr=False)  # the block's command lines, for files it makes

    @property
    def label(self) -> str:
        return f"{self.page}: {self.text}"


def split_comment(line: str) -> tuple[str, str | None]:
    """The command and its trailing ``# comment`` (a ``#`` after a space, outside quotes)."""
    quote: str | None = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), None


def is_curl(command: str) -> bool:
    return re.search(r"(^|[\s;|(&])curl\s", command) is not None


def commands(text: str, name: str) -> list[Command]:
    """The ``curl`` commands of the page ``name`` (relative to the repository root)."""
    found: list[Command] = []
    for block in FENCE.finditer(text):
        indent = len(block.group("indent"))
        lines = [line[indent:] for line in block.group("body").splitlines()]
        joined = "\n".join(lines).replace("\\\n", " ").splitlines()
        if block.group("lang") == "console":
            starts = [i for i, line in enumerate(joined) if line.startswith("$ ")]
            ends = [*starts[1:], len(joined)]
            entries = [
                (joined[start][2:], "\n".join(joined[start + 1 : end]).rstrip("\n"))
                for start, end in zip(starts, ends, strict=True)
            ]
        else:
            entries = [(line, None) for line in joined]
        block_lines = tuple(split_comment(line)[0] for line, _ in entries)
        for line, shown in entries:
            command, comment = split_comment(line)
            if is_curl(command):
                found.append(
                    Command(
                        page=name,
                        number=len(found),
                        offset=block.start(),
                        text=" ".join(command.split()),
                        comment=comment,
                        shown=shown,
                        raw=command,
                        block=block_lines,
                    )
                )
    return found


ALL = [c for page in PAGES for c in commands(page.read_text(), page.relative_to(ROOT).as_posix())]
REPLAYED = [c for c in ALL if c.text not in NOT_REPLAYED.get(c.page, ("", []))[1]]


# --- curl, emulated -----------------------------------------------------------------------------


class NotEmulatedError(Exception):
    """A curl option the replay does not know: teach :func:`curl` it, or list the command in
    NOT_REPLAYED."""


@dataclass
class Curl:
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=lambda: {"accept": "*/*"})
    data: bytes | None = None
    include: bool = False  # -i
    output: str | None = None  # -o
    dump_header: str | None = None  # -D


def parse_curl(words: list[str], stdin: bytes, cwd: Path) -> Curl:
    request = Curl()
    words = list(words[1:])
    while words:
        word = words.pop(0)
        if re.fullmatch(r"-[si]+", word):
            request.include = request.include or "i" in word  # -s: no progress meter
        elif word == "-X":
            request.method = words.pop(0)
        elif word == "-H":
            name, value = words.pop(0).split(":", 1)
            request.headers[name.strip().lower()] = value.strip()
        elif word in ("-d", "--data", "--data-binary"):
            value = words.pop(0)
            if value == "@-":
                data = stdin
            elif value.startswith("@"):
                data = (cwd / value[1:]).read_bytes()
            else:
                data = value.encode()
            if word != "--data-binary":
                data = data.replace(b"\r", b"").replace(b"\n", b"")  # as curl -d reads files
            request.data = data
            request.method = "POST" if request.method == "GET" else request.method
            request.headers.setdefault("content-type", "application/x-www-form-urlencoded")
        elif word == "-o":
            request.output = words.pop(0)
        elif word == "-D":
            request.dump_header = words.pop(0)
        elif word.startswith("-"):
            raise NotEmulatedError(word)
        elif request.url:
            raise NotEmulatedError(f"a second URL, {word}")
        else:
            request.url = word
    return request


async def curl(
    client: httpx.AsyncClient, words: list[str], stdin: bytes, cwd: Path
) -> tuple[bytes, httpx.Response]:
    """What ``curl words...`` prints to stdout, and the response it got."""
    request = parse_curl(words, stdin, cwd)
    response = await client.request(
        request.method, request.url, headers=request.headers, content=request.data
    )
    phrase = http.HTTPStatus(response.status_code).phrase  # as uvicorn sends it
    head = f"HTTP/1.1 {response.status_code} {phrase}\n".encode()
    head += b"".join(name + b": " + value + b"\n" for name, value in response.headers.raw)
    head += b"\n"
    out = head if request.dump_header == "-" else b""
    if request.dump_header not in (None, "-"):
        raise NotEmulatedError(f"-D {request.dump_header}")
    if request.output is None:
        out += (head if request.include else b"") + response.content
    elif request.output != "/dev/null":
        raise NotEmulatedError(f"-o {request.output}")
    return out, response


def environment() -> dict[str, str]:
    """This process's, with this interpreter's directory first on PATH (``python``)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path}


def shell(stages: list[list[str]], stdin: bytes, cwd: Path) -> bytes:
    """Run a pipeline in bash on ``stdin``; its stdout."""
    done = subprocess.run(
        ["bash", "-c", " | ".join(shlex.join(stage) for stage in stages)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=environment(),
        timeout=60,
        check=False,
    )
    assert not done.stderr, done.stderr.decode()
    return done.stdout


def pipeline(command: str) -> list[list[str]]:
    stages: list[list[str]] = [[]]
    for word in shlex.split(command):
        if word == "|":
            stages.append([])
        else:
            stages[-1].append(word)
    return stages


@dataclass(frozen=True)
class Replayed:
    output: str
    response: httpx.Response


async def run(client: httpx.AsyncClient, command: Command, cwd: Path) -> Replayed:
    stages = pipeline(command.raw)
    (at,) = [i for i, stage in enumerate(stages) if stage and stage[0] == "curl"]
    # Files read with --data-binary @file: made by the block's line that writes them.
    for word in stages[at]:
        if word.startswith("@") and word != "@-" and not (cwd / word[1:]).exists():
            (maker,) = [line for line in command.block if re.search(rf">\s*{word[1:]}$", line)]
            await asyncio.to_thread(shell, [["bash", "-c", maker]], b"", cwd)
    stdin = await asyncio.to_thread(shell, stages[:at], b"", cwd) if at else b""
    out, response = await curl(client, stages[at], stdin, cwd)
    if at + 1 < len(stages):
        out = await asyncio.to_thread(shell, stages[at + 1 :], out, cwd)
    return Replayed(out.decode("utf-8", "backslashreplace").rstrip("\n"), response)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000"
        ) as client:
            # What curl sends besides the request's own headers: Host, User-Agent, Accept.
            for name in ("accept-encoding", "connection"):
                del client.headers[name]
            client.headers["user-agent"] = "curl/8.5.0"
            yield client


def factory_of(command: Command) -> tuple[int, Factory]:
    """The index of the command's section in APPS[page], and its app factory."""
    text = (ROOT / command.page).read_text()
    chosen: tuple[int, Factory] | None = None
    for index, (heading, factory) in enumerate(APPS[command.page]):
        start = 0 if heading is None else text.index(f"\n{heading}\n")
        if start <= command.offset:
            chosen = (index, factory)
    assert chosen is not None, f"{command.label}: no app in APPS before it"
    return chosen


@cache
def replay(page: str) -> dict[Command, Replayed]:
    """Every replayed command of ``page``, in page order, each section against its own app."""

    async def main() -> dict[Command, Replayed]:
        results: dict[Command, Replayed] = {}
        mine = [c for c in REPLAYED if c.page == page]
        with tempfile.TemporaryDirectory() as tmp:
            sections: dict[int, list[Command]] = {}
            factories: dict[int, Factory] = {}
            for command in mine:
                index, factory = factory_of(command)
                sections.setdefault(index, []).append(command)
                factories[index] = factory
            for index, section in sections.items():
                cwd = Path(tmp) / str(index)
                cwd.mkdir()
                async with serving(factories[index](cwd)) as client:
                    for command in section:
                        results[command] = await run(client, command, cwd)
        return results

    return asyncio.run(main())


# --- the tests ----------------------------------------------------------------------------------


def test_every_curl_is_accounted_for() -> None:
    pages_with_curl = {c.page for c in ALL}
    assert {"README.md", "docs/quickstart.md", "docs/how-to/deploy.md"} <= pages_with_curl
    # Each page with a replayed curl has its app; each command listed as not replayed is on its
    # page (a stale entry fails too), and nothing else is left out.
    assert {c.page for c in REPLAYED} <= set(APPS), "add the page's app to APPS"
    for page, (reason, texts) in NOT_REPLAYED.items():
        assert reason
        assert sorted(c.text for c in ALL if c.page == page) == sorted(texts), page
    transcripts = [c for c in REPLAYED if c.shown is not None]
    assert len(transcripts) >= 20


@pytest.mark.parametrize("command", REPLAYED, ids=[c.label[:90] for c in REPLAYED])
def test_the_page_shows_what_the_app_answers(command: Command) -> None:
    replayed = replay(command.page)[command]
    if command.shown is not None:
        assert replayed.output == command.shown, command.label
        return
    # Shown without output: it works, and does what its comment says.
    assert 200 <= replayed.response.status_code < 300, command.label
    if command.comment is not None:
        assert command.comment in CLAIMS, f"{command.label}: add the comment's claim to CLAIMS"
        assert CLAIMS[command.comment](replayed.response), command.label


def test_the_replay_reads_what_curl_sends() -> None:
    # The emulation itself, on the options the pages use.
    request = parse_curl(
        shlex.split("curl -si -X PUT -H 'If-Match: \"x\"' -d '{\"a\":\n1}' http://h/p"),
        b"",
        Path(),
    )
    assert (request.method, request.url, request.include) == ("PUT", "http://h/p", True)
    assert request.headers == {
        "accept": "*/*",
        "if-match": '"x"',
        "content-type": "application/x-www-form-urlencoded",
    }
    assert request.data == b'{"a":1}'
    with pytest.raises(NotEmulatedError):
        parse_curl(["curl", "-w", "%{http_code}", "http://h/"], b"", Path())
    assert pipeline("python -c 'print(1 | 2)' | curl -s http://h/ | head -1") == [
        ["python", "-c", "print(1 | 2)"],
        ["curl", "-s", "http://h/"],
        ["head", "-1"],
    ]


def test_a_curl_is_found_in_any_block() -> None:
    page = """
```console
$ curl -si http://h/a \\
    -H 'Accept: */*'
HTTP/1.1 200 OK

body
$ python -c 'print(1)'
1
```

- a list item:

    ```bash
    for i in $(seq 3); do curl -s http://h/b; done  # three times
    echo curl  # not a curl command: no URL follows
    # run curl http://h/c by hand
    ```
"""
    found = commands(page, "docs/new.md")
    assert [(c.text, c.comment, c.shown) for c in found] == [
        ("curl -si http://h/a -H 'Accept: */*'", None, "HTTP/1.1 200 OK\n\nbody"),
        ("for i in $(seq 3); do curl -s http://h/b; done", "three times", None),
    ]
