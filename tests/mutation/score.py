"""Print the mutation score per file from the last ``mutmut run`` (``make mutation`` calls it).

Reads the ``mutants/**/*.py.meta`` files mutmut 3 writes. A mutant counts as killed when a test
failed on it (or it timed out, which a test run would also catch); "survived" and "no tests"
are the ones left to look at (``mutmut show <name>``). Exits 1 when the overall score is below
``--fail-under`` (percent; default 0, i.e. report only).

    python tests/mutation/score.py [--mutants mutants] [--fail-under 90]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

KILLED = {1, 3, 36, 37, 24, -24, 152, 255}  # failed, pytest error, timeouts, type check
SURVIVED = {0}
NO_TESTS = {5, 33}


def score(meta: Path) -> tuple[int, int, list[str]]:
    """Killed, total, and the names of the mutants that were not killed, for one file."""
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    killed = sum(1 for code in codes.values() if code in KILLED)
    left = sorted(name for name, code in codes.items() if code not in KILLED)
    return killed, len(codes), left


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT")
    args = parser.parse_args(argv)
    metas = sorted(args.mutants.rglob("*.py.meta"))
    if not metas:
        print(f"no mutation results under {args.mutants}/: run `mutmut run` first")
        return 1
    all_killed = all_total = 0
    survivors: list[str] = []
    print(f"{'file':<36} {'killed':>7} {'total':>6} {'score':>7}")
    for meta in metas:
        killed, total, left = score(meta)
        if total == 0:
            continue
        name = str(meta.relative_to(args.mutants)).removesuffix(".meta")
        print(f"{name:<36} {killed:>7} {total:>6} {100 * killed / total:>6.1f}%")
        all_killed, all_total = all_killed + killed, all_total + total
        survivors += left
    overall = 100 * all_killed / all_total if all_total else 100.0
    print(f"{'overall':<36} {all_killed:>7} {all_total:>6} {overall:>6.1f}%")
    if survivors:
        print(f"\nnot killed ({len(survivors)}; `mutmut show <name>` shows the change):")
        for name in survivors:
            print(f"  {name}")
    return 1 if overall < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
