"""What the local runtime tells ``pubsub-kit status``: each function's outcomes so far and the
messages being delivered to it now.

:class:`LocalSystem` keeps one :class:`RuntimeStatus` per run and writes it to
``.pubsub-kit/status/<project>.json`` (one file per emulator project, so two runs never mix),
at most every :data:`WRITE_EVERY` seconds while something changed, and removes it when it
stops. Outcomes are counted from the functions' log lines: every message ends in one JSON line
with its ``consumer`` and ``status`` (:mod:`shared.runtime.observe`).

The file is read by another process at any moment, so it is replaced whole (written beside it,
then renamed), never written in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.delivery import RawMessage

WRITE_EVERY = 0.25  # seconds between two writes of the file, at most
RETRIED = ("retry", "busy", "dead_letter_failed")  # nacked: Pub/Sub delivers the message again
HANDLED = ("handled", "duplicate", "filtered")  # acked without dead-lettering


def status_file(state_dir: Path, project: str) -> Path:
    """Where the runtime serving ``project`` writes its status."""
    return state_dir / "status" / f"{project}.json"


class RuntimeStatus:
    """Counts outcomes per function and tracks deliveries in flight; written to ``path``."""

    def __init__(self, path: Path, project: str) -> None:
        self.path = path
        self.project = project
        self._lock = threading.Lock()
        self._outcomes: dict[str, dict[str, int]] = {}
        self._in_flight: dict[str, dict[int, datetime | None]] = {}  # function -> publish times
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None

    def start(self, functions: Iterable[str]) -> None:
        """Zero every function's counts, write the file, and keep it current until :meth:`stop`."""
        with self._lock:
            self._outcomes = {name: {} for name in functions}
            self._in_flight = {name: {} for name in self._outcomes}
        self._stopping.clear()
        self._write()
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._keep_writing, name="pubsub-kit-status", daemon=True
            )
            self._writer.start()

    def stop(self) -> None:
        """Stop writing and remove the file: nothing is running to report on any more."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
            self._writer = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    def observing(self, on_line: Callable[[str, str], None]) -> Callable[[str, str], None]:
        """``on_line``, counting each outcome line on its way through."""

        def observe(name: str, line: str) -> None:
            self.observe(line)
            on_line(name, line)

        return observe

    def observe(self, line: str) -> None:
        """Count ``line`` if it is a message's last line (JSON with ``consumer`` and ``status``)."""
        if not line.startswith("{") or '"status"' not in line:
            return
        try:
            entry = json.loads(line)
        except ValueError:
            return
        consumer, status = entry.get("consumer"), entry.get("status")
        if not isinstance(consumer, str) or not isinstance(status, str):
            return
        with self._lock:
            counts = self._outcomes.setdefault(consumer, {})
            counts[status] = counts.get(status, 0) + 1
        self._dirty.set()

    @contextlib.contextmanager
    def delivering(self, function: str, raw: RawMessage) -> Iterator[None]:
        """Count ``raw`` as in delivery to ``function`` for the block."""
        key = id(raw)
        with self._lock:
            self._in_flight.setdefault(function, {})[key] = raw.publish_time
        self._dirty.set()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.get(function, {}).pop(key, None)
            self._dirty.set()

    def snapshot(self) -> dict[str, Any]:
        """What the file holds: see :class:`FunctionStatus` for each function's part."""
        with self._lock:
            functions = {}
            for name in sorted(set(self._outcomes) | set(self._in_flight)):
                times = [t for t in self._in_flight.get(name, {}).values() if t is not None]
                oldest = min(times) if times else None
                functions[name] = {
                    "outcomes": dict(sorted(self._outcomes.get(name, {}).items())),
                    "in_delivery": len(self._in_flight.get(name, {})),
                    "oldest_in_delivery": oldest.isoformat() if oldest else None,
                }
        return {
            "project": self.project,
            "pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(),
            "functions": functions,
        }

    def _keep_writing(self) -> None:
        while not self._stopping.is_set():
            if self._dirty.wait(WRITE_EVERY) and not self._stopping.is_set():
                self._dirty.clear()
                self._write()
                self._stopping.wait(WRITE_EVERY)  # at most one write per interval

    def _write(self) -> None:
        text = json.dumps(self.snapshot(), indent=1)
        with contextlib.suppress(OSError):  # a status file must never stop the runtime
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(text)
            os.replace(partial, self.path)


@dataclasses.dataclass(frozen=True)
class FunctionStatus:
    """One function of a running local system, as :func:`read` finds it."""

    name: str
    outcomes: dict[str, int]  # status ("handled", "retry", ...) -> messages
    in_delivery: int  # messages handed to it now and not answered yet
    oldest_in_delivery: datetime | None  # the publish time of the oldest of them

    @property
    def handled(self) -> int:
        return sum(self.outcomes.get(s, 0) for s in HANDLED)

    @property
    def retried(self) -> int:
        return sum(self.outcomes.get(s, 0) for s in RETRIED)

    @property
    def dead_lettered(self) -> int:
        return self.outcomes.get("dead_lettered", 0)


def read(path: Path) -> list[FunctionStatus] | None:
    """The functions of the local system that writes ``path``; ``None`` when none is running
    (no file, or the process that wrote it is gone)."""
    try:
        document = json.loads(path.read_text())
        pid = int(document["pid"])
        functions = document["functions"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        return None
    found = []
    for name, part in sorted(functions.items()):
        oldest = part.get("oldest_in_delivery")
        found.append(
            FunctionStatus(
                name=name,
                outcomes={str(k): int(v) for k, v in (part.get("outcomes") or {}).items()},
                in_delivery=int(part.get("in_delivery") or 0),
                oldest_in_delivery=datetime.fromisoformat(oldest) if oldest else None,
            )
        )
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
