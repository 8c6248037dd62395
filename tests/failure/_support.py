"""What the failure scenarios share: reading the functions' output, and polling with a deadline."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any


class FunctionOutput:
    """What the function processes printed: their JSON log lines, the runtime's line per
    answered message among them (``outcomes``), and restarts.

    Pass it as ``LocalSystem(on_line=...)``.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []  # every JSON log line
        self.outcomes: list[dict[str, Any]] = []
        self.restarts = 0
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def __call__(self, name: str, line: str) -> None:
        with self._lock:
            self._last = time.monotonic()
            if line.startswith("exited with code"):  # the supervisor's note before a restart
                self.restarts += 1
                return
            try:
                entry = json.loads(line)
            except ValueError:
                return
            if not isinstance(entry, dict):
                return
            self.entries.append(entry)
            if "outcome" in entry and "status" in entry:
                self.outcomes.append(entry)

    def quiet_for(self, seconds: float) -> bool:
        """Whether no function printed anything in the last ``seconds``."""
        with self._lock:
            return time.monotonic() - self._last >= seconds

    def statuses(self) -> Counter[str]:
        with self._lock:
            return Counter(str(e["status"]) for e in self.outcomes)

    def max_attempt(self) -> int:
        with self._lock:
            return max((int(str(e["attempt"])) for e in self.outcomes if e["attempt"]), default=0)

    def last_time(self, status: str = "handled") -> float | None:
        """Epoch seconds of the last line with ``status``."""
        with self._lock:
            times = [str(e["time"]) for e in self.outcomes if e["status"] == status]
        return max((datetime.fromisoformat(t).timestamp() for t in times), default=None)


def poll(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Whether ``predicate`` became true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
