"""The deployment files (Dockerfile, compose.yaml, deploy/) checked offline against the example app.

No container runs here: these tests read the files and hold them to what example_app/, uvicorn
and the OpenTelemetry SDK actually do (the probe path, the variables read, the ports).
"""

import inspect
import json
import re
import shlex
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn.config
import yaml
from fastapi import FastAPI
from packaging.requirements import Requirement

from example_app.database import DB_PATH_ENV
from example_app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SOURCES = "\n".join(p.read_text() for p in sorted((ROOT / "example_app").rglob("*.py")))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction: continuations joined, comments out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue  # comments, and parser directives, also inside a continuation
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, rest = pending.strip().partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each the list of its instructions from its FROM on."""
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(ROOT / "Dockerfile"):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def runtime(keyword: str) -> list[str]:
    return [args for name, args in stages()[-1] if name == keyword]


def exec_form(args: str) -> list[str]:
    """The argv of an exec-form CMD / HEALTHCHECK CMD (a JSON array)."""
    value = json.loads(args[args.index("[") :])
    assert isinstance(value, list)
    return [str(item) for item in value]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def healthcheck_url() -> str:
    (args,) = runtime("HEALTHCHECK")
    (url,) = re.findall(r"https?://[^'\"\s]+", " ".join(exec_form(args)))
    return url


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_two_stages_the_runtime_installs_only_the_built_wheels() -> None:
    build, run = stages()
    assert build[0][1].endswith(" AS build")
    assert run[0][1].endswith(" AS runtime")
    (wheel,) = [args for name, args in build if name == "RUN" and "pip wheel" in args]
    assert '".[all,example]"' in wheel
    (install,) = runtime("RUN")[:1]
    assert "--mount=type=bind,from=build" in install
    assert "pip install --no-index --find-links=/wheels" in install
    assert '"fastapi-serdes[all,example]"' in install
    # Nothing of the build stage is copied into the image: the wheels are only mounted.
    assert not [args for name, args in run if name == "COPY" and "--from" in args]


def test_the_otlp_exporter_compose_asks_for_is_installed() -> None:
    # compose.yaml runs the example with EXAMPLE_OTEL=otlp, which imports this exporter: the
    # `example` extra, which both stages install, brings it (else the app fails to start).
    assert compose()["services"]["app"]["environment"]["EXAMPLE_OTEL"] == "otlp"
    assert "opentelemetry.exporter.otlp.proto.http" in EXAMPLE_SOURCES
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    example = [Requirement(r) for r in extras["optional-dependencies"]["example"]]
    assert "opentelemetry-exporter-otlp-proto-http" in {r.name for r in example}
    build, _ = stages()
    (wheel,) = [args for name, args in build if name == "RUN" and "pip wheel" in args]
    assert '".[all,example]"' in wheel
    assert '"fastapi-serdes[all,example]"' in runtime("RUN")[0]
    # Nothing is added by hand beside the extras: one list of what the example needs.
    assert "opentelemetry-exporter" not in wheel + runtime("RUN")[0]


def test_the_runtime_runs_as_a_non_root_user() -> None:
    (user,) = runtime("USER")
    assert user not in ("root", "0", "0:0")
    uid = user.split(":")[0]
    assert any(f"--uid {uid}" in args for args in runtime("RUN"))


def test_uvicorn_serves_the_example_on_the_port_the_probe_and_balancer_use() -> None:
    (cmd,) = runtime("CMD")
    argv = exec_form(cmd)
    assert argv[:2] == ["uvicorn", "example_app.main:app"]
    port = argv[argv.index("--port") + 1]
    assert "--proxy-headers" in argv
    assert healthcheck_url().startswith(f"http://127.0.0.1:{port}/")
    assert runtime("EXPOSE") == [port]
    assert compose()["services"]["app"]["expose"] == [port]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(rf"server app:{port}\b", nginx)
    # The balancer keeps idle connections for less time than uvicorn does (see the Dockerfile).
    keep_alive = int(argv[argv.index("--timeout-keep-alive") + 1])
    (idle,) = re.findall(r"keepalive_timeout (\d+)s;", nginx)
    assert int(idle) < keep_alive


def test_uvicorn_reads_the_variables_the_image_sets() -> None:
    env = " ".join(runtime("ENV"))
    source = inspect.getsource(uvicorn.config)
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"):
        assert f"{name}=" in env
        assert f'"{name}"' in source
    assert f"{DB_PATH_ENV}=/data/" in env


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    kept = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = [
        source.rstrip("/")
        for build_stage in stages()
        for name, args in build_stage
        if name == "COPY" and "--from" not in args
        for source in shlex.split(args)[:-1]
        if not source.startswith("--")
    ]
    assert copied
    assert set(copied) <= kept
    assert all((ROOT / source).exists() for source in copied)


# ---------------------------------------------------------------------------------------------
# The probe against the example app itself


@pytest.fixture
async def example(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(str(tmp_path / "example.sqlite3"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.mark.anyio
async def test_the_healthcheck_path_is_the_example_apps_readiness_probe(example: FastAPI) -> None:
    path = httpx.URL(healthcheck_url()).path
    assert path == "/health/ready"
    transport = httpx.ASGITransport(app=example)
    # urllib (the HEALTHCHECK's client) sends no Accept header.
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path, headers={"accept": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.anyio
async def test_the_healthcheck_fails_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # A database file in a directory that does not exist: SELECT 1 cannot run, the probe is a 503
    # (urllib raises on it, so the HEALTHCHECK exits non-zero and the balancer stops routing).
    app = create_app(str(tmp_path / "missing" / "example.sqlite3"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(httpx.URL(healthcheck_url()).path)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


# ---------------------------------------------------------------------------------------------
# compose.yaml and the collector


def test_compose_runs_two_replicas_behind_the_balancer_with_redis_and_the_collector() -> None:
    services = compose()["services"]
    assert set(services) == {"app", "lb", "redis", "otel-collector"}
    app = services["app"]
    assert app["deploy"]["replicas"] == 2
    assert "ports" not in app  # only the balancer is published
    assert services["lb"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "./deploy/nginx.conf:" in services["lb"]["volumes"][0]


def test_the_app_is_wired_with_variables_the_example_reads() -> None:
    env = compose()["services"]["app"]["environment"]
    # Read by example_app/ itself (DB_PATH_ENV is the name example_app.database reads)...
    for name in ("REDIS_URL", "EXAMPLE_OTEL", "EXAMPLE_OTEL_INTERVAL_MS"):
        assert f'os.environ.get("{name}"' in EXAMPLE_SOURCES
    assert env["REDIS_URL"].startswith("redis://redis:")
    # ... by the OpenTelemetry SDK (the exporters and Resource.create), and by uvicorn.
    assert set(env) == {
        "REDIS_URL",
        "EXAMPLE_OTEL",
        "EXAMPLE_OTEL_INTERVAL_MS",
        DB_PATH_ENV,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_RESOURCE_ATTRIBUTES",
        "WEB_CONCURRENCY",
    }
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_the_collector_receives_otlp_http_and_batches_every_pipeline() -> None:
    services = compose()["services"]
    (mount,) = services["otel-collector"]["volumes"]
    host, container = mount.split(":")[:2]
    assert services["otel-collector"]["command"] == [f"--config={container}"]
    config = yaml.safe_load((ROOT / host).read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter"
        assert "batch" in pipeline["processors"]
        assert set(pipeline["processors"]) <= set(config["processors"])
        assert set(pipeline["exporters"]) <= set(config["exporters"])


def test_the_balancer_sets_the_client_address_itself() -> None:
    # uvicorn trusts every peer here (FORWARDED_ALLOW_IPS="*") and takes the first address of
    # X-Forwarded-For: appending to the client's header would let the client choose it.
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "$proxy_add_x_forwarded_for" not in nginx
    assert 'FORWARDED_ALLOW_IPS="*"' in " ".join(runtime("ENV"))


def test_redis_accepts_the_app_from_another_container_and_is_only_a_cache() -> None:
    command = compose()["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--protected-mode"] == "no"
    assert options["--save"] == ""
    assert options["--appendonly"] == "no"
    assert options["--maxmemory-policy"] == "allkeys-lru"
    assert "ports" not in compose()["services"]["redis"]
