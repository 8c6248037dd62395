"""``pubsub-kit demo``: the example system running locally, with a realistic burst of events.

It publishes likes, profile updates (with e-mail addresses, which must never reach the audit
log), order dispatches, a duplicate, and three messages that can never succeed; waits until
every consumer has settled; and reports what each service did.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from shared import wire
from shared.publisher import Publisher
from shared.stores import Store, open_store
from shared.system.events import (
    FieldChange,
    OrderDispatched,
    PostLiked,
    PostLikedV2,
    UserUpdated,
)
from shared.tools.dev import LocalSystem
from shared.tools.dlq import DeadLetter, inspect
from shared.topology import Topology

USERS = ["alice", "bob", "carol", "dan", "erin"]
AFFINITY = "timeline_affinity"  # the collection functions/timeline_enrichment writes
NEVER_SUCCEED = 3  # messages: bad JSON, an undeclared type, a dispatch by an unknown carrier


def format_log_line(name: str, line: str) -> str:
    """One function log line as a short human line (JSON lines are summarised).

    The event id is shown whole: a notification's id and its dispatch's can share any prefix,
    and ``pubsub-kit trace`` takes the id as printed.
    """
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return f"{name:<20} {line}"
    if not isinstance(entry, dict):
        return f"{name:<20} {line}"
    parts = [f"{name:<20}", f"{entry.get('severity', ''):<7}", str(entry.get("message", ""))]
    for key, label in (("event_id", "id"), ("attempt", "attempt"), ("reason", "reason")):
        value = entry.get(key)
        if value not in (None, ""):
            text = str(value)
            parts.append(f"{label}={text}")
    if "duration_ms" in entry:
        parts.append(f"{entry['duration_ms']}ms")
    if "error" in entry:
        parts.append(f"error={entry['error']}")
    return " ".join(parts)


def demo_events(seed: int = 7) -> tuple[list[Any], dict[str, int]]:
    """The burst of valid events, and how many of each the consumers should see."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    likes: list[PostLiked | PostLikedV2] = []
    for i in range(40):
        liker, author = rng.sample(USERS, 2)
        like = PostLiked(
            post_id=f"post-{author}-{rng.randint(1, 5)}",
            liker_id=liker,
            author_id=author,
            liked_at=now - timedelta(minutes=40 - i),
        )
        # The last ten come from a producer already on v2: both versions flow side by side.
        likes.append(
            like
            if i < 30
            else PostLikedV2(**like.model_dump(), reaction=("like", "love", "laugh", "wow")[i % 4])
        )
    updates = [
        UserUpdated(
            user_id=user,
            changed_by=user if i else "support-agent-7",
            changes={
                "email": FieldChange(old=f"{user}@old.example.com", new=f"{user}@example.com"),
                "display_name": FieldChange(old=user, new=user.title()),
            },
            email=f"{user}@example.com",
        )
        for i, user in enumerate(USERS[:3])
    ]
    orders = [
        OrderDispatched(
            order_id=f"order-{n}", customer_id=customer, carrier=carrier, dispatched_at=now
        )
        for n, (customer, carrier) in enumerate(
            [("alice", "dhl"), ("bob", "ups"), ("carol", "royal-mail"), ("dan", "pigeon-post")],
            1001,
        )
    ]
    return [*likes, *updates, *orders], {
        "likes": len(likes),
        "updates": len(updates),
        "orders": len(orders),
    }


def publish_burst(system: LocalSystem, topology: Topology, out: TextIO) -> dict[str, int]:
    """Publish the demo burst; returns the counts the report is checked against."""
    publisher = Publisher(topology, project=system.project, source="/services/demo")
    events, counts = demo_events()
    ids = publisher.publish_all(events)
    # The first like again, with the same event id: a redelivery the consumers must absorb.
    first = events[0]
    duplicate_id = f"demo-dup-{uuid.uuid4()}"
    publisher.publish(first, event_id=duplicate_id).result()
    publisher.publish(first, event_id=duplicate_id).result()
    # Two messages no consumer can ever handle: bad JSON, and an event type nobody declared.
    raw = publisher.client
    topic = publisher.topic_path("post-liked")
    base = {
        wire.ATTR_SPECVERSION: "1.0",
        wire.ATTR_SOURCE: "/services/demo",
        wire.ATTR_CONTENT_TYPE: "application/json",
    }
    raw.publish(
        topic,
        b"{not json",
        **base,
        **{wire.ATTR_ID: "demo-malformed", wire.ATTR_TYPE: "post.liked.v1"},
    ).result()
    raw.publish(
        topic, b"{}", **base, **{wire.ATTR_ID: "demo-unknown", wire.ATTR_TYPE: "post.unliked.v1"}
    ).result()
    # Audit: every valid event once (duplicates absorbed), plus the notifications for the 3
    # dispatches with a known carrier. Dead letters: the 2 bad messages reach both consumers of
    # post-liked, the unknown carrier one order_notifications.
    expected = {"audit": len(events) + 1 + (counts["orders"] - 1), "dead_letters": 2 + 2 + 1}
    out.write(
        f"published {len(ids)} events, one of them twice, and 2 malformed messages; "
        f"{NEVER_SUCCEED} messages can never succeed (the 2 malformed ones and a dispatch with an "
        f"unknown carrier): {expected['dead_letters']} dead letters expected\n"
    )
    return expected


def wait_settled(
    system: LocalSystem, topology: Topology, store: Store, expected: dict[str, int], timeout: float
) -> tuple[int, list[DeadLetter]]:
    """Poll until the expected audit entries and dead letters are there, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    audit = 0
    # The audit count is a cheap local query; reading every dead-letter subscription is six pulls,
    # so that waits until the audit log is complete.
    while time.monotonic() < deadline:
        audit = len(store.query_audit(limit=10_000))
        if audit >= expected["audit"]:
            break
        time.sleep(0.2)
    letters = all_dead_letters(system, topology)
    while len(letters) < expected["dead_letters"] and time.monotonic() < deadline:
        time.sleep(0.5)
        letters = all_dead_letters(system, topology)
    return audit, letters


def all_dead_letters(system: LocalSystem, topology: Topology) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    for name in sorted(topology.subscriptions):
        letters.extend(inspect(topology, name, project=system.project, timeout=2))
    return letters


def report(topology: Topology, store: Store, letters: list[DeadLetter], out: TextIO) -> None:
    out.write("\n== Timeline affinity (likes given, by author) ==\n")
    for user in USERS:
        counts = store.counters(AFFINITY, user)
        ranked = ", ".join(
            f"{a} {n}" for a, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        out.write(f"  {user:<6} -> {ranked or '(none)'}\n")
    entries = store.query_audit(limit=10_000)
    out.write(f"\n== Audit log: {len(entries)} entries ==\n")
    by_type: dict[str, int] = {}
    for entry in entries:
        by_type[entry.event_type] = by_type.get(entry.event_type, 0) + 1
    for event_type, n in sorted(by_type.items()):
        out.write(f"  {event_type:<28} {n}\n")
    out.write("  profile changes (sensitive values redacted):\n")
    for entry in entries:
        if entry.event_type == "user.updated.v1":
            out.write(
                f"    {entry.time:%H:%M:%S} {entry.actor} changed {entry.subject}: "
                f"{json.dumps(entry.data['changes'], sort_keys=True)}\n"
            )
    out.write("  notifications and the dispatches that caused them (same correlation id):\n")
    by_id = {e.event_id: e for e in entries}
    for entry in entries:
        if entry.event_type == "notification.requested.v1":
            cause = next(
                (
                    e
                    for e in by_id.values()
                    if e.event_type == "order.dispatched.v1"
                    and e.correlation_id == entry.correlation_id
                ),
                None,
            )
            out.write(
                f"    {entry.subject} <- {cause.subject if cause else '?'} "
                f"correlation={entry.correlation_id}\n"
            )
    out.write(f"\n== Dead letters: {len(letters)} ==\n")
    for letter in letters:
        out.write(
            f"  {letter.subscription:<40} {letter.event_type or '?':<18} "
            f"id={letter.event_id}: {letter.reason}\n"
        )


def run_demo(
    topology: Topology,
    *,
    port_base: int,
    keep_running: bool,
    timeout: float,
    store: str = "sqlite",
    out: TextIO = sys.stdout,
) -> int:
    """Run the system, publish the burst, report; 0 when everything settled as expected."""
    from shared.tools.dev import record_traces
    from shared.tools.project import state_dir

    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    db = state_dir() / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        (db.parent / (db.name + suffix)).unlink(missing_ok=True)
    lock_out = threading.Lock()

    def on_line(name: str, line: str) -> None:
        with lock_out:
            out.write(format_log_line(name, line) + "\n")
            out.flush()

    store_url = "firestore" if store == "firestore" else f"sqlite:///{db}"
    system = LocalSystem(
        topology,
        # A fresh emulator project per run: nothing left over from an earlier run interferes
        # (the Firestore emulator keeps each project's data apart too).
        project=f"pubsub-kit-demo-{stamp}",
        store_url=store_url,
        port_base=port_base,
        on_line=on_line,
        trace_dir=record_traces("demo"),
    )
    out.write(f"starting the system (project {system.project}, store {store}) ...\n")
    try:
        system.start()
        for fn in system.functions.values():
            out.write(f"  {fn.name:<20} {fn.url}\n")
        expected = publish_burst(system, topology, out)
        state = open_store(store_url)
        audit, letters = wait_settled(system, topology, state, expected, timeout)
        with lock_out:
            report(topology, state, letters, out)
            ok = audit == expected["audit"] and len(letters) == expected["dead_letters"]
            out.write(
                "\nall events settled as expected\n"
                if ok
                else f"\nNOT SETTLED: audit {audit}/{expected['audit']}, "
                f"dead letters {len(letters)}/{expected['dead_letters']}\n"
            )
        with lock_out:
            show_one_trace(state, out)
        if keep_running:
            out.write("\nstill running; Ctrl-C stops it\n")
            _wait_for_interrupt()
        return 0 if ok else 1
    finally:
        system.stop()


def show_one_trace(store: Store, out: TextIO, timeout: float = 10.0) -> None:
    """Print the trace of one dispatch that led to a notification: every hop, every service."""
    from shared.tools import traces
    from shared.tools.project import trace_dir

    entries = store.query_audit(limit=10_000)
    notified = {e.correlation_id for e in entries if e.event_type == "notification.requested.v1"}
    dispatch = next(
        (
            e
            for e in entries
            if e.event_type == "order.dispatched.v1" and e.correlation_id in notified
        ),
        None,
    )
    if dispatch is None:
        return
    # The last span (the audit of the notification) ends just after its audit entry is stored.
    deadline = time.monotonic() + timeout
    found = traces.traces_of(dispatch.event_id, trace_dir())
    while sum(len(t.spans) for t in found) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)  # poll: bounded by the deadline
        found = traces.traces_of(dispatch.event_id, trace_dir())
    out.write(f"\n== One order across services: pubsub-kit trace {dispatch.event_id} ==\n")
    for trace in found:
        out.write(traces.render(trace) + "\n")


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(0.5)  # short naps: see _dev in cli.py
    except KeyboardInterrupt:
        pass
