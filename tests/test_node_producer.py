"""Events from another language: a Node.js service publishes, the Python consumers handle them.

``tests/node/publish.js`` publishes with Google's own Node.js client, ``@google-cloud/pubsub``, as
pinned in ``tests/node/package-lock.json`` (``make node`` installs it), exactly the JSON data and
CloudEvents attributes each test writes here. The example functions run through the local
runtime on the test's emulator project, and the store says what they did.

Consumers are tolerant readers: a field or attribute that a newer producer added is ignored by
the handler and kept, with its value redacted, in the audit log, while data that breaks the
contract is still dead-lettered with a reason naming the field. Like the catalog tests, these
fail, rather than skip, without Node.js or the installed packages.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.events import REDACTED
from shared.stores import AuditEntry, Store, open_store
from shared.system.topology import TOPOLOGY
from shared.tools.dlq import DeadLetter, inspect
from tests.conftest import wait_until
from tests.node_project import NODE_PROJECT, node_for

pytestmark = pytest.mark.emulator

PRODUCER = NODE_PROJECT / "publish.js"
NODE_TIMEOUT = 30  # seconds for one run of the producer; a run takes about 0.5 s
SETTLE_TIMEOUT = 60  # seconds for published events to be handled or dead-lettered
PEEK_TIMEOUT = 0.5  # seconds a look at an empty dead-letter subscription takes
SOURCE = "//node/likes-service"  # the ce-source of the Node service

# The subscriptions whose dead letters these tests watch.
LIKES = ("post-liked--timeline_enrichment", "post-liked--audit_log")
PROFILES = ("user-updated--audit_log",)


def run_producer(project: str, messages: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """Run ``tests/node/publish.js`` over ``messages`` ({topic, data, attributes})."""
    node = node_for("@google-cloud/pubsub")
    return subprocess.run(
        [node, str(PRODUCER), "--timeout", str(NODE_TIMEOUT)],
        input=json.dumps(messages),
        capture_output=True,
        text=True,
        env={**os.environ, "PUBSUB_PROJECT_ID": project},
        timeout=NODE_TIMEOUT + 10,  # publish.js gives up first, and says why
        check=False,
    )


def publish_from_node(project: str, messages: list[dict[str, Any]]) -> None:
    """Publish ``messages`` with the Node.js client; each must be accepted."""
    done = run_producer(project, messages)
    assert done.returncode == 0, done.stderr
    published = [json.loads(line) for line in done.stdout.splitlines()]
    assert [p["id"] for p in published] == [m["attributes"]["ce-id"] for m in messages]
    assert all(p["messageId"] for p in published)


def cloud_event(
    topic: str,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str,
    subject: str,
    time: str,
    extra_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A message as a Node service writes one: JSON data, the CloudEvents binary attributes."""
    return {
        "topic": topic,
        "data": data,
        "attributes": {
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": event_type,
            "ce-source": SOURCE,
            "ce-time": time,
            "ce-subject": subject,
            "ce-datacontenttype": "application/json",
            **(extra_attributes or {}),
        },
    }


def js_time(value: datetime) -> str:
    """``value`` as JavaScript's ``Date.prototype.toISOString`` writes it (milliseconds, Z)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_milliseconds(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def dead_letters(project: str, subscriptions: tuple[str, ...]) -> dict[str, DeadLetter]:
    """``subscription ce-id`` -> dead letter, for each one ``subscriptions`` have (left there)."""
    return {
        f"{name} {letter.event_id}": letter
        for name in subscriptions
        # An empty pull waits until its deadline; a dead letter comes back at once.
        for letter in inspect(TOPOLOGY, name, project=project, timeout=PEEK_TIMEOUT)
    }


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """The SQLite store the ``local_system`` fixture's functions share."""
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def audit(store: Store, subject: str) -> list[AuditEntry]:
    return store.query_audit(subject=subject)


def affinity(store: Store, liker: str) -> dict[str, int]:
    return store.counters("timeline_affinity", liker)


def handled_or_dead_lettered(
    store_handled: Callable[[], object], project: str, subscriptions: tuple[str, ...]
) -> None:
    """Wait until ``store_handled()`` holds or anything is dead-lettered; fail on a dead letter.

    Checking the dead letters while waiting turns a rejected event into its reason at once,
    instead of a timeout a minute later.
    """
    letters: dict[str, DeadLetter] = {}

    def settled() -> bool:
        if store_handled():
            return True
        letters.update(dead_letters(project, subscriptions))
        return bool(letters)

    wait_until(settled, timeout=SETTLE_TIMEOUT, interval=0.1, what="the Node events handled")
    reasons = {key: letter.reason for key, letter in letters.items()}
    assert not reasons, f"dead-lettered instead of handled: {reasons}"


@pytest.mark.e2e
def test_a_like_a_node_service_publishes_per_the_contract_is_handled_once(
    local_system, store, project
) -> None:
    local = local_system(TOPOLOGY, ["timeline_enrichment", "audit_log"])
    liked_at = datetime.now(UTC)
    data = {
        "post_id": "post-n1",
        "liker_id": "ada",
        "author_id": "grace",
        "liked_at": js_time(liked_at),
    }
    publish_from_node(
        project,
        [
            cloud_event(
                "post-liked",
                "post.liked.v1",
                data,
                event_id="node-like-1",
                subject="post-n1",
                time=js_time(liked_at),
            )
        ],
    )
    handled_or_dead_lettered(
        lambda: affinity(store, "ada") and audit(store, "post-n1"), project, LIKES
    )
    local.stop()

    assert affinity(store, "ada") == {"grace": 1}
    [entry] = audit(store, "post-n1")
    assert entry.event_id == "node-like-1" and entry.event_type == "post.liked.v1"
    assert (entry.source, entry.subject, entry.actor) == (SOURCE, "post-n1", "ada")
    assert entry.time == in_milliseconds(liked_at)
    liked_at_read = datetime.fromisoformat(entry.data["liked_at"])
    assert {**entry.data, "liked_at": liked_at_read} == {**data, "liked_at": entry.time}
    assert dead_letters(project, LIKES) == {}


@pytest.mark.e2e
def test_fields_and_attributes_a_newer_node_producer_added_are_ignored_and_audited_redacted(
    local_system, store, project
) -> None:
    """Handled, not dead-lettered: a field the contract does not have, at the top and inside a
    FieldChange; attributes the toolkit does not write; ``ce-time`` with an offset, not Z."""
    local = local_system(TOPOLOGY, ["timeline_enrichment", "audit_log"])
    now = datetime.now(timezone(timedelta(hours=2)))  # a producer in Europe/Paris summer time
    node_attributes = {"ce-partitionkey": "grace", "x-team": "likes-js"}
    like = {
        "post_id": "post-n2",
        "liker_id": "ada",
        "author_id": "grace",
        "liked_at": js_time(now),
        "reaction": "love",  # added by a newer producer
    }
    profile = {
        "user_id": "ada",
        "changed_by": "ada",
        "changes": {
            "display_name": {"old": "Ada", "new": "Ada L.", "changed_via": "mobile-app"},
        },
    }
    publish_from_node(
        project,
        [
            cloud_event(
                "post-liked",
                "post.liked.v1",
                like,
                event_id="node-like-2",
                subject="post-n2",
                time=now.isoformat(timespec="milliseconds"),  # 2026-...T...+02:00
                extra_attributes=node_attributes,
            ),
            cloud_event(
                "user-updated",
                "user.updated.v1",
                profile,
                event_id="node-profile-1",
                subject="ada",
                time=js_time(now),
                extra_attributes=node_attributes,
            ),
        ],
    )
    handled_or_dead_lettered(
        lambda: affinity(store, "ada") and audit(store, "post-n2") and audit(store, "ada"),
        project,
        LIKES + PROFILES,
    )
    local.stop()

    assert affinity(store, "ada") == {"grace": 1}
    [liked] = audit(store, "post-n2")
    assert (liked.event_id, liked.event_type) == ("node-like-2", "post.liked.v1")
    assert liked.time == in_milliseconds(now)  # the same instant, read from +02:00
    assert liked.data["reaction"] == REDACTED  # kept, by name, without its value
    assert {k: liked.data[k] for k in ("post_id", "liker_id", "author_id")} == {
        "post_id": "post-n2",
        "liker_id": "ada",
        "author_id": "grace",
    }
    assert "love" not in json.dumps(liked.data)
    [updated] = audit(store, "ada")
    assert (updated.event_id, updated.event_type) == ("node-profile-1", "user.updated.v1")
    assert updated.data["changes"]["display_name"] == {
        "old": "Ada",
        "new": "Ada L.",
        "changed_via": REDACTED,
    }
    assert "mobile-app" not in json.dumps(updated.data)
    assert dead_letters(project, LIKES + PROFILES) == {}


@pytest.mark.e2e
def test_a_node_like_missing_a_required_field_is_dead_lettered_with_the_field_named(
    local_system, store, project
) -> None:
    """Tolerance covers fields the contract does not have, not fields it requires."""
    local = local_system(TOPOLOGY, ["timeline_enrichment", "audit_log"])
    now = datetime.now(UTC)
    publish_from_node(
        project,
        [
            cloud_event(
                "post-liked",
                "post.liked.v1",
                {"post_id": "post-n3", "liker_id": "ada", "liked_at": js_time(now)},
                event_id="node-like-3",
                subject="post-n3",
                time=js_time(now),
                extra_attributes={"x-team": "likes-js"},
            )
        ],
    )
    letters: dict[str, DeadLetter] = {}

    def both_dead_lettered() -> bool:
        letters.update(dead_letters(project, LIKES))
        return len(letters) == len(LIKES)

    wait_until(
        both_dead_lettered,
        timeout=SETTLE_TIMEOUT,
        interval=0.1,
        what="the like without author_id dead-lettered by both consumers",
    )
    local.stop()

    assert set(letters) == {f"{name} node-like-3" for name in LIKES}
    for letter in letters.values():
        assert letter.reason.startswith("post.liked.v1: data does not fit the model"), letter
        assert "author_id: Field required" in letter.reason, letter.reason
        assert letter.attempts == 1  # at once: retrying cannot make the data fit
    letter = letters["post-liked--timeline_enrichment node-like-3"]
    assert letter.attributes["x-team"] == "likes-js"  # the Node producer's message, as it sent it
    assert json.loads(letter.data) == {
        "post_id": "post-n3",
        "liker_id": "ada",
        "liked_at": js_time(now),
    }
    assert affinity(store, "ada") == {}
    assert audit(store, "post-n3") == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            {"topic": "no-such-topic", "data": {}},
            'message 1 to topic "no-such-topic" was not published: 5 NOT_FOUND: Topic not found',
        ),
        (
            {"topic": "post-liked", "data": {}, "attributes": {"ce-id": 7}},
            'message 1: attribute "ce-id" must be a string, found number',
        ),
    ],
    ids=["unknown-topic", "attribute-not-a-string"],
)
def test_the_node_producer_says_what_failed_and_exits_1(project, message, expected) -> None:
    done = run_producer(project, [message])
    assert done.returncode == 1
    assert done.stderr == f"publish.js: error: {expected}\n"
    assert done.stdout == ""
