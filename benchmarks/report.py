"""Render a suite result as a plain-text table (for people) or JSON (for plots)."""

from __future__ import annotations

import json
import math
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from benchmarks.harness import Row, Settings
from benchmarks.payloads import LARGE_COUNT, MEDIUM_COUNT
from benchmarks.suite import SuiteResult

_USERS = {"small": 1, "medium": MEDIUM_COUNT, "large": LARGE_COUNT}
_PACKAGES = (
    "fastapi",
    "starlette",
    "pydantic",
    "orjson",
    "msgpack",
    "ormsgpack",
    "msgpack-asgi",
    "starlette-compress",
    "brotli",
    "zstandard",
    "litestar",
    "msgspec",
    "fastapi-cache2",
)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def header(settings: Settings) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in _PACKAGES)
    batch = f"{settings.batch} requests" if settings.batch else f"~{settings.target_ms:g} ms"
    return (
        f"python {platform.python_version()} on {platform.machine()}; {versions}\n"
        f"{settings.rounds} interleaved rounds, batches of {batch}"
    )


def table(result: SuiteResult) -> str:
    lines = []
    sizes = "; ".join(
        f"{size} ({_USERS[size]} user{'s' * (_USERS[size] > 1)}) {j:,} B / {m:,} B"
        for size, (j, m) in result.sizes.items()
    )
    lines.append(f"payloads, JSON / MessagePack: {sizes}")
    lines.append("contenders:")
    for contender in result.contenders.values():
        lines.append(f"  {contender.name:<14} {contender.description}")
    for name, why in result.skipped.items():
        lines.append(f"  {name:<14} SKIPPED ({why})")
    for name, why in result.broken.items():
        lines.append(f"  {name:<14} FAILED TO BUILD ({why})")
    lines.append("")
    lines.append(
        "us/req: median time per request over rounds; +-: half the interquartile range.\n"
        "vs stock / vs peer: median over rounds of the paired throughput ratio against stock\n"
        "FastAPI answering JSON / against the named peer; >1 means faster."
    )
    lines.append("")
    columns = f"{'workload':<20} {'contender':<15} {'req B':>7} {'resp B':>9} {'batch':>6} {'us/req':>9} {'+-':>6} {'vs stock':>9} {'vs peer':>8}"
    lines.append(columns)
    lines.append("-" * len(columns))
    rows = {(r.workload, r.label): r for r in result.rows}
    for workload in result.workloads:
        title = workload.name
        for entry in workload.entries:
            lines.append(_row_line(title, rows[(workload.name, entry.label)]))
            title = ""
        if workload.peer:
            lines.append(f"{'':<20} (peer: {workload.peer})")
        lines.append("")
    return "\n".join(lines)


def _row_line(title: str, row: Row) -> str:
    if row.error:
        return f"{title:<20} {row.label:<15} FAILED: {row.error}"
    spread = "" if math.isnan(row.spread) else f"{row.spread:.0%}"
    request_bytes = f"{row.request_bytes:,}" if row.request_bytes else ""
    return (
        f"{title:<20} {row.label:<15} {request_bytes:>7} {row.response_bytes:>9,} {row.batch:>6} "
        f"{row.median_us:>9.1f} {spread:>6} {_ratio(row.vs_baseline):>9} {_ratio(row.vs_peer):>8}"
    )


def to_json(result: SuiteResult, settings: Settings) -> dict[str, Any]:
    """Everything needed to plot or compare runs later, raw samples included."""
    return {
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in _PACKAGES},
        "settings": {
            "rounds": settings.rounds,
            "target_ms": settings.target_ms,
            "batch": settings.batch,
        },
        "sizes": {size: {"json": j, "msgpack": m} for size, (j, m) in result.sizes.items()},
        "skipped": result.skipped,
        "broken": result.broken,
        "workloads": [
            {"name": w.name, "baseline": w.baseline, "peer": w.peer} for w in result.workloads
        ],
        "rows": [
            {
                "workload": r.workload,
                "contender": r.contender,
                "label": r.label,
                "error": r.error,
                "request_bytes": r.request_bytes,
                "response_bytes": r.response_bytes,
                "batch": r.batch,
                "median_us": None if math.isnan(r.median_us) else r.median_us,
                "spread": None if math.isnan(r.spread) else r.spread,
                "vs_baseline": r.vs_baseline,
                "vs_peer": r.vs_peer,
                "samples_ns": r.samples_ns,
            }
            for r in result.rows
        ],
    }


def dump_json(result: SuiteResult, settings: Settings, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_json(result, settings), f, indent=2)
        f.write("\n")
