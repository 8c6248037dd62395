"""``pubsub-kit status``: the one screen that says which service is behind or failing.

Per subscription of the topology: its backlog (messages not acknowledged yet) and how old the
oldest is, and the dead letters waiting on its dead-letter subscription; under ``pubsub-kit
dev`` (or ``demo``), per function: what is being delivered to it now and since when, and how
many messages it handled, retried and dead-lettered since the run started. Rows that need
attention come first, flagged in the STATE column:

- ``MISSING``: the subscription does not exist (``pubsub-kit provision``, or check --project);
- ``FAILING``: dead letters are waiting (``pubsub-kit dlq``), or the function dead-lettered
  messages in this run;
- ``BEHIND``: the oldest message waiting (or being delivered) is older than ``--behind``;
- ``RETRYING``: the function answered messages with a retry in this run.

Where the numbers come from, and what reading them costs:

- **Dead letters**: by peeking at the dead-letter subscriptions (pulled, counted, given back at
  once). Nobody consumes those but ``dlq replay``, and they have no dead-letter policy of their
  own, so peeking costs nothing.
- **Backlog on GCP**: Cloud Monitoring's ``subscription/num_undelivered_messages`` and
  ``oldest_unacked_message_age`` (a minute or two behind; needs ``pip install
  'pubsub-kit[monitoring]'`` and ``roles/monitoring.viewer``). Reading them touches no message.
- **Backlog on the emulator**: the emulator has no metrics and no read that does not deliver
  (``seek`` is accepted and does nothing), so a backlog can only be counted by pulling it, and
  every pull spends one of each message's delivery attempts: five peeks dead-letter a message
  that was never handled. So it is counted only with ``--peek``. Under ``pubsub-kit dev`` the
  runtime's own view (IN DELIVERY, OLDEST) shows a function that is down or slow without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import ToolkitError
from shared.tools.cli import positive_seconds
from shared.tools.commands import _text
from shared.tools.commands._pubsub import Backlog
from shared.tools.local_status import FunctionStatus
from shared.topology import Subscription, Topology

NAME = "status"

BEHIND = 60.0  # seconds: a message waiting longer than this means its consumer is behind
GCP_PULL_WAIT = 3.0  # seconds the first pull of a dead-letter subscription waits, on GCP
MONITORING_WINDOW = 600  # seconds of Cloud Monitoring data to look back for the latest point
WORKERS = 8  # subscriptions read at once
_METRIC = "pubsub.googleapis.com/subscription/"
INSTALL_MONITORING = "pip install 'pubsub-kit[monitoring]'"

# State, by how much it needs attention: the higher, the earlier its row.
OK, RETRYING, BEHIND_STATE, FAILING, MISSING = "ok", "RETRYING", "BEHIND", "FAILING", "MISSING"
_RANK = {OK: 0, RETRYING: 1, BEHIND_STATE: 2, FAILING: 3, MISSING: 4}


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="backlogs, dead letters and (under dev) each function's outcomes, worst first",
        description="One screen that says which service is behind or failing: per subscription "
        "of the topology its backlog and the age of its oldest message, and the dead letters "
        "waiting; under `pubsub-kit dev`, per function what is being delivered now and how "
        "many messages it handled, retried and dead-lettered. Rows that need attention come "
        "first, flagged MISSING, FAILING, BEHIND or RETRYING. On GCP the backlog comes from "
        f"Cloud Monitoring ({INSTALL_MONITORING}); the emulator can count a backlog only by "
        "pulling it, which spends a delivery attempt of every message, so only with --peek.",
    )
    p.add_argument(
        "--project", help="project id (default PUBSUB_PROJECT_ID or GOOGLE_CLOUD_PROJECT)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--peek",
        action="store_true",
        help="on the emulator, count each subscription's backlog by pulling it and giving it "
        "back; each message counted spends one delivery attempt (five dead-letter it)",
    )
    p.add_argument(
        "--behind",
        metavar="SECONDS",
        type=positive_seconds,
        default=BEHIND,
        help=f"flag a consumer as BEHIND when a message waited longer (default {BEHIND:g})",
    )


@dataclasses.dataclass(frozen=True)
class Row:
    """One subscription of the topology, as status shows it."""

    subscription: Subscription
    backlog: Backlog
    dead_letters: Backlog
    missing: bool = False

    def state(self, now: datetime, behind: float) -> str:
        if self.missing:
            return MISSING
        if self.dead_letters.count:
            return FAILING
        age = self.backlog.age(now)
        return BEHIND_STATE if age is not None and age >= behind else OK


def function_state(fn: FunctionStatus, now: datetime, behind: float) -> str:
    if fn.oldest_in_delivery is not None and (
        (now - fn.oldest_in_delivery).total_seconds() >= behind
    ):
        return BEHIND_STATE
    if fn.dead_lettered:
        return FAILING
    return RETRYING if fn.retried else OK


def run(args: argparse.Namespace, topology: Topology) -> int:
    from shared import config
    from shared._clients import subscriber_client
    from shared.tools import local_status
    from shared.tools.commands._pubsub import answered
    from shared.tools.project import state_dir
    from shared.tools.reach import require_pubsub

    project = config.project_id(args.project)
    require_pubsub(project)
    host = config.emulator_host()
    notes: list[str] = []
    with subscriber_client() as subscriber, answered(project):
        if host is not None:
            rows = _emulator_rows(subscriber, topology, project, args.peek, notes)
        else:
            rows = _gcp_rows(subscriber, topology, project, notes)
    functions = local_status.read(local_status.status_file(state_dir(), project))
    if functions is None:
        notes.append(
            f"no function counts: no `pubsub-kit dev` (or demo) is running for project {project}"
        )
    now = datetime.now(UTC)
    where = f"the emulator at {host}" if host else "GCP"
    if args.json:
        print(_text.compact(_as_json(project, where, rows, functions, notes, now, args.behind)))
        return 0
    print(f"project {project} on {where}, {_text.instant(now)}")
    print()
    for line in _subscription_table(rows, now, args.behind):
        print(line)
    if functions is not None:
        print()
        for line in _function_table(functions, now, args.behind):
            print(line)
    sys.stdout.flush()  # the notes go under the tables, the verdict last
    for note in notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    print(_verdict(rows, functions, now, args.behind))
    return 0


def _emulator_rows(
    subscriber: Any, topology: Topology, project: str, peek: bool, notes: list[str]
) -> list[Row]:
    subs = sorted(topology.subscriptions.values(), key=lambda s: s.name)
    dead = _each(subs, lambda s: _peeked(subscriber, project, s.dead_letter_subscription))
    if peek:
        backlogs = _each(subs, lambda s: _peeked(subscriber, project, s.name))
        notes.append(
            "--peek spent one delivery attempt of each message counted in a backlog "
            "(a message dead-letters after its consumer's max_delivery_attempts)"
        )
    else:
        backlogs = _each(subs, lambda s: _exists(subscriber, project, s.name))
        notes.append(
            "backlogs not counted: on the emulator that means pulling them, which spends a "
            "delivery attempt of every message; --peek counts them anyway"
        )
    rows = []
    for sub, backlog, letters in zip(subs, backlogs, dead, strict=True):
        missing = backlog is None or letters is None
        rows.append(Row(sub, backlog or Backlog(None), letters or Backlog(None), missing))
    return rows


def _gcp_rows(subscriber: Any, topology: Topology, project: str, notes: list[str]) -> list[Row]:
    subs = sorted(topology.subscriptions.values(), key=lambda s: s.name)
    names = [s.name for s in subs] + [s.dead_letter_subscription for s in subs]
    try:
        measured: dict[str, Backlog] | None = monitoring_backlogs(project, names)
    except ImportError:
        measured = None
        notes.append(
            "backlogs not counted: they come from Cloud Monitoring, whose client is not "
            f"installed; {INSTALL_MONITORING}"
        )
    else:
        notes.append("backlogs from Cloud Monitoring, which is a minute or two behind")
    exists = _each(subs, lambda s: _exists(subscriber, project, s.name))
    if measured is None:
        dead = _each(
            subs,
            lambda s: _peeked(subscriber, project, s.dead_letter_subscription, wait=True),
        )
    else:
        dead = [measured.get(s.dead_letter_subscription, Backlog(None)) for s in subs]
    rows = []
    for sub, found, letters in zip(subs, exists, dead, strict=True):
        backlog = (measured or {}).get(sub.name, Backlog(None))
        rows.append(Row(sub, backlog, letters or Backlog(None), missing=found is None))
    return rows


def _each(subs: Sequence[Subscription], read: Callable[[Subscription], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(read, subs))


def _peeked(subscriber: Any, project: str, name: str, *, wait: bool = False) -> Backlog | None:
    """The backlog of ``name`` by peeking; ``None`` when the subscription does not exist."""
    from google.api_core import exceptions

    from shared.tools.commands._pubsub import peek_backlog

    path = f"projects/{project}/subscriptions/{name}"
    try:
        return peek_backlog(subscriber, path, wait=wait, timeout=GCP_PULL_WAIT if wait else 5.0)
    except exceptions.NotFound:
        return None


def _exists(subscriber: Any, project: str, name: str) -> Backlog | None:
    """An uncounted backlog if ``name`` exists; ``None`` when it does not."""
    from google.api_core import exceptions

    from shared.tools.commands._pubsub import CALL_TIMEOUT

    try:
        subscriber.get_subscription(
            request={"subscription": f"projects/{project}/subscriptions/{name}"},
            timeout=CALL_TIMEOUT,
        )
    except exceptions.NotFound:
        return None
    return Backlog(None)


def monitoring_backlogs(
    project: str, names: Sequence[str], client: Any = None, now: datetime | None = None
) -> dict[str, Backlog]:
    """The latest backlog of each subscription in ``names`` from Cloud Monitoring.

    Raises:
        ImportError: google-cloud-monitoring is not installed (and no ``client`` was given).
        ToolkitError: Cloud Monitoring refused or did not answer.
    """
    from google.api_core import exceptions

    from shared.tools.commands._pubsub import CALL_TIMEOUT

    if client is None:
        from google.cloud import monitoring_v3

        client = monitoring_v3.MetricServiceClient()
    now = now or datetime.now(UTC)
    wanted = set(names)
    latest: dict[str, dict[str, int]] = {name: {} for name in names}
    try:
        for metric in ("num_undelivered_messages", "oldest_unacked_message_age"):
            series = client.list_time_series(
                request={
                    "name": f"projects/{project}",
                    "filter": f'metric.type = "{_METRIC}{metric}" AND '
                    'resource.type = "pubsub_subscription"',
                    "interval": {
                        "start_time": {"seconds": int(now.timestamp()) - MONITORING_WINDOW},
                        "end_time": {"seconds": int(now.timestamp())},
                    },
                },
                timeout=CALL_TIMEOUT,
            )
            for one in series:
                name = one.resource.labels.get("subscription_id")
                if name in wanted and one.points:  # newest point first
                    latest[name][metric] = int(one.points[0].value.int64_value)
    except exceptions.PermissionDenied:
        raise ToolkitError(
            f"Cloud Monitoring refused to read project {project!r}'s metrics; the account needs "
            "roles/monitoring.viewer"
        ) from None
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
        raise ToolkitError(
            f"Cloud Monitoring did not answer for project {project!r} ({type(exc).__name__})"
        ) from None
    backlogs = {}
    for name, values in latest.items():
        count = values.get("num_undelivered_messages")
        age = values.get("oldest_unacked_message_age")
        if count is None:
            backlogs[name] = Backlog(None, note="no data in Cloud Monitoring for 10 minutes")
        else:
            oldest = now - timedelta(seconds=age) if count and age is not None else None
            backlogs[name] = Backlog(count, oldest)
    return backlogs


def _count(backlog: Backlog) -> str:
    if backlog.count is None:
        return "-"
    return f"{backlog.count}{'+' if backlog.more else ''}"


def _sorted_rows(rows: Sequence[Row], now: datetime, behind: float) -> list[Row]:
    def worst_first(row: Row) -> tuple[int, float, str]:
        age = max(row.backlog.age(now) or 0.0, row.dead_letters.age(now) or 0.0)
        return (-_RANK[row.state(now, behind)], -age, row.subscription.name)

    return sorted(rows, key=worst_first)


def _subscription_table(rows: Sequence[Row], now: datetime, behind: float) -> list[str]:
    headers = ("STATE", "SUBSCRIPTION", "CONSUMER", "BACKLOG", "OLDEST", "DEAD LETTERS", "OLDEST")
    return _text.table(
        headers,
        [
            [
                row.state(now, behind),
                row.subscription.name,
                row.subscription.consumer.name,
                _count(row.backlog),
                _text.age(row.backlog.age(now)),
                _count(row.dead_letters),
                _text.age(row.dead_letters.age(now)),
            ]
            for row in _sorted_rows(rows, now, behind)
        ],
        right=4,
    )


def _sorted_functions(
    functions: Sequence[FunctionStatus], now: datetime, behind: float
) -> list[FunctionStatus]:
    return sorted(
        functions,
        key=lambda fn: (-_RANK[function_state(fn, now, behind)], -fn.dead_lettered, fn.name),
    )


def _function_table(functions: Sequence[FunctionStatus], now: datetime, behind: float) -> list[str]:
    headers = ("STATE", "FUNCTION", "IN DELIVERY", "OLDEST", "HANDLED", "RETRIED", "DEAD-LETTERED")
    return _text.table(
        headers,
        [
            [
                function_state(fn, now, behind),
                fn.name,
                str(fn.in_delivery),
                _text.age(_since(fn.oldest_in_delivery, now)),
                str(fn.handled),
                str(fn.retried),
                str(fn.dead_lettered),
            ]
            for fn in _sorted_functions(functions, now, behind)
        ],
        right=5,
    )


def _since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max((now - moment).total_seconds(), 0.0)


def _verdict(
    rows: Sequence[Row], functions: Sequence[FunctionStatus] | None, now: datetime, behind: float
) -> str:
    """One sentence: what needs attention first, or that nothing does."""
    bad = [row for row in _sorted_rows(rows, now, behind) if row.state(now, behind) != OK]
    bad_functions = [
        fn
        for fn in _sorted_functions(functions or [], now, behind)
        if function_state(fn, now, behind) != OK
    ]
    if not bad and not bad_functions:
        return "nothing needs attention"
    parts = []
    if bad:
        worst = bad[0]
        parts.append(
            f"{len(bad)} of {len(rows)} subscriptions need{'s' if len(bad) == 1 else ''} "
            "attention, worst "
            f"{worst.subscription.name} ({_why(worst, now, behind)})"
        )
    if bad_functions:
        names = ", ".join(f"{fn.name} {function_state(fn, now, behind)}" for fn in bad_functions)
        parts.append(f"functions: {names}")
    return "; ".join(parts)


def _why(row: Row, now: datetime, behind: float) -> str:
    state = row.state(now, behind)
    if state == MISSING:
        return "missing: run pubsub-kit provision, or check --project"
    if state == FAILING:
        return f"{_count(row.dead_letters)} dead letter(s) waiting: pubsub-kit dlq"
    return f"oldest message waiting {_text.age(row.backlog.age(now))}"


def _as_json(
    project: str,
    where: str,
    rows: Sequence[Row],
    functions: Sequence[FunctionStatus] | None,
    notes: list[str],
    now: datetime,
    behind: float,
) -> dict[str, Any]:
    return {
        "project": project,
        "pubsub": where,
        "at": now.isoformat().replace("+00:00", "Z"),
        "behind_seconds": behind,
        "subscriptions": [
            {
                "subscription": row.subscription.name,
                "topic": row.subscription.topic.name,
                "consumer": row.subscription.consumer.name,
                "dead_letter_subscription": row.subscription.dead_letter_subscription,
                "state": row.state(now, behind),
                "backlog": row.backlog.as_json(now),
                "dead_letters": row.dead_letters.as_json(now),
            }
            for row in _sorted_rows(rows, now, behind)
        ],
        "functions": None
        if functions is None
        else [
            {
                "function": fn.name,
                "state": function_state(fn, now, behind),
                "in_delivery": fn.in_delivery,
                "oldest_in_delivery_age_seconds": _since(fn.oldest_in_delivery, now),
                "handled": fn.handled,
                "retried": fn.retried,
                "dead_lettered": fn.dead_lettered,
                "outcomes": fn.outcomes,
            }
            for fn in _sorted_functions(functions, now, behind)
        ],
        "notes": notes,
    }
