"""``pubsub-kit tail TOPIC|SUBSCRIPTION``: the events flowing, decoded and redacted, one line each.

What it reads, and what it leaves behind:

- **A topic**: a temporary subscription ``<topic>--tail-<8 hex digits>`` receives what is
  published from now on; tail acknowledges what it shows there (nobody else reads it) and deletes
  it when it stops: at ``--limit``, on Ctrl-C, SIGTERM or SIGHUP, and after an error. If tail is
  killed outright (SIGKILL), Pub/Sub deletes it after 24 hours without a pull (its expiration
  policy; the shortest Pub/Sub allows), and it keeps unread messages 10 minutes at most.
- **A consumer's subscription** (``post-liked--audit_log``) is tailed through its topic, with the
  subscription's filter: pulling the subscription itself would take messages from the consumer
  and spend their delivery attempts (five peeks dead-letter a message). What it shows is what
  reaches that consumer from now on.
- **A dead-letter subscription** (``...--dlq``) is peeked: what waits there is shown, then what
  arrives. The messages are held (leased) while tail runs and given back when it stops, so
  ``dlq replay`` still finds every one; if tail is killed, they come back within 60 s.

Each message is decoded as a consumer reads it (tolerant of fields a newer producer added) and
shown with :meth:`Event.redacted`: a sensitive value is never printed. A message that cannot be
decoded is shown with why, and never with its data: data that does not fit its model cannot be
told apart into sensitive and harmless values, and may be any producer's secret.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shared.errors import EventError, ToolkitError
from shared.tools.cli import whole_number
from shared.tools.commands import _text
from shared.topology import Topology

NAME = "tail"

PULL_WAIT = 2.0  # seconds one pull may wait for messages; Ctrl-C is noticed at least as often
LEASE = 60  # seconds a peeked dead letter stays held between two extensions
EXTEND_EVERY = 20.0  # seconds between extensions of the held leases
EXPIRATION = 24 * 3600  # seconds: the shortest expiration policy Pub/Sub accepts (1 day)
RETENTION = 600  # seconds: the shortest message retention Pub/Sub accepts (10 minutes)
DATA_WIDTH = 240  # characters of data on a readable line; --json has it all
_SUFFIX = "--tail-"


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="show the events on a topic or a dead-letter subscription, decoded and redacted",
        description="Print each event on TOPIC as it is published, decoded and with sensitive "
        "values redacted: time, age, type, event id, subject, correlation id and data, one line "
        "each. A topic is read through a temporary subscription, deleted when tail stops "
        "(Ctrl-C, SIGTERM, --limit). A consumer's subscription is read through its topic, with "
        "its filter, so its consumer loses nothing and spends no delivery attempt. A "
        "dead-letter subscription is peeked: its messages are held while shown and given back "
        "when tail stops. A message that cannot be decoded is shown with why, never with its "
        "data.",
    )
    p.add_argument("target", metavar="TOPIC|SUBSCRIPTION", help="e.g. post-liked, or a ...--dlq")
    p.add_argument(
        "--type",
        dest="types",
        metavar="TYPE",
        action="append",
        default=[],
        help="only events of this type, e.g. post.liked.v1 (repeatable)",
    )
    p.add_argument(
        "--limit",
        metavar="N",
        type=whole_number(1, what="a number of events"),
        help="stop after N events (default: run until Ctrl-C)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--project", help="project id (default PUBSUB_PROJECT_ID or GOOGLE_CLOUD_PROJECT)"
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """Where tail reads: a topic through a temporary subscription, or a subscription peeked."""

    topic: str | None = None  # read through a temporary subscription
    peek: str | None = None  # a subscription whose messages are held, then given back
    filter: str = ""  # the filter of the consumer's subscription tailed through its topic
    note: str | None = None  # told on stderr before waiting

    @property
    def described(self) -> str:
        return f"topic {self.topic}" if self.topic else f"dead-letter subscription {self.peek}"


def resolve(topology: Topology, name: str, exists: Any = None) -> Source:
    """What tailing ``name`` reads; ``exists(kind, name)`` asks Pub/Sub about names the topology
    does not declare (``kind`` is ``"topics"`` or ``"subscriptions"``; it returns the
    subscription's topic and filter, or ``True`` for a topic, or ``None``).

    Raises:
        ToolkitError: neither the topology nor Pub/Sub knows ``name``.
    """
    dead_letter = {s.dead_letter_subscription: s for s in topology.subscriptions.values()}
    if name in dead_letter:  # before topics: a dead-letter topic has the same name
        return Source(peek=name)
    if name in topology.subscriptions:
        sub = topology.subscriptions[name]
        return Source(
            topic=sub.topic.name,
            filter=sub.consumer.filter or "",
            note=f"{name} feeds {sub.consumer.name}: tailing its topic {sub.topic.name}"
            f"{' with its filter' if sub.consumer.filter else ''} instead, so the consumer loses "
            "nothing and spends no delivery attempt",
        )
    if name in topology.topics:
        return Source(topic=name)
    if exists is not None:
        if exists("topics", name):
            return Source(topic=name)
        found = exists("subscriptions", name)
        if found:
            topic, text = found
            return Source(
                topic=topic,
                filter=text,
                note=f"{name} is a subscription: tailing its topic {topic} instead, so its "
                "consumer loses nothing",
            )
    raise ToolkitError(
        f"no topic or subscription named {name!r}; topics: "
        f"{', '.join(sorted(topology.topics))}; dead-letter subscriptions end in --dlq"
    )


def run(args: argparse.Namespace, topology: Topology) -> int:
    from shared._clients import subscriber_client
    from shared.config import project_id
    from shared.tools.commands._pubsub import answered
    from shared.tools.reach import require_pubsub

    unknown = sorted(set(args.types) - set(topology.registry.types))
    if unknown:
        raise ToolkitError(
            f"--type {unknown[0]} is not an event type of the topology; "
            f"known types: {', '.join(topology.registry.types)}"
        )
    project = project_id(args.project)
    require_pubsub(project)
    printer = _Printer(topology, set(args.types), args.json)
    with subscriber_client() as subscriber, answered(project):
        source = resolve(topology, args.target, _asker(subscriber, project))
        if source.note:
            print(f"note: {source.note}", file=sys.stderr)
        reader = _Reader(subscriber, project, source)
        interrupted = False
        try:
            reader.open()
            print(
                f"waiting for events on {source.described}"
                f"{f' (temporary subscription {reader.name})' if source.topic else ''}; "
                "Ctrl-C stops",
                file=sys.stderr,
                flush=True,
            )
            reader.follow(printer, args.limit)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: clean up, say so, exit 130
            interrupted = True
        finally:
            with _signals_held():
                reader.close()
    stopped = f"{printer.shown} event(s) shown"
    if source.topic:
        stopped += f"; temporary subscription {reader.name} deleted"
    else:
        stopped += f"; {len(reader.held)} message(s) given back to {source.peek}"
    print(stopped, file=sys.stderr)
    return 130 if interrupted else 0


def _asker(subscriber: Any, project: str) -> Any:
    from google.api_core import exceptions

    from shared.tools.commands._pubsub import CALL_TIMEOUT

    def exists(kind: str, name: str) -> Any:
        try:
            if kind == "subscriptions":
                sub = subscriber.get_subscription(
                    request={"subscription": f"projects/{project}/subscriptions/{name}"},
                    timeout=CALL_TIMEOUT,
                )
                return sub.topic.rsplit("/", 1)[-1], sub.filter
            from google.cloud import pubsub_v1

            publisher = pubsub_v1.PublisherClient()
            try:
                publisher.get_topic(
                    request={"topic": f"projects/{project}/topics/{name}"}, timeout=CALL_TIMEOUT
                )
            finally:
                publisher.transport.close()
            return True
        except (exceptions.NotFound, exceptions.InvalidArgument):
            return None

    return exists


class _Reader:
    """Pulls from the temporary subscription (acking) or the peeked one (holding)."""

    def __init__(self, subscriber: Any, project: str, source: Source) -> None:
        self.subscriber = subscriber
        self.project = project
        self.source = source
        self.name = source.peek or temporary_name(source.topic or "")
        self.path = f"projects/{project}/subscriptions/{self.name}"
        self.held: dict[str, str] = {}  # message id -> ack id, peeking only
        self._created = False
        self._extended = time.monotonic()

    def open(self) -> None:
        from google.api_core import exceptions

        from shared.tools.commands._pubsub import CALL_TIMEOUT

        if self.source.topic is None:
            return
        self._created = True  # before the call: an interrupt may land after Pub/Sub made it
        try:
            self.subscriber.create_subscription(
                request={
                    "name": self.path,
                    "topic": f"projects/{self.project}/topics/{self.source.topic}",
                    "ack_deadline_seconds": 60,
                    "expiration_policy": {"ttl": {"seconds": EXPIRATION}},
                    "message_retention_duration": {"seconds": RETENTION},
                    "filter": self.source.filter,
                    "labels": {"created-by": "pubsub-kit-tail"},
                },
                timeout=CALL_TIMEOUT,
            )
        except exceptions.NotFound:
            self._created = False
            raise ToolkitError(
                f"topic {self.source.topic!r} does not exist in project {self.project!r}; "
                "create the topology first: pubsub-kit provision"
            ) from None

    def follow(self, printer: _Printer, limit: int | None) -> None:
        """Show what arrives until ``limit`` events were shown (or forever)."""
        matches = printer.matcher(self.source.filter)
        while limit is None or printer.shown < limit:
            received = self._pull()
            for message in self._settle(received):
                if limit is not None and printer.shown >= limit:
                    break
                if matches(message.attributes):
                    printer.show(message)
            if not received:
                time.sleep(0.2)  # an empty pull may answer at once: no busy loop

    def _pull(self) -> list[Any]:
        from google.api_core import exceptions

        try:
            response = self.subscriber.pull(
                request={"subscription": self.path, "max_messages": 100},
                timeout=PULL_WAIT,
                retry=None,
            )
        except exceptions.DeadlineExceeded:
            return []
        except exceptions.NotFound:
            hint = " (deleted meanwhile?)" if self.source.topic else "; run pubsub-kit provision"
            raise ToolkitError(
                f"subscription {self.name!r} does not exist in project {self.project!r}{hint}"
            ) from None
        return list(response.received_messages)

    def _settle(self, received: list[Any]) -> list[Any]:
        """Acknowledge what the temporary subscription received, or hold what was peeked;
        returns the messages not shown before."""
        from shared.tools.commands._pubsub import acknowledge, set_deadline

        if self.source.topic is not None:
            if received:
                acknowledge(self.subscriber, self.path, [r.ack_id for r in received])
            return [r.message for r in received]
        # A message seen again had its lease run out: hold it again, but show it once.
        fresh = [r.message for r in received if r.message.message_id not in self.held]
        for item in received:
            self.held[item.message.message_id] = item.ack_id
        if received:
            set_deadline(self.subscriber, self.path, [r.ack_id for r in received], LEASE)
        self._keep_held()
        return fresh

    def _keep_held(self) -> None:
        from shared.tools.commands._pubsub import set_deadline

        if self.held and time.monotonic() - self._extended >= EXTEND_EVERY:
            set_deadline(self.subscriber, self.path, list(self.held.values()), LEASE)
            self._extended = time.monotonic()

    def close(self) -> None:
        """Delete the temporary subscription, or give the held messages back."""
        from google.api_core import exceptions

        from shared.tools.commands._pubsub import CALL_TIMEOUT, give_back

        if self.source.peek is not None:
            with contextlib.suppress(exceptions.GoogleAPICallError, exceptions.RetryError):
                give_back(self.subscriber, self.path, list(self.held.values()))
            return
        if not self._created:
            return
        try:
            self.subscriber.delete_subscription(
                request={"subscription": self.path}, timeout=CALL_TIMEOUT
            )
        except exceptions.NotFound:
            pass
        except (exceptions.GoogleAPICallError, exceptions.RetryError):
            print(
                f"could not delete the temporary subscription {self.name}; Pub/Sub deletes it "
                "after 24 h without a pull, or: gcloud pubsub subscriptions delete "
                f"{self.name} --project {self.project}",
                file=sys.stderr,
            )


def temporary_name(topic: str) -> str:
    """``<topic>--tail-<8 hex digits>``, within Pub/Sub's 255 characters."""
    return f"{topic[: 255 - len(_SUFFIX) - 8]}{_SUFFIX}{secrets.token_hex(4)}"


class _Printer:
    """Turns messages into lines (or JSON objects) and counts what it printed."""

    def __init__(self, topology: Topology, types: set[str], as_json: bool) -> None:
        self.registry = topology.registry
        self.types = types
        self.as_json = as_json
        self.shown = 0

    def matcher(self, filter_text: str) -> Any:
        """A predicate over attributes: the ``--type`` choice and the subscription's filter
        (applied here too: the emulator accepts filters and ignores them)."""
        from shared import wire
        from shared.filters import compile_filter

        wanted = compile_filter(filter_text) if filter_text else None

        def matches(attributes: Any) -> bool:
            attributes = dict(attributes)
            if self.types and attributes.get(wire.ATTR_TYPE) not in self.types:
                return False
            return wanted is None or wanted(attributes)

        return matches

    def show(self, message: Any) -> None:
        entry = describe(message, self.registry, datetime.now(UTC))
        print(_text.compact(entry) if self.as_json else line(entry), flush=True)
        self.shown += 1


def describe(message: Any, registry: Any, now: datetime) -> dict[str, Any]:
    """One message as tail shows it: the envelope, and the redacted data or why there is none."""
    from shared import wire

    attributes = dict(message.attributes)
    published: datetime | None = message.publish_time or None
    entry: dict[str, Any] = {
        "time": None,
        "age_seconds": None,
        "event_type": attributes.get(wire.ATTR_TYPE),
        "event_id": attributes.get(wire.ATTR_ID),
        "subject": attributes.get(wire.ATTR_SUBJECT),
        "correlation_id": attributes.get(wire.ATTR_CORRELATION),
        "source": attributes.get(wire.ATTR_SOURCE),
        "message_id": message.message_id,
        "published": _text.instant(published) if published else None,
    }
    moment = published
    try:
        envelope = wire.decode_envelope(attributes, publish_time=published)
        moment = envelope.time
        event, _ = wire.decode(bytes(message.data), attributes, registry, publish_time=published)
        entry["data"] = event.redacted()
    except EventError as exc:
        # Why, in the toolkit's words (types and field paths, never values); never the data.
        entry["undecodable"] = str(exc)
    if moment is not None:
        entry["time"] = _text.instant(moment)
        entry["age_seconds"] = round(max((now - moment).total_seconds(), 0.0), 3)
    reason = attributes.get(wire.ATTR_DLQ_REASON)
    if reason:
        entry["dead_letter_reason"] = reason
    return entry


def line(entry: dict[str, Any]) -> str:
    """The readable line of :func:`describe`'s entry."""
    parts = [
        entry["time"] or "-",
        f"{_text.age(entry['age_seconds'])} ago".rjust(10),
        entry["event_type"] or "?",
        f"id={entry['event_id'] or '-'}",
        f"subject={entry['subject'] or '-'}",
        f"correlation={entry['correlation_id'] or '-'}",
    ]
    if "data" in entry:
        parts.append(_text.compact(entry["data"], DATA_WIDTH))
    else:
        parts.append(f"undecodable: {entry['undecodable']}")
    if entry.get("dead_letter_reason") not in (None, entry.get("undecodable")):
        parts.append(f"dead-lettered: {entry['dead_letter_reason']}")
    return "  ".join(parts)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP while cleaning up (each call there has a deadline): a
    second Ctrl-C must not leave the temporary subscription behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
