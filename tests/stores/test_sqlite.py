"""SQLite-only behaviour: several processes opening one new store file at the same moment.

Functions served by ``pubsub-kit dev`` (and the two-instance end-to-end test) open the same
file at once on their first message; that must not fail with "database is locked".
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def _open_and_claim(path: str, barrier, results) -> None:  # runs in a child process
    from shared.stores.sqlite import SqliteStore

    barrier.wait()
    try:
        store = SqliteStore(path)
        results.put(store.claim("event-1", lease=60).value)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the failure
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(5):
        path = str(tmp_path / f"state-{round_}.db")
        barrier, results = context.Barrier(3), context.Queue()
        processes = [
            context.Process(target=_open_and_claim, args=(path, barrier, results)) for _ in range(3)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        answers = sorted(results.get(timeout=5) for _ in processes)
        assert answers == ["acquired", "busy", "busy"], answers
