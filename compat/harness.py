"""Run FastAPI's own test suite in stock, middleware, route and both modes and compare.

Usage (from the repo root): ``.venv/bin/python -m compat [--modes stock,route] [-k EXPR]
[--tests tests/test_x.py] [--timeout SECONDS] [--workers N] [--fail-on-regression]``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from importlib import metadata, util
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from compat.patch import MODES

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SITE = HERE / "_site"
# Dev tooling in FastAPI's "tests" group that its tests do not need to import or run.
NOT_NEEDED = {
    "coverage", "pytest", "pytest-cov", "pytest-sugar", "pytest-codspeed", "mypy", "ty", "ruff",
    "python-slugify",
}  # fmt: skip
# Runtime extras of FastAPI (its "standard"/"all" extras) that the tests and docs_src exercise.
EXTRAS = ["python-multipart", "email-validator", "pydantic-settings", "ujson"]
SELF_TEST = """
import json
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
app = FastAPI()
app.get("/")(lambda: {"ok": True})
own = APIRouter(route_class=APIRoute)
print(json.dumps({"route": type(app.routes[-1]).__name__, "explicit": own.route_class.__name__,
    "middleware": [m.cls.__name__ for m in app.user_middleware],
    "status": TestClient(app).get("/").status_code}))
"""


def log(message: str) -> None:
    print(f"[compat] {message}", flush=True)


def fetch_suite(version: str) -> Path:
    """Download FastAPI's sdist once and unpack it (without its ``fastapi`` package)."""
    root = CACHE / f"fastapi-{version}"
    if (root / ".unpacked").exists():
        return root
    sdist = CACHE / f"fastapi-{version}.tar.gz"
    if not sdist.exists():
        log(f"downloading the fastapi=={version} sdist")
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*pip, f"fastapi=={version}", "-d", str(CACHE)], check=True)
    with tarfile.open(sdist) as archive:
        # The tests must import the installed fastapi, not the sdist's copy.
        members = [m for m in archive.getmembers() if m.name.split("/")[1:2] != ["fastapi"]]
        archive.extractall(CACHE, members=members, filter="data")
    (root / ".unpacked").touch()
    return root


def test_requirements(root: Path) -> list[Requirement]:
    groups = tomllib.loads((root / "pyproject.toml").read_text())["dependency-groups"]

    def expand(name: str) -> list[str]:
        found: list[str] = []
        for item in groups[name]:
            found += expand(item["include-group"]) if isinstance(item, dict) else [item]
        return found

    reqs = [Requirement(r) for r in [*expand("tests"), *EXTRAS]]
    return [r for r in reqs if r.name.lower() not in NOT_NEEDED]


def is_installed(req: Requirement) -> bool:
    """Whether ``req`` and the packages its extras add are installed (at whatever version)."""
    try:
        requires = [Requirement(r) for r in metadata.requires(req.name) or []]
    except metadata.PackageNotFoundError:
        return False
    return all(
        is_installed(Requirement(dep.name))
        for dep in requires
        for extra in req.extras
        if dep.marker and "extra" in str(dep.marker) and dep.marker.evaluate({"extra": extra})
    )


def ensure_requirements(root: Path) -> dict[str, list[str]]:
    """pip-install the missing test requirements, pinning every installed package as it is."""
    missing = [req for req in test_requirements(root) if not is_installed(req)]
    report = {"installed": [], "failed": [], "not_needed": sorted(NOT_NEEDED)}
    if not missing:
        return report
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    constraints = CACHE / "constraints.txt"
    constraints.write_text("".join(f"{line}\n" for line in frozen.splitlines() if "==" in line))
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints)]
    log(f"installing test requirements: {', '.join(str(r) for r in missing)}")
    if subprocess.run([*pip, *map(str, missing)]).returncode == 0:
        report["installed"] = [str(r) for r in missing]
        return report
    for req in missing:  # one at a time, to keep what can be had
        ok = subprocess.run([*pip, str(req)]).returncode == 0
        report["installed" if ok else "failed"].append(str(req))
    return report


def mode_env(mode: str, stats: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, SERDES_COMPAT_MODE=mode, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), *filter(None, [env.get("PYTHONPATH")])])
    if stats is not None:
        env["SERDES_COMPAT_STATS"] = str(stats)
    return env


def self_test(mode: str, root: Path) -> None:
    """A tiny app built in a fresh interpreter must show the mode's injection, and answer."""
    out = subprocess.run(
        [sys.executable, "-c", SELF_TEST], env=mode_env(mode), cwd=root,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    seen = json.loads(out)
    want = {
        "route": "SerdesRoute" if mode in ("route", "both") else "APIRoute",
        "explicit": "APIRoute",
        "middleware": ["SerdesMiddleware"] if mode in ("middleware", "both") else [],
        "status": 200,
    }
    if seen != want:
        raise SystemExit(f"[compat] self-test failed for mode {mode}: got {seen}, want {want}")


def check_injection(mode: str, stats: Path, strict: bool) -> dict[str, int]:
    """Sum the per-process counts; a non-stock mode that patched nothing is an error (``strict``,
    for the whole suite) or a warning (a subset may build no app)."""
    total: Counter[str] = Counter()
    for file in stats.glob("*.json"):
        total.update({k: v for k, v in json.loads(file.read_text()).items() if isinstance(v, int)})
    needed = {
        "route": ["routers_defaulted", "serdes_routes"],
        "middleware": ["apps_with_middleware", "serdes_middlewares"],
    }
    needed["both"] = needed["route"] + needed["middleware"]
    if missing := [key for key in needed[mode] if not total[key]]:
        problem = f"mode {mode} injected nothing ({missing} are 0): {dict(total)}"
        if strict:
            raise SystemExit(f"[compat] {problem}")
        log(f"warning: {problem}")
    return dict(total)


def parse_junit(path: Path) -> dict[str, dict[str, str]]:
    """Test id -> {outcome, message, text} from a pytest junit xml (xunit1, with file names)."""
    results: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).iter("testcase"):
        file, classname, name = (case.get(k, "") for k in ("file", "classname", "name"))
        module = file.removesuffix(".py").replace("/", ".")
        inner = classname.removeprefix(module).lstrip(".") if file else ""
        test_id = "::".join(filter(None, [file or classname, inner, name]))
        outcome, message, text = "passed", "", ""
        for tag in ("skipped", "error", "failure"):  # the last one found wins
            if (node := case.find(tag)) is not None:
                outcome = {"failure": "failed", "error": "errors"}.get(tag, tag)
                message, text = node.get("message", ""), node.text or ""
        results[test_id] = {"outcome": outcome, "message": message[:2000], "text": text[-4000:]}
    return results


def wait_or_stop(proc: subprocess.Popen[bytes], timeout: int) -> int | None:
    """Wait for pytest; past ``timeout`` interrupt it (it then writes its junit xml), then kill.

    Returns its exit code, or None when it had to be stopped.
    """
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # pytest's controller stops its workers and reports
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return None


def run_mode(mode: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    self_test(mode, root)
    junit, stats = CACHE / f"junit-{mode}.xml", CACHE / f"stats-{mode}"
    junit.unlink(missing_ok=True)
    stats.mkdir(exist_ok=True)
    for old in stats.glob("*.json"):
        old.unlink()
    cmd = [sys.executable, "-m", "pytest", *args.tests, "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "compat.inject", "--continue-on-collection-errors", "--tb=short", "-rN"]
    cmd += [f"--junitxml={junit}", "-o", "junit_family=xunit1", "-o", "verbosity_assertions=1"]
    cmd += ["-o", "truncation_limit_lines=40", "-o", "truncation_limit_chars=8000"]
    if args.workers and util.find_spec("xdist"):
        cmd += ["-n", str(args.workers)]
    if args.k:
        cmd += ["-k", args.k]
    log(f"mode {mode}: {' '.join(cmd[2:])}")
    started = time.monotonic()
    with open(CACHE / f"pytest-{mode}.log", "w") as output:
        proc = subprocess.Popen(
            cmd, cwd=root, env=mode_env(mode, stats), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        code = wait_or_stop(proc, args.timeout)
    seconds = round(time.monotonic() - started)
    if code is None:
        log(f"mode {mode}: timed out after {args.timeout}s and was stopped")
    if not junit.exists() and code is not None:
        tail = (CACHE / f"pytest-{mode}.log").read_text().splitlines()[-15:]
        raise SystemExit("\n".join([*tail, f"[compat] mode {mode}: pytest exited {code}, no xml"]))
    tests = parse_junit(junit) if junit.exists() else {}
    whole_suite = args.tests == ["tests"] and not args.k and code is not None
    patched = {} if mode == "stock" else check_injection(mode, stats, strict=whole_suite)
    log(f"mode {mode}: exit {code}, {len(tests)} tests in {seconds}s, patched {patched}")
    result = {"exit_code": code, "timed_out": code is None, "seconds": seconds}
    return {**result, "patched": patched, "tests": tests}


def signature(message: str) -> str:
    """A failure message reduced to what failures of one cause share."""
    line = next((s for s in message.strip().splitlines() if s.strip()), "(no message)")
    line = re.sub(r"0x[0-9a-f]+", "0x?", line)
    line = re.sub(r"'[^']{30,}'", "'…'", line)
    return line[:140]


def where(text: str) -> str:
    """The deepest frame in fastapi_serdes (else the last frame) of a short traceback."""
    frames = re.findall(r"^([^\s:][^:\n]*\.py):(\d+)", text, re.MULTILINE)
    ours = [f for f in frames if "fastapi_serdes/" in f[0]]
    file, line = (ours or frames or [("?", "?")])[-1]
    file = re.sub(r"^(\.\./)+", "", file).split("site-packages/")[-1]
    return f"{file}:{line}"


def causes(result: dict[str, str]) -> list[str]:
    """The differences the plugin listed for a failed ``==``, else the failure message."""
    found = re.findall(r"^E\s+~ (.+?)(?:  \(x\d+\))?$", result["text"], re.MULTILINE)
    message = result["message"]
    if message == "collection failure":  # the error is in the text
        message = next(iter(re.findall(r"^E\s+(.+)$", result["text"], re.MULTILINE)), message)
    return sorted(set(found)) or [f"{signature(message)}  (at {where(result['text'])})"]


def summarize(results: dict[str, Any], regressions: dict[str, list[str]]) -> str:
    out = []
    for mode, ids in regressions.items():
        groups: dict[str, list[str]] = defaultdict(list)
        for test_id in ids:
            result = outcome_of(results[mode]["tests"], test_id) or {"message": "", "text": ""}
            for cause in causes(result):
                groups[cause].append(test_id)
        merged: dict[tuple[str, ...], list[str]] = defaultdict(list)  # causes of the same tests
        for cause, members in groups.items():
            merged[tuple(members)].append(cause)
        ranked = sorted(merged.items(), key=lambda group: -len(group[0]))
        out.append(f"== {mode}: {len(ids)} regressions, {len(ranked)} groups (tests may share) ==")
        for n, (members, shared) in enumerate(ranked, 1):
            lines = shared[:3] + [f"and {len(shared) - 3} more causes"] * (len(shared) > 3)
            out.append(f"{n:3}. [{len(members)} tests] " + "\n       ".join(lines))
            out.extend(f"     - {test_id}" for test_id in members[:4])
        out.append("")
    return "\n".join(out)


def outcome_of(tests: dict[str, dict[str, str]], test_id: str) -> dict[str, str] | None:
    """A test's result; for a test not run, its file's collection error, if there is one."""
    if test_id in tests:
        return tests[test_id]
    file = test_id.split("::")[0]
    return tests.get(f"{file}::{file.removesuffix('.py').replace('/', '.')}")


def find_regressions(results: dict[str, Any]) -> dict[str, list[str]]:
    """Per non-stock mode, the tests that pass on stock but fail, error or cannot be collected."""
    stock = results.get("stock", {}).get("tests", {})
    passing = [test_id for test_id, r in stock.items() if r["outcome"] == "passed"]
    regressions = {}
    for mode, ran in results.items():
        if mode != "stock":
            outcomes = {t: outcome_of(ran["tests"], t) for t in passing}
            broken = {t for t, r in outcomes.items() if r and r["outcome"] in ("failed", "errors")}
            regressions[mode] = sorted(broken)
    return regressions


def print_report(
    results: dict[str, Any], regressions: dict[str, list[str]], ran: list[str]
) -> None:
    versions = {name: metadata.version(name) for name in ("fastapi", "fastapi-serdes")}
    print("\n" + ", ".join(f"{name} {version}" for name, version in versions.items()))
    print(f"{'mode':<12}{'passed':>8}{'failed':>8}{'errors':>8}{'skipped':>9}{'seconds':>9}")
    for mode in [m for m in MODES if m in results]:
        tally = Counter(t["outcome"] for t in results[mode]["tests"].values())
        row = "".join(f"{tally[k]:>8}" for k in ("passed", "failed", "errors"))
        note = "  (timed out)" if results[mode].get("timed_out") else ""
        note += "  (earlier run)" if mode not in ran else ""
        print(f"{mode:<12}{row}{tally['skipped']:>9}{results[mode]['seconds']:>9}{note}")
    if "stock" not in results and regressions:
        log("no stock results yet: run --modes stock to get regressions")
    for mode, ids in regressions.items():
        print(f"\n{mode}: {len(ids)} regressions (pass on stock, fail or error here)")
        for test_id in ids:
            print(f"  {test_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat", description=__doc__)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("-k", help="pytest -k expression, passed through")
    parser.add_argument("--tests", nargs="+", default=["tests"], help="paths in FastAPI's tree")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per mode")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (0: none)")
    parser.add_argument("--fail-on-regression", action="store_true")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if bad := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(bad)}; choose from {MODES}")
    CACHE.mkdir(exist_ok=True)
    lock = (CACHE / ".lock").open("w")  # held until exit: two runs would share the cache files
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        parser.error("another run of the harness is using compat/.cache")
    version = metadata.version("fastapi")
    root = fetch_suite(version)
    installs = ensure_requirements(root)
    if installs["failed"]:
        log(f"could not install (their tests fail or skip in every mode): {installs['failed']}")

    results_file = CACHE / "results.json"
    saved = json.loads(results_file.read_text()) if results_file.exists() else {}
    results = saved.get("modes", {}) if saved.get("fastapi") == version else {}
    for mode in modes:
        results[mode] = run_mode(mode, root, args)

    regressions = find_regressions(results)
    print_report(results, regressions, modes)
    summary = summarize(results, regressions)
    (CACHE / "summary.txt").write_text(summary)
    document = {"fastapi": version, "installs": installs, "modes": results}
    results_file.write_text(json.dumps({**document, "regressions": regressions}, indent=1))
    log(f"results: {results_file}; grouped failures: {CACHE / 'summary.txt'}")
    return 1 if args.fail_on_regression and any(regressions.values()) else 0
