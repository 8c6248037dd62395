"""``pubsub-kit dlq list|inspect|replay|purge``: the dead letters of the topology's subscriptions.

The work is done by :mod:`shared.tools.dlq`; this module reads the arguments, checks them before
any I/O, and prints. A SUBSCRIPTION is a source subscription (``post-liked--audit_log``) or its
dead-letter subscription (``post-liked--audit_log--dlq``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import ToolkitError
from shared.tools import dlq
from shared.tools.cli import whole_number
from shared.tools.commands import _text as text
from shared.tools.dlq import DeadLetter, Selection
from shared.topology import Topology

NAME = "dlq"

DEFAULT_INSPECT_LIMIT = 100  # dead letters `dlq inspect` shows unless --limit says otherwise

_count = whole_number(1, what="a whole number")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def duration(text: str) -> timedelta:
    """An argparse type: ``30s``, ``15m``, ``2h``, ``7d`` (or ``1h30m``), more than zero."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30s, 15m, 2h or 7d, found {text!r}"
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration of more than 0 s, found {text!r}")
    return timedelta(seconds=seconds)


def per_second(text: str) -> float:
    """An argparse type: a positive number of messages per second."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of messages per second, found {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of messages per second, found {text}"
        )
    return value


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="list, inspect, replay or purge dead-lettered messages",
        description="The dead letters of the topology's subscriptions. SUBSCRIPTION is a "
        "subscription of the topology (post-liked--audit_log) or its dead-letter "
        "subscription (post-liked--audit_log--dlq). Reading changes nothing: messages are "
        "pulled and handed straight back.",
    )
    sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    a = sub.add_parser(
        "list",
        help="every dead-letter subscription, with its messages waiting and the oldest's age",
        description="Count what waits on every dead-letter subscription of the topology "
        f"(up to {dlq.LIST_LIMIT} each) and how long the oldest has waited.",
    )
    _common(a)

    a = sub.add_parser(
        "inspect",
        help="show dead letters and why, without removing them",
        description="Show dead letters without removing them: event id, type, reason, "
        "attempts, how long each has waited, and its data with every sensitive value "
        "redacted (data that does not decode is not shown).",
    )
    _subscription(a)
    a.add_argument(
        "--limit",
        type=_count,
        metavar="N",
        help=f"at most N dead letters (default {DEFAULT_INSPECT_LIMIT})",
    )
    a.add_argument("--max", type=_count, help=argparse.SUPPRESS)  # --limit's old name
    _filters(a, ids=False, age=False)
    _common(a)

    a = sub.add_parser(
        "replay",
        help="publish dead letters to their topic again, removing each once it is",
        description="Publish the selected dead letters to their original topic again (same "
        "data, same ce-id, the dead-letter attributes removed), and remove each from the "
        "dead-letter subscription only after Pub/Sub accepted it. Interrupted, it loses "
        "nothing: run it again and it re-publishes what is still there; consumers drop an "
        "event they already handled by its ce-id.",
    )
    _subscription(a)
    _filters(a, ids=True, age=True)
    a.add_argument("--limit", type=_count, metavar="N", help="at most N dead letters")
    a.add_argument("--max", type=_count, help=argparse.SUPPRESS)  # --limit's old name
    a.add_argument(
        "--rate",
        type=per_second,
        metavar="PER_SECOND",
        help="at most this many re-publishes per second (spare a consumer that just recovered)",
    )
    a.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be replayed; change nothing",
    )
    _common(a)

    a = sub.add_parser(
        "purge",
        help="delete dead letters, after a confirmation",
        description="Delete the selected dead letters for good. Asks first, naming how many "
        "and where; without a terminal to ask on, only with --yes.",
    )
    _subscription(a)
    _filters(a, ids=False, age=True)
    a.add_argument("--yes", action="store_true", help="do not ask; delete")
    _common(a)


def _subscription(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "subscription",
        metavar="SUBSCRIPTION",
        help="e.g. post-liked--audit_log (or its dead-letter subscription, ...--dlq)",
    )


def _filters(p: argparse.ArgumentParser, *, ids: bool, age: bool) -> None:
    p.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TYPE",
        help="only dead letters of this event type, e.g. post.liked.v1 (repeatable)",
    )
    if ids:
        p.add_argument(
            "--id",
            dest="ids",
            nargs="+",
            action="extend",
            default=[],
            metavar="ID",
            help="only these events: ce-id or message id, as `dlq inspect` shows them",
        )
    if age:
        p.add_argument(
            "--older-than",
            type=duration,
            metavar="DURATION",
            help="only those dead-lettered longer ago than this: 30s, 15m, 2h, 7d",
        )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", help="project id (default PUBSUB_PROJECT_ID)")
    p.add_argument("--json", action="store_true", help="print JSON, one object per line")


def run(args: argparse.Namespace, topology: Topology) -> int:
    from shared.config import project_id
    from shared.tools.reach import require_pubsub

    action: str = args.dlq_command
    source = None if action == "list" else dlq.resolve(topology, args.subscription)
    select = _selection(args, topology)
    limit = _limit(args)
    project = project_id(args.project)
    require_pubsub(project)
    if source is None:
        return _list(topology, project, args.json)
    if action == "inspect":
        return _inspect(topology, source.name, project, select, limit, args.json)
    if action == "replay":
        return _replay(topology, source.name, project, select, limit, args)
    return _purge(topology, source.name, project, select, args)


def _selection(args: argparse.Namespace, topology: Topology) -> Selection:
    types = getattr(args, "types", [])
    unknown = sorted(set(types) - set(topology.registry.types))
    if unknown:
        raise ToolkitError(
            f"--type {unknown[0]}: not an event type of this topology; registered types: "
            f"{', '.join(topology.registry.types)}"
            + (" (select dead letters of other types by --id)" if hasattr(args, "ids") else "")
        )
    ids = [i for i in getattr(args, "ids", []) if i.strip()]
    if len(ids) != len(getattr(args, "ids", [])):
        raise ToolkitError("--id takes event ids or message ids; found an empty one")
    return dlq.Selection(frozenset(types), frozenset(ids), getattr(args, "older_than", None))


def _limit(args: argparse.Namespace) -> int | None:
    old = getattr(args, "max", None)
    if old is None:
        return getattr(args, "limit", None)
    if args.limit is not None:
        raise ToolkitError("--max is the old name of --limit; give only --limit")
    print("pubsub-kit: note: --max is deprecated; use --limit", file=sys.stderr)
    return int(old)


def _list(topology: Topology, project: str, as_json: bool) -> int:
    stats = dlq.queues(topology, project=project)
    if stats and not any(s.provisioned for s in stats):
        raise ToolkitError(
            f"none of the topology's dead-letter subscriptions exists in project {project!r}; "
            f"create the topology there first: pubsub-kit provision --project {project}"
        )
    now = datetime.now(UTC)
    if as_json:
        for s in stats:
            age = (now - s.oldest).total_seconds() if s.oldest else None
            line = {
                "subscription": s.subscription,
                "source": s.source,
                "provisioned": s.provisioned,
                "count": s.count,
                "complete": s.complete,
                "oldest": s.oldest.isoformat() if s.oldest else None,
                "oldest_age_seconds": None if age is None else round(max(age, 0.0), 3),
            }
            print(json.dumps(line))
    else:
        rows = [
            [s.subscription, "-", "not provisioned"]
            if not s.provisioned
            else [
                s.subscription,
                f"{s.count}{'' if s.complete else '+'}",
                text.age((now - s.oldest).total_seconds() if s.oldest else None),
            ]
            for s in stats
        ]
        for row in text.table(["DEAD-LETTER SUBSCRIPTION", "WAITING", "OLDEST"], rows, right=2):
            print(row)
    waiting = sum(s.count for s in stats)
    holding = sum(1 for s in stats if s.count)
    print(
        f"{waiting} dead letter(s) in {holding} of {len(stats)} subscription(s), project {project}",
        file=sys.stderr,
    )
    return 0


def _inspect(
    topology: Topology,
    subscription: str,
    project: str,
    select: Selection,
    limit: int | None,
    as_json: bool,
) -> int:

    letters = dlq.inspect(
        topology,
        subscription,
        project=project,
        max_messages=limit or DEFAULT_INSPECT_LIMIT,
        select=select,
    )
    show = _show_json if as_json else _show
    now = datetime.now(UTC)
    for letter in letters:
        show(letter, topology, now)
    print(f"{len(letters)} dead letter(s) on {subscription}--dlq", file=sys.stderr)
    return 0


def _replay(
    topology: Topology,
    subscription: str,
    project: str,
    select: Selection,
    limit: int | None,
    args: argparse.Namespace,
) -> int:
    from shared.tools.progress import Progress

    topic = topology.subscription(subscription).topic.name
    queue = f"{subscription}--dlq"
    if args.dry_run:
        report = dlq.replay(
            topology, subscription, project=project, select=select, limit=limit, dry_run=True
        )
        now = datetime.now(UTC)
        for letter in report.selected:
            (_show_json if args.json else _show)(letter, topology, now)
        print(
            f"dry run: would replay {len(report.selected)} to topic {topic}, skip "
            f"{report.skipped}; nothing changed",
            file=sys.stderr,
        )
        return 0

    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress("replaying", total)
        bar.update(done)

    try:
        report = dlq.replay(
            topology,
            subscription,
            project=project,
            select=select,
            limit=limit,
            rate=args.rate,
            on_progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    counts = {"replayed": report.replayed, "skipped": report.skipped, "failed": report.failed}
    if args.json:
        print(json.dumps({**counts, "subscription": queue, "topic": topic}))
    else:
        print(
            f"replayed {report.replayed}, skipped {report.skipped}, failed {report.failed}: "
            f"{queue} -> topic {topic}"
        )
    if report.missing:
        print(
            f"note: {report.missing} selected dead letter(s) were gone when their turn came "
            "(another replay or purge took them?)",
            file=sys.stderr,
        )
    if report.more:
        print(
            f"note: only the first {dlq.PEEK_LIMIT} dead letters were looked at; run the "
            "replay again for the rest",
            file=sys.stderr,
        )
    if report.error:
        left = report.failed + report.untried
        raise ToolkitError(
            f"{report.error}; {left} dead letter(s) stay on {queue}: run the replay again "
            "once that is fixed"
        )
    return 0


def _purge(
    topology: Topology, subscription: str, project: str, select: Selection, args: argparse.Namespace
) -> int:

    queue = f"{subscription}--dlq"
    asked: list[int] = []

    def confirm(letters: list[DeadLetter]) -> bool:
        asked.append(len(letters))
        what = f"{len(letters)} dead letter(s) from {queue} in project {project}"
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise ToolkitError(
                f"purge would delete {what}, and there is no terminal to confirm on; "
                "add --yes to delete them"
            )
        print(f"Delete {what}? They cannot be recovered. [y/N] ", end="", file=sys.stderr)
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        return answer in ("y", "yes")

    report = dlq.purge(topology, subscription, project=project, select=select, confirm=confirm)
    if asked and not report.deleted and not report.missing:
        print("nothing deleted", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"deleted": report.deleted, "subscription": queue}))
    else:
        print(f"deleted {report.deleted} dead letter(s) from {queue}")
    if report.missing:
        print(
            f"note: {report.missing} dead letter(s) were gone before they could be deleted",
            file=sys.stderr,
        )
    return 0


def _show(letter: DeadLetter, topology: Topology, now: datetime) -> None:
    age = letter.age(now)
    attempts = "?" if letter.attempts is None else str(letter.attempts)
    print(
        f"{letter.event_id or '(no ce-id) message ' + letter.message_id}  "
        f"{letter.event_type or '(no ce-type)'}  attempts {attempts}  "
        f"waiting {text.age(age.total_seconds() if age is not None else None)}"
    )
    print(f"    reason: {letter.reason}")
    data, why = letter.redacted_data(topology.registry)
    if data is not None:
        print(f"    data:   {json.dumps(data, ensure_ascii=False)}")
    else:
        print(f"    data:   not shown, it does not decode: {why}")


def _show_json(letter: DeadLetter, topology: Topology, now: datetime) -> None:
    age = letter.age(now)
    data, why = letter.redacted_data(topology.registry)
    line: dict[str, Any] = {
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "message_id": letter.message_id,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "dead_lettered_at": letter.dead_lettered_at.isoformat()
        if letter.dead_lettered_at
        else None,
        "age_seconds": None if age is None else round(age.total_seconds(), 3),
        "data": data,
    }
    if why is not None:
        line["undecodable"] = why
    print(json.dumps(line, ensure_ascii=False))
