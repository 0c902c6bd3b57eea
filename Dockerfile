# The example service (example_app/) in a production-shaped image:
#
#   docker build -t fastapi-serdes-example .
#   docker run --rm -p 8000:8000 fastapi-serdes-example
#
# or the whole deployment (2 replicas behind nginx, Redis, the OpenTelemetry Collector):
# `docker compose up --build`, see docs/how-to/deploy.md.
#
# Stage 1 builds wheels of the project with the extras the example uses, and of everything they
# need; stage 2 installs only those wheels (no compiler, no build tools, no pip cache) and runs
# as an unprivileged user. Needs BuildKit (the default builder since Docker 23) for the
# `RUN --mount` of stage 2.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# Only what building the package reads: a change to tests/ or docs/ does not rebuild the wheels.
COPY pyproject.toml README.md LICENSE ./
COPY fastapi_serdes/ fastapi_serdes/

# `all` is every optional backend (redis, brotli, zstd, otel); `example` the server, the SDK and
# its OTLP exporter (the example imports it with EXAMPLE_OTEL=otlp, as compose.yaml runs it).
# One resolve for all of them keeps their versions consistent.
RUN pip wheel --wheel-dir /wheels ".[all,example]"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The wheels are mounted for this one step, not copied: they never become a layer of the image.
# --no-index: nothing is fetched here, so the image holds exactly what stage 1 resolved (hence no
# version pins on this line: /wheels holds one version of each).
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "fastapi-serdes[all,example]"

# A system user without a login shell or a home; a numeric UID so that orchestrators can check
# `runAsNonRoot` without reading /etc/passwd. /data holds the SQLite file and is its only
# writable place (compose.yaml mounts a volume there, which takes this ownership).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app /data

WORKDIR /srv
# The example is an application, not part of the package: it ships as source.
COPY --chown=root:root example_app/ example_app/

# uvicorn reads the last two: worker processes per container, and which peers may set
# X-Forwarded-For / X-Forwarded-Proto. The app port is reached only through the load balancer's
# network (compose.yaml publishes nothing else); narrow this to the balancer's address where the
# network is shared.
ENV EXAMPLE_DB_PATH=/data/example.sqlite3 \
    WEB_CONCURRENCY=2 \
    FORWARDED_ALLOW_IPS="*"

USER 10001
EXPOSE 8000

# Ready = the process answers and its database runs a query (503 problem otherwise). urllib
# raises on any status >= 400, so the exit code is non-zero for 503 and for a refused connection.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2)"]

# --proxy-headers: the client address and scheme come from the balancer's X-Forwarded-* headers.
# --timeout-keep-alive above the balancer's idle upstream timeout (60 s in deploy/nginx.conf), so
# that the balancer, never uvicorn, closes an idle pooled connection: otherwise a request sent
# on a connection uvicorn is closing at that moment fails with a 502.
# --timeout-graceful-shutdown: on SIGTERM finish requests in flight for up to 20 s, then stop
# (within compose's and Kubernetes' default 10 s / 30 s grace periods: set stop_grace_period).
CMD ["uvicorn", "example_app.main:app", \
     "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", \
     "--timeout-keep-alive", "75", \
     "--timeout-graceful-shutdown", "20", \
     "--no-server-header"]
