"""Redis servers of our own, on free loopback ports, for the tests and the cluster benchmark: one
server (optionally TLS), a Sentinel, a 3-node cluster, and a TCP server that accepts and never
answers. A missing ``redis-server``, ``redis-cli`` or ``openssl`` raises ``ServerError`` saying
what to install (a failed test, never a skipped one)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import redis

#: How long a server of ours may take to start on a loaded machine (a bound, not a measure).
START_WITHIN = 20.0


class ServerError(RuntimeError):
    """A server the tests or the benchmarks need could not be started (nothing is skipped)."""


def _fail(message: str) -> NoReturn:
    raise ServerError(message)


def need(program: str) -> str:
    """The path of ``program``, or a failed test that says how to get it."""
    path = shutil.which(program)
    if path is None:
        _fail(
            f"{program} is not installed: these tests start their own Redis servers "
            "(Debian / Ubuntu: apt-get install redis-server openssl; macOS: brew install redis)"
        )
    return path


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(ready: Callable[[], bool], what: str) -> None:
    """Return once ``ready()`` is true; fail when it is not within ``START_WITHIN``."""
    deadline = time.monotonic() + START_WITHIN
    while True:
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            _fail(f"{what} did not start within {START_WITHIN:g} s")
        time.sleep(0.02)


def answers(port: int, **options: Any) -> bool:
    """Whether a Redis server answers PING on ``port`` (options go to the client)."""
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, **options) as client:
        return client.ping() is True


@contextmanager
def process(argv: list[str], ready: Callable[[], bool]) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running, once ``ready()``; stopped afterwards. Its output goes to a file (never
    a pipe that a chatty server could fill), shown if it exits before it is ready."""
    what = " ".join(argv)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def started() -> bool:
            if proc.poll() is not None:
                log.seek(0)
                output = log.read()[-2000:].decode(errors="replace")
                _fail(f"{what} exited with status {proc.returncode}: {output}")
            return ready()

        try:
            wait_until(started, what)
            yield proc
        finally:
            proc.send_signal(signal.SIGCONT)  # a test may have stopped it
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def redis_server(
    *args: str, ready: Callable[[], bool]
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A ``redis-server`` with ``args`` (no persistence, loopback only), once ``ready()``."""
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return process([need("redis-server"), *args, *base], ready)


def tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with ``openssl``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def sentinel_for(master_port: int, directory: Path, service: str) -> Iterator[int]:
    """A Sentinel watching the server on ``master_port`` as ``service``; yields its port."""
    (port,) = free_ports(1)
    config = directory / "sentinel.conf"  # Sentinel rewrites its configuration file
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {service} 60000\n"
    )
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:

        def ready() -> bool:
            return client.sentinel_get_master_addr_by_name(service) is not None

        with process([need("redis-server"), str(config), "--sentinel"], ready):
            yield port


@contextmanager
def cluster(directory: Path, nodes: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``nodes`` masters (no replicas) on loopback; yields their ports."""
    ports = free_ports(2 * nodes)
    data, bus = ports[:nodes], ports[nodes:]
    with ExitStack() as stack:
        for port, bus_port in zip(data, bus, strict=True):
            node = f"--port {port} --cluster-enabled yes --cluster-port {bus_port} --daemonize no"
            files = ["--cluster-config-file", str(directory / f"nodes-{port}.conf")]
            stack.enter_context(
                redis_server(
                    *node.split(), *files, "--dir", str(directory), ready=lambda p=port: answers(p)
                )
            )
        created = subprocess.run(
            [need("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{p}" for p in data),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, timeout=START_WITHIN,
        )  # fmt: skip
        if created.returncode != 0:
            _fail(f"redis-cli --cluster create failed: {created.stdout!r} {created.stderr!r}")

        def formed() -> bool:
            for port in data:
                info = redis.Redis(port=port, socket_timeout=1).cluster("info")
                if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != nodes:
                    return False
            return True

        wait_until(formed, "the Redis Cluster")
        yield data


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on loopback that accepts connections, reads, and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
