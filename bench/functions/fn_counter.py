"""Counts the messages a function process handled and prints ``bench-count <ids> <hits>``.

``ids`` is how many distinct message ids it saw, ``hits`` how many messages (a redelivery counts
as a hit, not as a new id), so the bench counts by distinct message id and sees duplicates.
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
_ids: set[str] = set()
_hits = 0
_reporter: threading.Thread | None = None


def hit(message_id: str) -> None:
    global _hits, _reporter
    with _lock:
        _hits += 1
        _ids.add(message_id)
        if _reporter is None:
            _reporter = threading.Thread(target=_report, name="bench-count", daemon=True)
            _reporter.start()


def _report() -> None:
    reported = (0, 0)
    while True:
        time.sleep(REPORT_EVERY)
        now = (len(_ids), _hits)
        if now != reported:
            reported = now
            # One write per line: print() writes the newline separately, and the toolkit's log
            # lines from other threads would land in between.
            sys.stdout.write(f"bench-count {now[0]} {now[1]}\n")
            sys.stdout.flush()
