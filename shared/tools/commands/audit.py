"""``pubsub-kit audit``: who did what, when: the audit log, newest first, as a table.

It reads the store the audit log is written to: the SQLite file of the local runtime (by default
whichever of ``.pubsub-kit/dev.db`` (``pubsub-kit dev``) and ``.pubsub-kit/demo.db``
(``make demo``) was written last, or ``--db``), or Firestore with ``--store firestore`` (the
emulator when ``FIRESTORE_EMULATOR_HOST`` is set, else GCP with application default
credentials). Entries hold the events' redacted data only: the audit log never stored a
sensitive value, so there is none to show.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.errors import ToolkitError
from shared.stores.base import AuditEntry, Store
from shared.tools.cli import whole_number
from shared.tools.commands import _text
from shared.topology import Topology

NAME = "audit"

_DURATION = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}  # seconds
CONNECT_TIMEOUT = 3.0  # seconds to reach the Firestore emulator
HEADERS = ("TIME", "TYPE", "SUBJECT", "ACTOR", "EVENT ID", "CORRELATION ID")


def moment(text: str, now: datetime | None = None) -> datetime:
    """An argparse type: an RFC 3339 time (UTC when it has no offset), or a duration before now.

    ``2026-01-31T12:00:00Z``, ``2026-01-31T13:00:00+01:00``, ``2026-01-31``; ``90s``, ``15m``,
    ``2h``, ``7d``, ``2w``.
    """
    now = now or datetime.now(UTC)
    stripped = text.strip()
    ago = _DURATION.fullmatch(stripped)
    if ago:
        try:
            return now - timedelta(seconds=int(ago.group(1)) * _UNITS[ago.group(2)])
        except OverflowError:
            raise argparse.ArgumentTypeError(
                f"the duration {text!r} reaches back before the year 1"
            ) from None
    try:
        # RFC 3339 allows a lower-case "t" and "z", and a space for the "T".
        parsed = datetime.fromisoformat(stripped.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected an RFC 3339 time like 2026-01-31T12:00:00Z, or a duration before now "
            f"like 15m, 2h or 7d; found {text!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="query the audit log: who did what, when (newest first)",
        description="Show audit log entries, newest first, as a table (time, type, subject, "
        "actor, event id, correlation id), or with --json one object per line with the "
        "event's redacted data. Reads the local runtime's SQLite file (by default the one of "
        "`pubsub-kit dev` or `make demo` written last, or --db), or Firestore with --store "
        "firestore (the emulator when FIRESTORE_EMULATOR_HOST is set, else GCP).",
    )
    p.add_argument("--subject", help="only entries about this subject, e.g. order-1001")
    p.add_argument("--actor", help="only entries caused by this actor, e.g. alice")
    p.add_argument("--type", dest="event_type", metavar="TYPE", help="only this event type")
    for flag, word in (("--since", "at or after"), ("--until", "before")):
        p.add_argument(
            flag,
            metavar="TIME",
            type=moment,
            help=f"only events {word} TIME: RFC 3339 (2026-01-31T12:00:00Z; UTC without an "
            "offset) or a duration before now (15m, 2h, 7d)",
        )
    p.add_argument(
        "--limit",
        metavar="N",
        type=whole_number(1, what="a number of entries"),
        default=50,
        help="the newest N entries at most (default 50)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, with data")
    p.add_argument(
        "--store",
        choices=("sqlite", "firestore"),
        default="sqlite",
        help="where the audit log is: the local SQLite file (default), or Firestore",
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        type=Path,
        help="the SQLite file (default: .pubsub-kit/dev.db or .pubsub-kit/demo.db, whichever "
        "was written last)",
    )
    p.add_argument(
        "--project",
        help="Firestore's project (default PUBSUB_PROJECT_ID or GOOGLE_CLOUD_PROJECT)",
    )


def run(args: argparse.Namespace, topology: Topology) -> int:
    if args.since and args.until and args.since >= args.until:
        raise ToolkitError(
            f"--since ({_text.instant(args.since)}) is not before --until "
            f"({_text.instant(args.until)}): no event can match"
        )
    if args.store == "firestore" and args.db is not None:
        raise ToolkitError("--db names a SQLite file; with --store firestore leave it out")
    if args.event_type and args.event_type not in topology.registry:
        print(
            f"note: {args.event_type} is not an event type of the topology (known: "
            f"{', '.join(topology.registry.types)}); showing what the log has of it",
            file=sys.stderr,
        )
    with _open(args) as (store, where):
        entries = _query(store, args)
    if args.json:
        for entry in entries:
            print(_text.compact(as_json(entry)))
    elif entries:
        for row in _text.table(HEADERS, [_row(e) for e in entries]):
            print(row)
    summary = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} from {where}"
    if entries:
        summary += ", newest first"
    if len(entries) == args.limit:
        summary += f"; --limit {args.limit} reached: narrow with --since or --type, or raise it"
    print(summary, file=sys.stderr)
    return 0


def _query(store: Store, args: argparse.Namespace) -> list[AuditEntry]:
    return store.query_audit(
        subject=args.subject,
        actor=args.actor,
        event_type=args.event_type,
        since=args.since,
        until=args.until,
        limit=args.limit,
        newest_first=True,
    )


def _row(entry: AuditEntry) -> list[str]:
    return [
        _text.instant(entry.time),
        entry.event_type,
        entry.subject or "-",
        entry.actor or "-",
        entry.event_id,
        entry.correlation_id or "-",
    ]


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "time": entry.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "event_type": entry.event_type,
        "subject": entry.subject,
        "actor": entry.actor,
        "event_id": entry.event_id,
        "source": entry.source,
        "correlation_id": entry.correlation_id,
        "recorded_at": entry.recorded_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": entry.data,
    }


@contextlib.contextmanager
def _open(args: argparse.Namespace) -> Iterator[tuple[Store, str]]:
    """The store to read and a few words saying which; errors reading it as sentences."""
    if args.store == "firestore":
        with _firestore(args.project) as opened:
            yield opened
        return
    from shared.stores.sqlite import SqliteStore

    path = sqlite_file(args.db)
    try:
        store = SqliteStore(path)
    except sqlite3.Error as exc:
        raise ToolkitError(f"cannot open the audit log at {path}: {exc}") from None
    try:
        yield store, str(path)
    except sqlite3.Error as exc:
        raise ToolkitError(f"cannot read the audit log at {path}: {exc}") from None
    finally:
        store.close()


def sqlite_file(given: Path | None) -> Path:
    """The SQLite file to read, checked to be an audit log before anything opens it for writing.

    Raises:
        ToolkitError: missing, a folder, not SQLite, or without an audit table.
    """
    if given is None:
        from shared.tools.project import state_dir

        folder = state_dir()
        candidates = [folder / "dev.db", folder / "demo.db"]
        found = [path for path in candidates if path.is_file()]
        path = max(found, key=_written) if found else candidates[0]
    else:
        path = given
    if path.is_dir():
        raise ToolkitError(f"{path} is a folder; --db takes the SQLite file of the audit log")
    if not path.is_file():
        raise ToolkitError(
            f"no audit log at {path}: run `pubsub-kit dev` or `make demo` first, or --db"
        )
    try:
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as db:
            table = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
            ).fetchone()
    except sqlite3.Error:
        raise ToolkitError(f"{path} is not a SQLite database; --db takes the audit log") from None
    if table is None:
        raise ToolkitError(f"{path} has no audit log (no audit table); --db takes the one of dev")
    return path


def _written(path: Path) -> float:
    """When ``path`` was last written; in WAL mode a write may so far be in its -wal file."""
    wal = path.with_name(path.name + "-wal")
    return max(path.stat().st_mtime, wal.stat().st_mtime if wal.is_file() else 0.0)


@contextlib.contextmanager
def _firestore(project: str | None) -> Iterator[tuple[Store, str]]:
    from google.api_core import exceptions

    from shared import config
    from shared.stores.firestore import FirestoreStore

    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if host:
        _require_listening(host)
    else:
        _require_credentials()
    name = config.project_id(project)
    store = FirestoreStore(project=name, prefix=config.store_prefix())
    where = (
        f"the Firestore emulator at {host} (project {name})"
        if host
        else f"Firestore (project {name})"
    )
    try:
        yield store, where
    except exceptions.FailedPrecondition as exc:
        raise ToolkitError(f"Firestore needs an index for this query: {exc.message}") from None
    except exceptions.PermissionDenied as exc:
        raise ToolkitError(
            f"Firestore refused access in project {name!r} ({exc.message}); check --project "
            "and the account gcloud auth application-default login set"
        ) from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise ToolkitError(
            f"Firestore did not answer for project {name!r} ({type(exc).__name__})"
        ) from None
    finally:
        store.close()


def _require_listening(host: str) -> None:
    name, _, port = host.rpartition(":")
    try:
        address = (name.strip("[]") or "127.0.0.1", int(port))
    except ValueError:
        raise ToolkitError(
            f"FIRESTORE_EMULATOR_HOST is {host!r}; expected host:port, e.g. 127.0.0.1:8086"
        ) from None
    try:
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT):
            return
    except OSError:
        raise ToolkitError(
            f"the Firestore emulator at {host} does not answer; start it with "
            "./emulator.sh start firestore, or unset FIRESTORE_EMULATOR_HOST to use GCP"
        ) from None


def _require_credentials() -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise ToolkitError(
            "no Firestore to read: FIRESTORE_EMULATOR_HOST is not set and there are no Google "
            'credentials; point at the emulator (eval "$(pubsub-kit emulator env)") or log in '
            "to GCP (gcloud auth application-default login)"
        ) from None
