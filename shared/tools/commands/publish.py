"""``pubsub-kit publish TYPE DATA``: publish events, every one validated before the first is sent.

DATA is the event's data as a JSON object, ``@FILE`` or ``-`` (standard input). A file or
standard input holds one event (a JSON object, on as many lines as it likes) or many, one JSON
object per line. Every event is checked against its model, as strictly as the publisher does,
before anything is sent; an error names the line. Then Pub/Sub's reachability, then the
events, each bounded by the publisher's own deadline.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.errors import EventError, ToolkitError
from shared.events import Event
from shared.topology import Topology

NAME = "publish"
SOURCE = "/cli/pubsub-kit"  # ce-source of what this command publishes


def rfc3339(text: str) -> datetime:
    """An argparse type: an RFC 3339 timestamp with its offset, e.g. 2026-01-31T12:00:00Z."""
    expected = (
        f"expected an RFC 3339 time with an offset, e.g. 2026-01-31T12:00:00Z; found {text!r}"
    )
    if "T" not in text.upper():
        raise argparse.ArgumentTypeError(expected)
    try:
        value = datetime.fromisoformat(text.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(expected)
    return value


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="publish events, validated against their model first",
        description="Publish events of one type to their topic. DATA is the event's data as a "
        "JSON object, @FILE, or - for standard input; a file or standard input may hold one "
        "event per line (JSON lines). Every event is validated before any is published. "
        "Prints each event's id (ce-id) and its Pub/Sub message id.",
    )
    p.add_argument("event_type", metavar="TYPE", help="versioned event type, e.g. post.liked.v1")
    p.add_argument(
        "data",
        metavar="DATA",
        help="a JSON object, @FILE, or - for standard input (one event per line for many)",
    )
    p.add_argument("--ordering-key", help="deliver in order with other events of this key")
    p.add_argument("--correlation-id", help="default: each new event's id")
    p.add_argument(
        "--time",
        type=rfc3339,
        metavar="T",
        help="the events' time (ce-time), RFC 3339, e.g. 2026-01-31T12:00:00Z (default now)",
    )
    p.add_argument("--project", help="project id (default PUBSUB_PROJECT_ID)")
    p.add_argument("--json", action="store_true", help="print one JSON object per event")


def run(args: argparse.Namespace, topology: Topology) -> int:
    from shared.config import project_id
    from shared.publisher import Publisher
    from shared.tools.reach import require_pubsub

    topology.registry.model_for(args.event_type)  # an unknown type, before reading a file
    events = read_events(topology, args.event_type, args.data)
    project = project_id(args.project)
    require_pubsub(project)
    with Publisher(topology, project=project, source=SOURCE) as publisher:
        futures = [
            publisher.publish(
                event,
                ordering_key=args.ordering_key,
                correlation_id=args.correlation_id,
                time=args.time,
            )
            for _, event in events
        ]
        failures = []
        for (line, _), future in zip(events, futures, strict=True):
            try:
                message_id = future.result(timeout=publisher.settings.timeout + 5)
            except (ToolkitError, TimeoutError) as exc:
                failures.append(f"{_where(args.data, line, len(events))}{exc}")
                continue
            if args.json:
                row = {
                    "event_id": future.event_id,
                    "message_id": message_id,
                    "event_type": args.event_type,
                    "topic": future.topic,
                }
                print(json.dumps(row), flush=True)
            else:
                print(
                    f"published {args.event_type} to {future.topic}: event {future.event_id}, "
                    f"message {message_id}",
                    flush=True,
                )
    if failures:
        topic = topology.topic_for(events[0][1]).name
        if len(events) == 1:
            raise ToolkitError(_missing_topic(project, topic) or failures[0])
        raise ToolkitError(
            f"{len(failures)} of {len(events)} events were not published; the first: "
            f"{_missing_topic(project, topic) or failures[0]}"
        )
    return 0


def _missing_topic(project: str, topic: str) -> str | None:
    """A sentence when ``topic`` does not exist in ``project`` (asked after a publish failed)."""
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    try:
        client.get_topic(request={"topic": f"projects/{project}/topics/{topic}"}, timeout=5)
    except exceptions.NotFound:
        return (
            f"topic {topic!r} does not exist in project {project!r}; create the topology "
            f"there first: pubsub-kit provision --project {project}"
        )
    except Exception:  # noqa: BLE001 - no permission to look, or no answer: say what failed
        return None
    finally:
        client.transport.close()
    return None


def read_events(topology: Topology, event_type: str, data: str) -> list[tuple[int, Event]]:
    """Every event of ``data`` (JSON, ``@FILE`` or ``-``) with its line number, validated.

    Raises:
        ToolkitError: unreadable, not JSON, or not fitting the model; names the line.
    """
    if data == "-":
        if sys.stdin.isatty():
            print(
                "reading events from standard input, one JSON object per line; end with Ctrl-D",
                file=sys.stderr,
            )
        try:
            text, origin = sys.stdin.read(), "standard input"
        except UnicodeDecodeError:
            raise ToolkitError("cannot read standard input: not UTF-8 text") from None
    elif data.startswith("@"):
        text, origin = _read(data[1:]), data[1:]
    else:
        return [(1, _event(topology, event_type, data, "DATA"))]
    whole = _json_or_none(text)
    if isinstance(whole, dict):  # one event, however many lines it spans
        return [(1, _event(topology, event_type, text, origin))]
    events = [
        (number, _event(topology, event_type, line, f"line {number} of {origin}"))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not events:
        raise ToolkitError(f"{origin} holds no event: expected a JSON object, or one per line")
    return events


def _event(topology: Topology, event_type: str, text: str, where: str) -> Event:
    payload = _json_or_none(text)
    if payload is None:
        try:
            json.loads(text)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "unreadable number"
            raise ToolkitError(f"{where}: not JSON ({detail}); expected a JSON object") from None
        except RecursionError:
            raise ToolkitError(f"{where}: JSON nested too deeply to read") from None
    if not isinstance(payload, dict):
        raise ToolkitError(
            f"{where}: expected a JSON object of the event's data, found a JSON "
            f"{_json_kind(payload)}"
        )
    try:
        return topology.registry.parse(event_type, payload)
    except EventError as exc:  # names fields and rules, never values
        raise ToolkitError(f"{where}: {exc}") from None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _read(path: str) -> str:
    if not path:
        raise ToolkitError("DATA is @ without a file name; expected @FILE, e.g. @events.jsonl")
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolkitError(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc.strerror or exc}") from None


def _where(data: str, line: int, count: int) -> str:
    if count == 1:
        return ""
    origin = "standard input" if data == "-" else data[1:]
    return f"line {line} of {origin}: "
