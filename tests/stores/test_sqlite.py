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


def test_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """An audit query or a counter read while a handler holds the write lock answers at once.

    Before, reads ran inside BEGIN IMMEDIATE and waited up to the 30 s busy timeout.
    """
    import sqlite3
    import threading

    from shared.stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    store.increment("likes", "p1", "count", once="e1")
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a handler mid-claim, holding the write lock
    answers: list[object] = []
    reader = threading.Thread(
        target=lambda: answers.extend([store.counters("likes", "p1"), store.query_audit()])
    )
    try:
        reader.start()
        reader.join(10)  # far below the busy timeout a locked read would wait
        assert answers == [{"count": 1}, []], "reads waited for the writer's lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join(60)
        store.close()


def test_close_closes_every_threads_connection(tmp_path: Path) -> None:
    import sqlite3
    import threading

    from shared.stores.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db")
    seen: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: seen.append(store._connection()))
    worker.start()
    worker.join(10)
    mine = store._connection()
    store.close()
    for connection in (*seen, mine):
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            continue  # closed, as it should be
        raise AssertionError("a connection was left open by close()")


def test_a_file_from_before_the_audit_was_keyed_by_source_is_migrated(tmp_path: Path) -> None:
    import sqlite3
    from datetime import UTC, datetime

    from shared.stores.base import AuditEntry
    from shared.stores.sqlite import SqliteStore

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE audit (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, "
        "source TEXT NOT NULL, time TEXT NOT NULL, subject TEXT, actor TEXT, "
        "correlation_id TEXT, data TEXT NOT NULL, recorded_at TEXT NOT NULL);"
        "INSERT INTO audit VALUES ('1', 't.x.v1', '/a', '2026-01-01T00:00:00.000000+00:00', "
        "NULL, NULL, NULL, '{}', '2026-01-01T00:00:00.000000+00:00');"
    )
    old.close()
    store = SqliteStore(path)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    other = AuditEntry("1", "t.x.v1", "/b", now, None, None, None, {}, now)
    assert store.record_audit(other) is True  # same id, another source: kept
    assert sorted(e.source for e in store.query_audit()) == ["/a", "/b"]
    store.close()
