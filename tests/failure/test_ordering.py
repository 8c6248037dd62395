"""One ordering key through failures: a handler that fails mid-sequence, a publish that fails.

An ordered consumer must apply the events of a key in publish order, each once, even when one of
them fails and is retried; a publisher whose publish on a key fails must say so, and later
publishes on that key must go through (the toolkit resumes the key the library paused).
"""

from __future__ import annotations

import collections
import json
import threading
from datetime import UTC, datetime

import pytest
from google.cloud import pubsub_v1

from shared import Delivery, Publisher, PublishError, PullWorker, RetryableError
from shared.stores.sqlite import SqliteStore
from shared.system.events import PostLiked
from shared.tools.provision import provision
from shared.topology import Consumer, RetryPolicy, Topic, Topology
from tests.conftest import wait_until
from tests.failure.conftest import Tally

pytestmark = pytest.mark.emulator

KEY = "user-1"
TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [
        Consumer(
            "ordered_likes",
            topics=["post-liked"],
            ordered=True,
            ack_deadline=10,
            retry=RetryPolicy(0.2, 0.5),
        )
    ],
)
SUB = "post-liked--ordered_likes"
FAILING = "p5"  # fails on its first two attempts, in the middle of p0..p9


def like(i: int) -> PostLiked:
    return PostLiked(post_id=f"p{i}", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


def check_order(tally: Tally, applied: list[str], expected: list[str]) -> None:
    """Fill ``tally`` from the applied sequence: lost, duplicates, and whether the order held."""
    counts = collections.Counter(applied)
    tally.applied = len(counts)
    tally.lost = len(set(expected) - set(counts))
    tally.duplicates = sum(n - 1 for n in counts.values())
    tally.notes["in_order"] = applied == expected


def test_a_failing_event_holds_back_the_rest_of_its_key(project, tmp_path, pull_all, tally):
    provision(TOPOLOGY)
    expected = [f"p{i}" for i in range(10)]
    applied: list[str] = []
    attempts: list[tuple[str, int | None]] = []
    lock = threading.Lock()

    def apply_in_order(event: PostLiked, delivery: Delivery) -> None:
        with lock:
            attempts.append((event.post_id, delivery.attempt))
            if event.post_id == FAILING and (delivery.attempt or 0) < 3:
                raise RetryableError(f"dependency unavailable on attempt {delivery.attempt}")
            applied.append(event.post_id)

    store = SqliteStore(tmp_path / "state.db")
    with Publisher(TOPOLOGY) as publisher:
        tally.published = len(publisher.publish_all([like(i) for i in range(10)], ordering_key=KEY))
    with PullWorker(TOPOLOGY, "ordered_likes", apply_in_order, store=store):
        wait_until(lambda: len(set(applied)) == 10, timeout=30, what="p0..p9 applied")
    # Stopped: its in-flight messages were answered. A redelivery still queued shows up here.
    leftover = pull_all(project, SUB, quiet=2)
    store.close()

    tally.delivered = len(attempts)
    tally.notes["attempts_of_" + FAILING] = [a for p, a in attempts if p == FAILING]
    tally.notes["delivery_order"] = ",".join(p for p, _ in attempts)
    tally.notes["left_in_subscription"] = len(leftover)
    check_order(tally, applied, expected)
    tally.check()
    assert applied == expected, f"applied out of publish order: {applied}"
    assert [a for p, a in attempts if p == FAILING] == [1, 2, 3]


def _ordered_check_subscription(project: str, name: str) -> str:
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(
        request={
            "name": f"projects/{project}/subscriptions/{name}",
            "topic": f"projects/{project}/topics/post-liked",
            "enable_message_ordering": True,
        }
    )
    subscriber.close()
    return name


def test_a_failed_ordered_publish_surfaces_and_the_key_resumes(project, pull_all, tally):
    """p0..p4 go through; the topic is deleted, so p5 fails (and the library pauses the key);
    the topic is back, and p6..p9 on the same key go through in order."""
    admin = pubsub_v1.PublisherClient()
    topic = f"projects/{project}/topics/post-liked"
    admin.create_topic(request={"name": topic})
    first = _ordered_check_subscription(project, "post-liked--first")
    confirmed: list[str] = []
    errors: list[BaseException] = []
    with Publisher(TOPOLOGY) as publisher:

        def publish(i: int) -> None:
            future = publisher.publish(like(i), ordering_key=KEY, event_id=f"evt-{i}")
            try:
                future.result(timeout=30)
                confirmed.append(f"p{i}")
            except PublishError as exc:
                errors.append(exc)

        for i in range(5):
            publish(i)
        before = [json.loads(m.data)["post_id"] for m in pull_all(project, first, expect=5)]
        admin.delete_topic(request={"topic": topic})
        publish(5)
        admin.create_topic(request={"name": topic})
        second = _ordered_check_subscription(project, "post-liked--second")
        for i in range(6, 10):
            publish(i)
        after = [json.loads(m.data)["post_id"] for m in pull_all(project, second, expect=4)]
    admin.transport.close()

    assert [type(e) for e in errors] == [PublishError], errors  # p5, and nothing else
    [error] = errors
    assert isinstance(error, PublishError) and error.event_id == "evt-5"
    assert "404" in str(error), str(error)  # the topic was not found
    tally.published = len(confirmed)
    tally.delivered = len(before) + len(after)
    tally.notes["publish_errors"] = len(errors)
    check_order(tally, before + after, confirmed)
    tally.check()
    assert confirmed == [f"p{i}" for i in range(10) if i != 5]
    assert (before, after) == (confirmed[:5], confirmed[5:])
