"""Dead letters can be inspected without removing them, and replayed to their topic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from shared import wire
from shared.delivery import RawMessage
from shared.runtime import PubSubDeadLetterSink
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.cli import main
from shared.tools.dlq import inspect, replay
from shared.tools.provision import provision

pytestmark = pytest.mark.emulator

SUB = "post-liked--timeline_enrichment"


def dead_letter(project: str, event_id: str) -> RawMessage:
    event = PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))
    data, attributes = wire.encode(event, wire.new_envelope(event, source="/t", event_id=event_id))
    raw = RawMessage(
        data=data, attributes=attributes, message_id=f"m-{event_id}", attempt=3, subscription=SUB
    )
    PubSubDeadLetterSink("timeline_enrichment", project).send(
        raw, SUB, "RetryableError: search index down"
    )
    return raw


def test_inspect_shows_the_reason_and_leaves_the_messages(project) -> None:
    provision(TOPOLOGY)
    dead_letter(project, "e1")
    first = inspect(TOPOLOGY, SUB, project=project)
    again = inspect(TOPOLOGY, SUB, project=project)
    assert [(d.event_id, d.reason, d.attempts, d.message_id) for d in first] == [
        ("e1", "RetryableError: search index down", 3, "m-e1")
    ]
    assert [d.event_id for d in again] == ["e1"]


def test_replay_republishes_the_original_message_and_empties_the_queue(project, pull_all) -> None:
    provision(TOPOLOGY)
    raw = dead_letter(project, "e2")
    assert replay(TOPOLOGY, SUB, project=project).replayed == 1
    # Every subscription of the topic gets the replayed message; audit_log's shows it unchanged.
    [message] = pull_all(project, "post-liked--audit_log", expect=1)
    assert dict(message.attributes) == dict(raw.attributes)
    assert message.data == raw.data
    assert inspect(TOPOLOGY, SUB, project=project, timeout=2) == []


def test_the_dlq_commands(project, capsys) -> None:
    provision(TOPOLOGY)
    dead_letter(project, "e3")
    assert main(["dlq", "inspect", SUB, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"event_id": "e3"' in out and "search index down" in out
    assert main(["dlq", "replay", SUB]) == 0
    assert "replayed 1, skipped 0, failed 0" in capsys.readouterr().out


def test_the_publish_command_validates_then_publishes(project, pull_all, capsys) -> None:
    provision(TOPOLOGY)
    assert main(["publish", "post.liked.v1", '{"post_id": "p1"}']) == 1
    assert "liker_id: Field required" in capsys.readouterr().err
    data = (
        '{"post_id": "p1", "liker_id": "u1", "author_id": "u2", "liked_at": "2026-01-01T00:00:00Z"}'
    )
    assert main(["publish", "post.liked.v1", data, "--correlation-id", "c-1"]) == 0
    [message] = pull_all(project, "post-liked--audit_log", expect=1)
    assert message.attributes["ce-correlationid"] == "c-1"


def test_a_dead_letter_replayed_after_the_fix_is_handled_not_dropped_as_a_duplicate(
    project, tmp_path
) -> None:
    """The handler rejected the event (PermanentError), it was fixed, the dead letter replayed:
    the event must be handled. Completing the claim on dead-lettering made the consumer drop the
    replay as a duplicate, and replay then removed it from the dead-letter queue: gone."""
    from shared import PermanentError, Publisher, PullWorker
    from shared.stores.sqlite import SqliteStore
    from tests.conftest import wait_until

    provision(TOPOLOGY)
    store = SqliteStore(tmp_path / "state.db")
    fixed = threading.Event()
    handled: list[str] = []

    def handler(event: PostLiked) -> None:
        if not fixed.is_set():
            raise PermanentError("post not found")
        handled.append(event.post_id)

    event = PostLiked(post_id="p9", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))
    with PullWorker(TOPOLOGY, "timeline_enrichment", handler, store=store):
        Publisher(TOPOLOGY).publish_all([event])
        wait_until(
            lambda: inspect(TOPOLOGY, SUB, project=project, timeout=1),
            timeout=60,
            what="the rejected event on the dead-letter queue",
        )
        fixed.set()
        assert replay(TOPOLOGY, SUB, project=project).replayed == 1
        wait_until(lambda: handled == ["p9"], timeout=60, what="the replayed event handled")
    assert inspect(TOPOLOGY, SUB, project=project, timeout=2) == []
    store.close()
