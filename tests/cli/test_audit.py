"""``pubsub-kit audit``, run as a user runs it: SQLite files, the real audit function, Firestore."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.publisher import Publisher
from shared.stores.base import AuditEntry
from shared.stores.sqlite import SqliteStore
from shared.system.events import FieldChange, UserUpdated
from shared.system.topology import TOPOLOGY
from tests.cli.conftest import PubsubKit, closed_port, no_credentials
from tests.conftest import wait_until

CANARY = "canary-91be@example.com"  # a sensitive value: must never be printed
NOW = datetime.now(UTC).replace(microsecond=0)
FAST = 15.0  # seconds


def entry(event_id: str, minutes_ago: float, **fields: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "event_type": "user.updated.v1",
        "source": "/services/tests",
        "subject": "user-1",
        "actor": "alice",
        "correlation_id": f"corr-{event_id}",
        "data": {"user_id": "user-1", "email": "[redacted]"},
        "recorded_at": NOW,
    }
    values.update(fields)
    return AuditEntry(event_id=event_id, time=NOW - timedelta(minutes=minutes_ago), **values)


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    """An audit log of five entries: two types, two subjects, two actors, 0 to 3 hours old."""
    path = tmp_path / "dev.db"
    with SqliteStore(path) as store:
        for recorded in [
            entry("e-oldest", 180),
            entry("e-order", 90, event_type="order.dispatched.v1", subject="order-9", actor="bob"),
            entry("e-mid", 60, actor="bob"),
            entry("e-recent", 10),
            entry("e-newest", 1, subject="user-2"),
        ]:
            store.record_audit(recorded)
    return path


def event_ids(out: str) -> list[str]:
    """The EVENT ID column of the table, top to bottom."""
    header, *rows = out.splitlines()
    start = header.index("EVENT ID")
    return [row[start:].split()[0] for row in rows]


def test_the_log_is_a_table_newest_first(pubsub_kit: PubsubKit, audit_db: Path) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db))
    assert ran.status == 0, ran.err
    header = ran.out.splitlines()[0]
    assert header.split() == [
        "TIME",
        "TYPE",
        "SUBJECT",
        "ACTOR",
        "EVENT",
        "ID",
        "CORRELATION",
        "ID",
    ]
    assert event_ids(ran.out) == ["e-newest", "e-recent", "e-mid", "e-order", "e-oldest"]
    newest = ran.out.splitlines()[1]
    assert newest.split() == [
        (NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user.updated.v1",
        "user-2",
        "alice",
        "e-newest",
        "corr-e-newest",
    ]
    assert ran.error == f"5 entries from {audit_db}, newest first"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--subject", "user-1"], ["e-recent", "e-mid", "e-oldest"]),
        (["--actor", "bob"], ["e-mid", "e-order"]),
        (["--type", "order.dispatched.v1"], ["e-order"]),
        (["--since", "2h"], ["e-newest", "e-recent", "e-mid", "e-order"]),
        (["--since", "2h", "--until", "30m"], ["e-mid", "e-order"]),
        (["--until", (NOW - timedelta(minutes=100)).isoformat()], ["e-oldest"]),
        (
            ["--since", (NOW - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")],
            ["e-newest", "e-recent"],
        ),
        (
            ["--actor", "alice", "--type", "user.updated.v1", "--limit", "2"],
            ["e-newest", "e-recent"],
        ),
    ],
)
def test_every_filter_narrows_the_log(
    pubsub_kit: PubsubKit, audit_db: Path, args: list[str], expected: list[str]
) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), *args)
    assert ran.status == 0, ran.err
    assert event_ids(ran.out) == expected


def test_the_limit_says_when_it_was_reached(pubsub_kit: PubsubKit, audit_db: Path) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), "--limit", "2")
    assert event_ids(ran.out) == ["e-newest", "e-recent"]
    assert "--limit 2 reached" in ran.error


def test_nothing_matching_prints_no_table(pubsub_kit: PubsubKit, audit_db: Path) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), "--subject", "nobody")
    assert (ran.status, ran.out) == (0, "")
    assert ran.error == f"0 entries from {audit_db}"


def test_json_is_one_object_per_line_with_the_redacted_data(
    pubsub_kit: PubsubKit, audit_db: Path
) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), "--json", "--subject", "user-2")
    [line] = ran.out.splitlines()
    assert json.loads(line) == {
        "time": (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "event_type": "user.updated.v1",
        "subject": "user-2",
        "actor": "alice",
        "event_id": "e-newest",
        "source": "/services/tests",
        "correlation_id": "corr-e-newest",
        "recorded_at": NOW.isoformat().replace("+00:00", "Z"),
        "data": {"user_id": "user-1", "email": "[redacted]"},
    }


@pytest.mark.emulator
def test_what_the_audit_function_stored_under_the_local_runtime_is_shown_redacted(
    pubsub_kit: PubsubKit, project: str, local_system, tmp_path: Path
) -> None:
    local_system(TOPOLOGY, ["audit_log"])
    update = UserUpdated(
        user_id="user-77",
        changed_by="support-agent-7",
        changes={"email": FieldChange(old="old@example.com", new=CANARY)},
        email=CANARY,
    )
    Publisher(TOPOLOGY, project=project, source="/tests").publish(update).result(30)
    db = tmp_path / "state.db"

    def shown() -> str:
        ran = pubsub_kit("audit", "--db", str(db), "--subject", "user-77", "--json")
        return ran.out if ran.status == 0 else ""

    wait_until(lambda: shown().strip(), timeout=60, what="the audit entry")
    [found] = [json.loads(line) for line in shown().splitlines()]
    assert found["actor"] == "support-agent-7" and found["event_type"] == "user.updated.v1"
    assert found["data"]["email"] == "[redacted]"
    assert found["data"]["changes"] == {"email": "[redacted]"}
    table = pubsub_kit("audit", "--db", str(db), "--actor", "support-agent-7")
    assert "user-77" in table.out
    assert CANARY not in shown() + table.out + table.err


# -- which file -----------------------------------------------------------------------------------


def project_folder(tmp_path: Path) -> Path:
    """A project of the user's (pyproject.toml and functions/), with its state folder."""
    root = tmp_path / "project"
    (root / "functions").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "mine"\nversion = "0.1.0"\n')
    (root / ".pubsub-kit").mkdir()
    return root


def in_project(root: Path) -> dict[str, str | None]:
    return {"PUBSUB_KIT_ROOT": str(root), "PUBSUB_KIT_TOPOLOGY": "shared.system.topology:TOPOLOGY"}


def test_by_default_it_reads_whichever_of_dev_and_demo_was_written_last(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    root = project_folder(tmp_path)
    with SqliteStore(root / ".pubsub-kit" / "dev.db") as dev:
        dev.record_audit(entry("from-dev", 5))
    with SqliteStore(root / ".pubsub-kit" / "demo.db") as demo:
        demo.record_audit(entry("from-demo", 5))
    past = time.time() - 3600
    for name in ("dev.db", "dev.db-wal"):
        if (root / ".pubsub-kit" / name).exists():
            os.utime(root / ".pubsub-kit" / name, (past, past))

    ran = pubsub_kit("audit", env=in_project(root), cwd=root)
    assert ran.status == 0, ran.err
    assert event_ids(ran.out) == ["from-demo"]
    assert str(root / ".pubsub-kit" / "demo.db") in ran.error


def test_no_audit_log_yet_says_how_to_make_one(pubsub_kit: PubsubKit, tmp_path: Path) -> None:
    root = project_folder(tmp_path)
    ran = pubsub_kit("audit", env=in_project(root), cwd=root)
    assert ran.status == 1
    assert ran.error == (
        f"pubsub-kit: error: no audit log at {root / '.pubsub-kit' / 'dev.db'}: run "
        "`pubsub-kit dev` or `make demo` first, or --db"
    )


def test_files_that_are_not_an_audit_log_are_refused_and_left_alone(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.db"
    ran = pubsub_kit("audit", "--db", str(missing))
    assert ran.error.endswith(
        f"no audit log at {missing}: run `pubsub-kit dev` or `make demo` first, or --db"
    )
    assert not missing.exists()  # not created by looking
    assert pubsub_kit("audit", "--db", str(tmp_path)).error.endswith(
        f"{tmp_path} is a folder; --db takes the SQLite file of the audit log"
    )
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    assert pubsub_kit("audit", "--db", str(text)).error.endswith(
        f"{text} is not a SQLite database; --db takes the audit log"
    )
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    before = other.read_bytes()
    ran = pubsub_kit("audit", "--db", str(other))
    assert ran.status == 1
    assert ran.error.endswith(
        f"{other} has no audit log (no audit table); --db takes the one of dev"
    )
    assert other.read_bytes() == before


# -- wrong input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--since", "yesterday"],
            "argument --since: expected an RFC 3339 time like "
            "2026-01-31T12:00:00Z, or a duration before now like 15m, 2h or 7d; found 'yesterday'",
        ),
        (["--until", "5x"], "argument --until: expected an RFC 3339 time"),
        (["--since=-15m"], "found '-15m'"),
        (["--since", "2026-13-45T00:00:00Z"], "found '2026-13-45T00:00:00Z'"),
        (["--limit", "0"], "argument --limit: expected a number of entries of at least 1, found 0"),
        (["--limit", "ten"], "argument --limit: expected a number of entries, found 'ten'"),
        (["--store", "mongo"], "argument --store: invalid choice: 'mongo'"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_expected(
    pubsub_kit: PubsubKit, audit_db: Path, args: list[str], expected: str
) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), *args)
    assert ran.status == 2
    assert expected in ran.error


def test_a_time_range_that_cannot_match_is_refused(pubsub_kit: PubsubKit, audit_db: Path) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), "--since", "1h", "--until", "2h")
    assert ran.status == 1
    assert "is not before --until" in ran.error and "no event can match" in ran.error


def test_a_type_the_topology_does_not_know_is_searched_with_a_note(
    pubsub_kit: PubsubKit, audit_db: Path
) -> None:
    ran = pubsub_kit("audit", "--db", str(audit_db), "--type", "user.updatd.v1")
    assert ran.status == 0 and ran.out == ""
    assert "note: user.updatd.v1 is not an event type of the topology" in ran.err


def test_db_with_firestore_is_refused(pubsub_kit: PubsubKit, audit_db: Path) -> None:
    ran = pubsub_kit("audit", "--store", "firestore", "--db", str(audit_db))
    assert ran.status == 1
    assert ran.error.endswith("--db names a SQLite file; with --store firestore leave it out")


# -- Firestore ------------------------------------------------------------------------------------


@pytest.mark.firestore
def test_firestore_on_the_emulator_answers_the_same_query(
    pubsub_kit: PubsubKit, firestore_emulator: str
) -> None:
    from google.cloud import firestore

    from shared.stores.firestore import FirestoreStore

    prefix = f"audit{int(time.time() * 1000)}"
    project = "pubsub-kit-audit-cli"
    with FirestoreStore(project=project, prefix=prefix) as store:
        for recorded in [entry("f-old", 30), entry("f-new", 2), entry("f-bob", 20, actor="bob")]:
            store.record_audit(recorded)
    env = {"FIRESTORE_EMULATOR_HOST": firestore_emulator, "PUBSUB_KIT_STORE_PREFIX": prefix}
    try:
        ran = pubsub_kit(
            "audit", "--store", "firestore", "--project", project, "--actor", "alice", env=env
        )
        assert ran.status == 0, ran.err
        assert event_ids(ran.out) == ["f-new", "f-old"]
        assert f"the Firestore emulator at {firestore_emulator}" in ran.error
    finally:
        client = firestore.Client(project=project)
        client.recursive_delete(client.collection(f"{prefix}_audit"))
        client.close()


def test_firestore_emulator_down_fails_within_seconds(pubsub_kit: PubsubKit) -> None:
    host = closed_port()
    started = time.monotonic()
    ran = pubsub_kit(
        "audit", "--store", "firestore", "--project", "p-1", env={"FIRESTORE_EMULATOR_HOST": host}
    )
    assert time.monotonic() - started < FAST
    assert ran.status == 1
    assert ran.error.endswith(
        f"the Firestore emulator at {host} does not answer; start it with ./emulator.sh start "
        "firestore, or unset FIRESTORE_EMULATOR_HOST to use GCP"
    )


def test_firestore_without_emulator_or_credentials_says_how_to_get_either(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    ran = pubsub_kit("audit", "--store", "firestore", env=no_credentials(tmp_path), timeout=60)
    assert ran.status == 1
    assert "FIRESTORE_EMULATOR_HOST is not set and there are no Google credentials" in ran.error
