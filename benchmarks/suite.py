"""Put the pieces together: build payloads and contender apps, pick workloads, run them."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp

from benchmarks.apps import Contender, contenders
from benchmarks.harness import Row, Settings, Workload, run_workloads
from benchmarks.payloads import Payloads, build_payloads, encoded_sizes
from benchmarks.workloads import SIZES, build_workloads


@dataclass
class SuiteResult:
    rows: list[Row]
    workloads: list[Workload]
    contenders: dict[str, Contender]  # the ones that built
    skipped: dict[str, str] = field(default_factory=dict)  # not importable: a note, not a failure
    broken: dict[str, str] = field(default_factory=dict)  # importable but failed to build
    sizes: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # payload -> (JSON, msgpack) bytes

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.error]

    @property
    def ok(self) -> bool:
        return not self.broken and not self.failed


def build_apps(
    wanted: Sequence[Contender], payloads: Payloads, log: Callable[[str], None]
) -> tuple[dict[str, ASGIApp], dict[str, str], dict[str, str]]:
    """Build every wanted contender: ``(apps, skipped, broken)``.

    A contender whose required imports fail is skipped with a note (an optional peer, or the
    library while it is being written); one that imports but raises while building is broken.
    """
    apps: dict[str, ASGIApp] = {}
    skipped: dict[str, str] = {}
    broken: dict[str, str] = {}
    for contender in wanted:
        missing = contender.missing()
        if missing:
            skipped[contender.name] = missing
            log(f"skipping {contender.name}: {missing}")
            continue
        try:
            apps[contender.name] = contender.build(payloads)
        except Exception as exc:
            broken[contender.name] = f"{type(exc).__name__}: {exc}"
            log(f"FAILED to build {contender.name}:\n{traceback.format_exc()}")
    return apps, skipped, broken


def run_suite(
    settings: Settings,
    *,
    only: str | None = None,
    contender_names: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> SuiteResult:
    """Run every workload whose name contains ``only`` (case-insensitive) with the chosen contenders."""
    known = contenders()
    if contender_names:
        unknown = sorted(set(contender_names) - known.keys())
        if unknown:
            raise ValueError(f"unknown contender(s) {unknown}; known: {sorted(known)}")
    wanted = [c for c in known.values() if not contender_names or c.name in contender_names]
    payloads = build_payloads()
    apps, skipped, broken = build_apps(wanted, payloads, log)
    available = {name: known[name] for name in apps}
    workloads = [
        w
        for w in build_workloads(available, payloads)
        if (only is None or only.lower() in w.name.lower()) and w.entries
    ]
    if not workloads:
        raise ValueError(f"no workload matches {only!r} with contenders {sorted(available)}")
    rows = asyncio.run(run_workloads(apps, workloads, settings, log))
    sizes = {size: encoded_sizes(payloads.by_size(size)) for size in SIZES}
    return SuiteResult(rows, workloads, available, skipped, broken, sizes)
