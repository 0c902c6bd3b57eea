"""``python -m benchmarks.plots RESULTS.json OUTDIR``: SVG charts and markdown tables for the docs.

Reads what ``python -m benchmarks --json RESULTS.json`` wrote and writes, into ``OUTDIR``, one
hand-written SVG per workload group (a horizontal bar per row: its throughput ratio against the
workload's baseline, with a 1.0 reference line) and ``tables.md`` (every row, grouped the same
way). No plotting dependency: the SVG is a few rects and texts, on its own light background so it
reads the same in light and dark themes.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

# (file stem, title, workload name prefixes), in page order; the first match wins.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("get-json", "GET, JSON", ("GET json",)),
    ("get-msgpack", "GET, MessagePack", ("GET msgpack",)),
    ("post", "POST", ("POST json", "POST msgpack")),
    ("compression", "Compression", ("enc ",)),
    ("cache", "Response cache", ("cache hit", "fragments", "POST same body")),
    ("views", "Views and field selections", ("views",)),
    ("telemetry", "Telemetry", ("tel ",)),
)
OTHER = ("other", "Other", ())

WIDTH = 760
LABEL_W = 190  # contender labels, right-aligned against the bars
BAR_X = LABEL_W + 55  # room for a ratio text left of the slowest bar
BAR_W = WIDTH - BAR_X - 55  # and right of the fastest
ROW_H = 20
HEAD_H = 24
TOP = 46
TEXT = "#555"
FASTER, SLOWER, BASELINE, GRID = "#4e79a7", "#e08a3c", "#a0a0a0", "#d0d0d0"
TICKS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 25, 50, 100, 250, 1000, 2500, 10000)
TICK_GAP = 34  # pixels: a tick closer than this to the last one drawn (or to 1x) is left out

Row = dict[str, Any]


def group_of(workload: str) -> tuple[str, str, tuple[str, ...]]:
    for group in GROUPS:
        if workload.startswith(group[2]):
            return group
    return OTHER


Block = tuple[str, str | None, list[Row]]  # workload name, baseline label, its rows


def grouped(results: dict[str, Any]) -> list[tuple[str, str, list[Block]]]:
    """``[(stem, title, [(workload, baseline, rows), ...]), ...]``, empty groups left out."""
    rows: dict[str, list[Row]] = {}
    for row in results["rows"]:
        rows.setdefault(row["workload"], []).append(row)
    out = []
    for stem, title, _ in (*GROUPS, OTHER):
        workloads = [
            (w["name"], w["baseline"], rows.get(w["name"], []))
            for w in results["workloads"]
            if group_of(w["name"])[0] == stem
        ]
        if workloads:
            out.append((stem, title, workloads))
    return out


def svg_chart(title: str, workloads: Sequence[Block]) -> str:
    """Bars from the 1.0 line to each row's ``vs_baseline``, log scale, one block per workload."""
    ratios = [r["vs_baseline"] for _, _, rows in workloads for r in rows if r["vs_baseline"]]
    lo, hi = math.log(min([0.5, *ratios])), math.log(max([2.0, *ratios]))

    def x(ratio: float) -> float:
        return BAR_X + (math.log(ratio) - lo) / (hi - lo) * BAR_W

    height = TOP + sum(HEAD_H + ROW_H * len(rows) for _, _, rows in workloads) + 30
    bottom = height - 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="system-ui, sans-serif" font-size="12" '
        f'role="img" aria-label="{escape(title)}">',
        f'<rect width="{WIDTH}" height="{height}" rx="6" fill="#fafafa"/>',
        f'<text x="12" y="24" font-size="15" font-weight="bold" fill="{TEXT}">'
        f"{escape(title)}</text>",
        f'<text x="{WIDTH - 12}" y="24" text-anchor="end" fill="{TEXT}">'
        "throughput vs the workload's baseline, log scale; &gt;1 is faster</text>",
    ]
    drawn: list[float] = []
    for tick in sorted(TICKS, key=lambda t: abs(math.log(t))):  # 1x first, then outwards
        if lo <= math.log(tick) <= hi and all(abs(x(tick) - d) >= TICK_GAP for d in drawn):
            drawn.append(x(tick))
            dash = "" if tick == 1 else ' stroke-dasharray="2 4"'
            parts.append(
                f'<line x1="{x(tick):.1f}" y1="{TOP - 4}" x2="{x(tick):.1f}" y2="{bottom}" '
                f'stroke="{GRID if tick != 1 else TEXT}"{dash}/>'
            )
            parts.append(
                f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" '
                f'fill="{TEXT}">{tick:g}x</text>'
            )
    y = TOP
    for workload, baseline, rows in workloads:
        parts.append(
            f'<text x="12" y="{y + 16}" font-weight="bold" fill="{TEXT}">{escape(workload)}</text>'
        )
        y += HEAD_H
        for row in rows:
            label = escape(row["label"])
            parts.append(
                f'<text x="{LABEL_W}" y="{y + 14}" text-anchor="end" fill="{TEXT}">{label}</text>'
            )
            ratio = row["vs_baseline"]
            if row["error"] or ratio is None:
                text = "FAILED" if row["error"] else "n/a"
                parts.append(f'<text x="{x(1):.1f}" y="{y + 14}" fill="{TEXT}">{text}</text>')
                y += ROW_H
                continue
            left, right = sorted((x(1), x(ratio)))
            right = max(right, left + 2)  # the baseline's own row: a tick on the 1.0 line
            color = BASELINE if row["label"] == baseline else FASTER if ratio >= 1 else SLOWER
            parts.append(
                f'<rect class="bar" x="{left:.1f}" y="{y + 3}" width="{right - left:.1f}" '
                f'height="{ROW_H - 6}" fill="{color}"><title>{escape(workload)}, {label}: '
                f"{ratio:.2f}x</title></rect>"
            )
            tx, anchor = (right + 5, "start") if ratio >= 1 else (left - 5, "end")
            parts.append(
                f'<text class="ratio" x="{tx:.1f}" y="{y + 14}" text-anchor="{anchor}" '
                f'fill="{TEXT}">{ratio:.2f}x</text>'
            )
            y += ROW_H
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return "" if value is None else format(value, fmt) + suffix


def markdown_tables(results: dict[str, Any]) -> str:
    """One table per group: workload, contender, median, spread, ratios."""
    lines: list[str] = []
    for _, title, workloads in grouped(results):
        lines += [
            f"### {title}",
            "",
            "| workload | contender | µs/request | ± | vs baseline | vs peer |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for workload, baseline, rows in workloads:
            peer = next(w["peer"] for w in results["workloads"] if w["name"] == workload)
            peer = peer if peer in {r["label"] for r in rows} else None  # a skipped peer
            name = workload + "".join(
                f"<br>{what}: {who}"
                for what, who in (("baseline", baseline), ("peer", peer))
                if who
            )
            for row in rows:
                if row["error"]:
                    cells = ["FAILED", "", "", ""]
                else:
                    cells = [
                        _num(row["median_us"], ",.1f"),
                        _num(row["spread"], ".0%"),
                        _num(row["vs_baseline"], ".2f", "x"),
                        _num(row["vs_peer"], ".2f", "x"),
                    ]
                lines.append(f"| {name} | {row['label']} | " + " | ".join(cells) + " |")
                name = ""
        lines.append("")
    return "\n".join(lines)


def write_all(results: dict[str, Any], outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, title, workloads in grouped(results):
        path = outdir / f"{stem}.svg"
        path.write_text(svg_chart(title, workloads), encoding="utf-8")
        written.append(path)
    tables = outdir / "tables.md"
    tables.write_text(markdown_tables(results), encoding="utf-8")
    return [*written, tables]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m benchmarks.plots RESULTS.json OUTDIR", file=sys.stderr)
        return 2
    results = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    for path in write_all(results, Path(args[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
