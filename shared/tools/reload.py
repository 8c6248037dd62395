"""``pubsub-kit dev`` picks up code changes: the function whose code changed is restarted.

A change under ``functions/<name>/`` restarts that function; a change to shared code (any other
Python package at the project root: the topology and events, or ``shared/`` in the toolkit's
own checkout) restarts every function, since each imports it. Tests are not watched.

Modification times are polled about once a second: no dependency, no inotify watch limits, and
the same on every platform; a project's sources are a few hundred files at most. A new
consumer or subscription (a topology change) still needs ``dev`` to be started again: the
emulator's subscriptions are provisioned at start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

INTERVAL = 1.0  # seconds between two looks at the files
UNWATCHED = frozenset({"tests", "node_modules", "__pycache__"})

Snapshot = dict[Path, int]  # file -> modification time in nanoseconds


def watched_files(root: Path) -> Iterator[Path]:
    """The ``.py`` files under ``functions/`` and in the project's other top-level packages."""
    folders = [root / "functions"]
    try:
        entries = sorted(root.iterdir())
    except OSError:
        entries = []
    folders += [
        entry
        for entry in entries
        if entry.is_dir()
        and not entry.name.startswith(".")
        and entry.name not in UNWATCHED
        and (entry / "__init__.py").is_file()
    ]
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in UNWATCHED]
            for filename in filenames:
                if filename.endswith(".py"):
                    yield Path(dirpath, filename)


def snapshot(root: Path) -> Snapshot:
    files: Snapshot = {}
    for path in watched_files(root):
        try:
            files[path] = path.stat().st_mtime_ns
        except OSError:
            continue  # deleted between the listing and now: the next look sees it gone
    return files


def changed_files(before: Snapshot, after: Snapshot) -> list[Path]:
    """Files added, removed or modified between two snapshots, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def affected(changed: Iterable[Path], root: Path, functions: Collection[str]) -> set[str]:
    """The functions to restart for ``changed`` files: their own, or all for shared code."""
    names: set[str] = set()
    for path in changed:
        parts = path.relative_to(root).parts
        if parts[0] == "functions":
            if len(parts) > 2 and parts[1] in functions:
                names.add(parts[1])
        else:
            return set(functions)
    return names


class Reloader:
    """Polls ``root``'s code in a thread and calls ``restart(name, why)`` for what changed.

    Args:
        root: the project folder.
        functions: the names of the functions that run (others' folders are ignored).
        restart: restarts one function; ``why`` says which file changed, for a line of output.
        interval: seconds between two looks.
    """

    def __init__(
        self,
        root: Path,
        functions: Collection[str],
        restart: Callable[[str, str], object],
        interval: float = INTERVAL,
    ) -> None:
        self.root = root
        self.functions = frozenset(functions)
        self.restart = restart
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._files: Snapshot = {}
        self._looking = threading.Lock()  # poll() from a caller and from the thread: one at once

    def start(self) -> None:
        self._files = snapshot(self.root)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="pubsub-kit-reload", daemon=True)
        self._thread.start()

    def poll(self) -> set[str]:
        """Look once; restart what changed since the last look. Returns the names restarted."""
        with self._looking:
            return self._poll()

    def _poll(self) -> set[str]:
        now = snapshot(self.root)
        changed = changed_files(self._files, now)
        self._files = now
        if not changed:
            return set()
        names = affected(changed, self.root, self.functions)
        shown = changed[0].relative_to(self.root).as_posix()
        more = f" and {len(changed) - 1} more files" if len(changed) > 1 else ""
        why = f"{shown}{more} changed"
        for name in sorted(names):
            if self._stopping.is_set():
                break
            self.restart(name, why)
        return names

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a restart in progress finishes first
            self._thread = None
