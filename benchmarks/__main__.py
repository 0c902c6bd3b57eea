"""``python -m benchmarks``: run the peers and fastapi-serdes in one process, print the table.

Exit status 1 when a contender fails its correctness check or fails to build (one that is merely
not importable is skipped with a note).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.apps import contenders
from benchmarks.harness import Settings
from benchmarks.report import dump_json, header, table
from benchmarks.suite import run_suite

DEFAULTS = Settings()
QUICK_ROUNDS = 3
QUICK_TARGET_MS = 5.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Interleaved in-process benchmarks: medians and ratios against stock FastAPI.",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULTS.rounds,
        help=f"interleaved rounds (default {DEFAULTS.rounds})",
    )
    parser.add_argument(
        "--only",
        metavar="SUBSTRING",
        help="run only workloads whose name contains this, e.g. 'msgpack large'",
    )
    parser.add_argument(
        "--contenders",
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(contenders())} (stock is the baseline)",
    )
    parser.add_argument(
        "--target-ms",
        type=float,
        default=DEFAULTS.target_ms,
        help=f"duration of one timed batch (default {DEFAULTS.target_ms:g})",
    )
    parser.add_argument("--batch", type=int, help="fixed requests per batch instead of calibrating")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ROUNDS} rounds of ~{QUICK_TARGET_MS:g} ms batches (a smoke run)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the results, raw samples included, as JSON"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        rounds=QUICK_ROUNDS if args.quick else args.rounds,
        target_ms=QUICK_TARGET_MS if args.quick else args.target_ms,
        batch=args.batch,
    )
    names = (
        [n.strip() for n in args.contenders.split(",") if n.strip()] if args.contenders else None
    )

    def log(message: str) -> None:
        if not args.quiet or message.startswith(("FAILED", "skipping")):
            print(message, file=sys.stderr, flush=True)

    print(header(settings), flush=True)
    try:
        result = run_suite(settings, only=args.only, contender_names=names, log=log)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if args.json:
        dump_json(result, settings, args.json)
    if not result.ok:
        print("FAILED: some contenders are broken, see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
