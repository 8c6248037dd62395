"""The embedded store: one SQLite file, shared safely by several processes on one machine.

Used by local runs and tests. Write-ahead logging lets the functions served by
``pubsub-kit dev`` (separate processes) and the demo's report read and write the same file;
every check-then-write happens inside ``BEGIN IMMEDIATE``, so two processes racing for one
claim cannot both win, while reads (audit queries, counters) take no lock at all.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from shared.stores.base import DONE_RETENTION, AuditEntry, ClaimState, Store, check_key

# CloudEvents identify an event by source and id: two producers may both send an event "1".
_AUDIT_TABLE = """
CREATE TABLE IF NOT EXISTS audit (
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    time TEXT NOT NULL,
    subject TEXT,
    actor TEXT,
    correlation_id TEXT,
    data TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (source, event_id)
);
"""
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    expires_at REAL NOT NULL
);
"""
    + _AUDIT_TABLE
    + """
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (state, expires_at);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject, time);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, time);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
CREATE INDEX IF NOT EXISTS audit_type ON audit (event_type, time);
CREATE TABLE IF NOT EXISTS counters (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (collection, key, field)
);
CREATE TABLE IF NOT EXISTS applied (
    token TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""
)


def _migrate_audit_key(db: sqlite3.Connection) -> None:
    """Files made before the audit log was keyed by source and event id get the new key."""
    keys = [row[1] for row in db.execute("PRAGMA table_info(audit)") if row[5]]
    if keys == ["event_id"]:
        db.executescript(
            "BEGIN IMMEDIATE; ALTER TABLE audit RENAME TO audit_by_id;"
            + _AUDIT_TABLE
            + "INSERT INTO audit SELECT * FROM audit_by_id; DROP TABLE audit_by_id; COMMIT;"
        )


class SqliteStore(Store):
    """A :class:`Store` in one SQLite file.

    Args:
        path: the database file (created with its folder), or ``":memory:"`` for a private,
            single-connection store in tests.
        clock: seconds since the epoch; injectable so lease expiry can be tested exactly.
    """

    def __init__(self, path: str | Path, *, clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self.path = str(path)
        self._clock = clock
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        self._shared_lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []  # every thread's, so close() closes all
        self._opened_lock = threading.Lock()
        self._next_purge = 0.0
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._setup()

    def _setup(self, timeout: float = 30.0) -> None:
        """Switch the file to WAL and create the tables, tolerating other processes doing the same.

        Changing the journal mode and running DDL can fail at once with "database is locked"
        when another process is opening the same new file (SQLite's busy handler does not cover
        every case here), so retry with backoff until ``timeout``.
        """
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                with self._shared_lock:
                    db = self._connection()
                    if self.path != ":memory:":
                        db.execute("PRAGMA journal_mode = WAL")  # persistent: once per file
                    _migrate_audit_key(db)
                    db.executescript(_SCHEMA)  # runs outside BEGIN: it commits itself
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 30000")
        if self.path != ":memory:":
            db.execute("PRAGMA synchronous = NORMAL")
        with self._opened_lock:
            self._opened.append(db)
        return db

    def _connection(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            # One connection for everyone: a second ":memory:" connection is another database.
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.path == ":memory:":
            with self._shared_lock:
                yield from self._in_transaction(self._connection())
        else:
            yield from self._in_transaction(self._connection())

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads: no write lock, so an audit query never stalls a handler.

        In WAL mode a reader sees the last committed state and neither waits for a writer nor
        blocks one; each statement runs in its own implicit read transaction.
        """
        if self.path == ":memory:":
            with self._shared_lock:
                yield self._connection()
        else:
            yield self._connection()

    @staticmethod
    def _in_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- idempotency -----------------------------------------------------------------------
    def claim(self, key: str, lease: float) -> ClaimState:
        check_key("claim key", key)
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, expires_at FROM claims WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                state, expires_at = row
                if state == "done" and expires_at > now:
                    return ClaimState.DONE
                if state == "claimed" and expires_at > now:
                    return ClaimState.BUSY
            db.execute(
                "INSERT OR REPLACE INTO claims (key, state, expires_at) VALUES (?, 'claimed', ?)",
                (key, now + lease),
            )
            return ClaimState.ACQUIRED

    def complete(self, key: str) -> None:
        check_key("claim key", key)
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO claims (key, state, expires_at) VALUES (?, 'done', ?)",
                (key, now + DONE_RETENTION),
            )
            # Forget what no redelivery can reach any more: an index range scan, and only once a
            # minute per process, so the write lock every claim needs stays short.
            if now >= self._next_purge:
                self._next_purge = now + 60
                db.execute("DELETE FROM claims WHERE state = 'done' AND expires_at < ?", (now,))
                db.execute("DELETE FROM applied WHERE expires_at < ?", (now,))

    def release(self, key: str) -> None:
        check_key("claim key", key)
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND state = 'claimed'", (key,))

    # -- audit log ------------------------------------------------------------------------
    def record_audit(self, entry: AuditEntry) -> bool:
        check_key("event id", entry.event_id)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.event_id,
                    entry.event_type,
                    entry.source,
                    _iso(entry.time),
                    entry.subject,
                    entry.actor,
                    entry.correlation_id,
                    json.dumps(entry.data, sort_keys=True),
                    _iso(entry.recorded_at),
                ),
            )
            return cursor.rowcount == 1

    def query_audit(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        event_type: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        clauses, params = [], []
        for column, value in (("subject", subject), ("actor", actor), ("event_type", event_type)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("time >= ?")
            params.append(_iso(since))
        if until is not None:
            clauses.append("time < ?")
            params.append(_iso(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if newest_first else "ASC"
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM audit {where} ORDER BY time {order}, event_id {order} LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [
            AuditEntry(
                event_id=r[0],
                event_type=r[1],
                source=r[2],
                time=datetime.fromisoformat(r[3]),
                subject=r[4],
                actor=r[5],
                correlation_id=r[6],
                data=json.loads(r[7]),
                recorded_at=datetime.fromisoformat(r[8]),
            )
            for r in rows
        ]

    # -- idempotent effects ---------------------------------------------------------------
    def increment(
        self, collection: str, key: str, field: str, amount: int = 1, *, once: str
    ) -> bool:
        check_key("once token", once)
        check_key("counter collection", collection)
        check_key("counter key", key)
        check_key("counter field", field)
        now = self._clock()
        with self._transaction() as db:
            applied = db.execute(
                "INSERT OR IGNORE INTO applied (token, expires_at) VALUES (?, ?)",
                (f"{collection}/{once}", now + DONE_RETENTION),
            )
            if applied.rowcount == 0:
                return False
            db.execute(
                "INSERT INTO counters (collection, key, field, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (collection, key, field) DO UPDATE SET value = value + excluded.value",
                (collection, key, field, amount),
            )
            return True

    def counters(self, collection: str, key: str) -> dict[str, int]:
        check_key("counter collection", collection)
        check_key("counter key", key)
        with self._read() as db:
            rows = db.execute(
                "SELECT field, value FROM counters WHERE collection = ? AND key = ? ORDER BY field",
                (collection, key),
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        """Close the connections of every thread; the store is unusable afterwards."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for db in opened:
            db.close()
        self._local = threading.local()
        self._shared = None


def _iso(value: datetime) -> str:
    # One fixed-width UTC form, so that text order is time order in SQL comparisons.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")
