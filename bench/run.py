"""Throughput of pubsub-kit against the raw client library, measured in the same run.

    .venv/bin/python bench/run.py                      # everything, defaults
    .venv/bin/python bench/run.py --messages 5000 --rounds 5 --only publish consume

Uses the emulator named by PUBSUB_EMULATOR_HOST, else starts one with ./emulator.sh (and
stops it at the end only if it started it). Every run uses a fresh emulator project,
``bench-<timestamp>``, so nothing left over from other runs or tests is seen. Prints msg/s
(median over rounds) for each path and the ratio toolkit / raw; see bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# Run as a script from anywhere: the toolkit and the sibling modules must be importable.
for path in (str(REPO_ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import harness  # noqa: E402
from harness import BenchError, Results  # noqa: E402

from shared.errors import ConfigurationError  # noqa: E402
from shared.tools.cli import positive_seconds, whole_number  # noqa: E402

GROUPS = ("publish", "consume", "http", "catchup", "replay", "cold")

# --smoke: every group once, with so few messages that the whole run takes about a minute. CI
# runs it so that the bench cannot rot; its numbers mean nothing.
SMOKE = {
    "messages": 60,
    "http_messages": 30,
    "rounds": 1,
    "warmup": 10,
    "store_claims": 100,
    "backlog": 60,
    "dead_letters": 60,
    "cold_starts": 1,
}


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Messages per second through pubsub-kit and through the raw "
        "google-cloud-pubsub library, in the same run, on the Pub/Sub emulator; "
        "reports the ratio toolkit/raw (1.0 = as fast as raw).",
        epilog="The emulator comes from PUBSUB_EMULATOR_HOST, else ./emulator.sh start pubsub.",
    )
    parser.add_argument(
        "--messages",
        "-n",
        type=positive_int,
        default=3000,
        metavar="N",
        help="messages per measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--http-messages",
        type=positive_int,
        default=None,
        metavar="N",
        help="messages per HTTP-delivery measurement, which is the slowest "
        "path (default: --messages / 3)",
    )
    parser.add_argument(
        "--rounds",
        "-r",
        type=positive_int,
        default=3,
        help="measurements per path; the median is reported (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=positive_int,
        default=200,
        metavar="N",
        help="messages each path handles before measuring (default: %(default)s)",
    )
    parser.add_argument(
        "--store-claims",
        type=non_negative_int,
        default=5000,
        metavar="N",
        help="completed claims already in the store for the 'store in use' "
        "consume row; 0 skips that row (default: %(default)s)",
    )
    parser.add_argument(
        "--backlog",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="events waiting when delivery resumes, for the catch-up row (default: %(default)s)",
    )
    parser.add_argument(
        "--dead-letters",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="dead letters replayed by the replay row (default: %(default)s)",
    )
    parser.add_argument(
        "--cold-starts",
        type=positive_int,
        default=10,
        metavar="N",
        help="fresh processes per side for the cold-start rows; the median is reported "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every group once with a few dozen messages (about a minute): checks that the "
        "bench still runs, as CI does; the numbers mean nothing",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=GROUPS,
        default=list(GROUPS),
        metavar="GROUP",
        help=f"run only these groups: {', '.join(GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="longest wait for any one measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--private-emulator",
        action="store_true",
        help="start an emulator of our own through emulator.sh (own port and "
        "state folder), even if one is running or PUBSUB_EMULATOR_HOST is "
        "set, so other users of a shared emulator do not skew the numbers",
    )
    parser.add_argument(
        "--project",
        default=None,
        help="emulator project id (default: a fresh bench-<timestamp>-<pid>); the "
        "bench's own topics and subscriptions in it are deleted at the end",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    if args.http_messages is None:
        args.http_messages = max(1, args.messages // 3)
    return args


def print_table(results: Results) -> None:
    rows = []
    for row in results.rates:
        kit, raw = results.median(row, "toolkit"), results.median(row, "raw")
        if kit is not None and raw is not None:
            rows.append((row, f"{kit:,.0f}", f"{raw:,.0f}", f"{kit / raw:.2f}"))
    _print_rows(("path", "toolkit msg/s", "raw msg/s", "toolkit/raw"), rows)
    rows = []
    for row in results.times:
        kit, raw = results.median_time(row, "toolkit"), results.median_time(row, "raw")
        if kit is not None and raw is not None:
            rows.append((row, f"{kit:.3f}", f"{raw:.3f}", f"{kit / raw:.2f}x"))
    if rows:  # times: lower is better, so the ratio reads the other way round
        _print_rows(("time", "toolkit s", "raw s", "toolkit/raw"), rows)
    print()
    print("Medians over rounds (--rounds; --cold-starts for the times). Per round, toolkit | raw:")
    for row in results.rates:
        print(f"  {row}: {results.spread(row, 'toolkit')} | {results.spread(row, 'raw')}")
    for row in results.times:
        spreads = results.spread_time(row, "toolkit"), results.spread_time(row, "raw")
        print(f"  {row}: {spreads[0]} | {spreads[1]}")
    print()
    for row in [*results.rates, *results.times]:
        if row in results.notes:
            print(f"  {row}:\n      {results.notes[row]}")


def _print_rows(header: tuple[str, str, str, str], rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    # The first column (the path) is left-aligned, the numbers right-aligned.
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print()
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r))


def run_groups(args: argparse.Namespace, project: str, results: Results) -> None:
    if "publish" in args.only:
        import publish_bench

        print("publish ...", flush=True)
        publish_bench.run(project, args.messages, args.warmup, args.rounds, args.timeout, results)
    if "consume" in args.only:
        import consume_bench

        print("consume ...", flush=True)
        consume_bench.run(
            project,
            args.messages,
            args.warmup,
            args.rounds,
            args.timeout,
            results,
            store_claims=args.store_claims,
        )
    if "http" in args.only:
        import http_bench

        print("local HTTP delivery ...", flush=True)
        http_bench.run(project, args.http_messages, args.warmup, args.rounds, args.timeout, results)
    # The newer groups take the whole command line: each reads the options it needs.
    for group, title in (
        ("catchup", "catch-up after an outage"),
        ("replay", "dead-letter replay"),
        ("cold", "cold start"),
    ):
        if group in args.only:
            print(f"{title} ...", flush=True)
            importlib.import_module(f"{group}_bench").run(args, project, results)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The toolkit logs every handled message at INFO; keep the table readable (and the logging
    # cost out of the pull numbers, as for any service that logs at WARNING).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    project = args.project or f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    results = Results()
    started = time.monotonic()
    try:
        with harness.emulator(private=args.private_emulator) as host:
            os.environ["PUBSUB_PROJECT_ID"] = project
            print(
                f"emulator {host}, project {project}, {args.messages} messages x "
                f"{args.rounds} rounds (HTTP: {args.http_messages}), warm-up {args.warmup}, "
                f"{os.cpu_count()} CPUs, load average {_load()}",
                flush=True,
            )
            try:
                run_groups(args, project, results)
            finally:
                try:
                    harness.delete_bench_resources(project)
                except Exception as exc:  # noqa: BLE001 - never hide the run's own error
                    print(
                        f"bench/run.py: could not delete the bench's subscriptions in "
                        f"{project}: {exc!r}",
                        file=sys.stderr,
                    )
    except (BenchError, ConfigurationError) as exc:
        print(f"bench/run.py: {exc}", file=sys.stderr)
        return 1
    print_table(results)
    # Other processes on the machine (test suites, a busy shared emulator) move these numbers.
    print(f"\ntotal {time.monotonic() - started:.0f} s; load average at the end {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
