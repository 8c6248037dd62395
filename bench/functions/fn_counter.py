"""Counts the messages a function process handled and prints ``bench-count <n>`` as it grows.

The bench reads these lines from the function's stdout, so it needs no endpoint of its own.
The reporter thread starts on the first hit, in the serving process: functions-framework
imports the function before gunicorn forks its worker, and threads do not survive a fork.
"""

from __future__ import annotations

import sys
import threading
import time

REPORT_EVERY = 0.02  # seconds: 20 ms, the resolution of the bench's clock on this path

_lock = threading.Lock()
_count = 0
_reporter: threading.Thread | None = None


def hit() -> None:
    global _count, _reporter
    with _lock:
        _count += 1
        if _reporter is None:
            _reporter = threading.Thread(target=_report, name="bench-count", daemon=True)
            _reporter.start()


def _report() -> None:
    reported = 0
    while True:
        time.sleep(REPORT_EVERY)
        if _count != reported:
            reported = _count
            # One write per line: print() writes the newline separately, and the toolkit's log
            # lines from other threads would land in between.
            sys.stdout.write(f"bench-count {reported}\n")
            sys.stdout.flush()
