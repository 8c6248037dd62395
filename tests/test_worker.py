"""The pull worker keeps the ack contract on the real emulator."""

from __future__ import annotations

import collections
import threading
from datetime import UTC, datetime

import pytest

from shared import Delivery, PermanentError, Publisher, PullWorker, RetryableError
from shared.delivery import RawMessage
from shared.stores.sqlite import SqliteStore
from shared.system.events import PostLiked
from shared.tools.provision import provision
from shared.topology import Consumer, RetryPolicy, Topic, Topology
from shared.worker import OrderGate, order_gates
from tests.conftest import wait_until

pytestmark = pytest.mark.emulator

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [Consumer("worker", topics=["post-liked"], ack_deadline=10, retry=RetryPolicy(0.2, 0.5))],
)
SUB = "post-liked--worker"


def like(i: int) -> PostLiked:
    return PostLiked(post_id=f"p{i}", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


@pytest.fixture
def setup(project, tmp_path):
    provision(TOPOLOGY)
    return Publisher(TOPOLOGY), SqliteStore(tmp_path / "state.db")


def test_returning_acks_once(setup, pull_all, project) -> None:
    publisher, store = setup
    seen: list[str] = []
    with PullWorker(TOPOLOGY, "worker", lambda e: seen.append(e.post_id), store=store):
        publisher.publish_all([like(i) for i in range(10)])
        wait_until(lambda: len(seen) >= 10, what="10 handled events")
    assert sorted(seen) == sorted(f"p{i}" for i in range(10))
    assert pull_all(project, SUB, quiet=2) == []  # nothing left to redeliver


def test_retryable_error_is_redelivered_with_the_attempt_count(setup, pull_all, project) -> None:
    publisher, store = setup
    attempts: list[int | None] = []
    effects: collections.Counter[str] = collections.Counter()

    def flaky(event: PostLiked, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if len(attempts) < 3:
            raise RetryableError("dependency unavailable")
        effects[delivery.event_id] += 1

    with PullWorker(TOPOLOGY, "worker", flaky, store=store):
        publisher.publish(like(1)).result()
        wait_until(lambda: sum(effects.values()) == 1, what="the third attempt")
    assert attempts == [1, 2, 3]
    assert list(effects.values()) == [1]


def test_permanent_error_dead_letters_once_with_its_reason(setup, pull_all, project) -> None:
    publisher, store = setup
    calls: list[str] = []

    def reject(event: PostLiked) -> None:
        calls.append(event.post_id)
        raise PermanentError("post was deleted")

    with PullWorker(TOPOLOGY, "worker", reject, store=store):
        publisher.publish(like(7), event_id="evt-7").result()
        [letter] = pull_all(project, SUB + "--dlq", expect=1)
    assert calls == ["p7"]
    assert letter.attributes["pubsubkit-dlq-reason"] == "PermanentError: post was deleted"
    assert letter.attributes["ce-id"] == "evt-7"
    assert letter.attributes["pubsubkit-dlq-subscription"] == SUB


def test_undecodable_message_is_dead_lettered_and_good_ones_still_flow(
    setup, pull_all, project
) -> None:
    publisher, store = setup
    seen: list[str] = []
    with PullWorker(TOPOLOGY, "worker", lambda e: seen.append(e.post_id), store=store):
        topic = publisher.topic_path("post-liked")
        publisher.client.publish(
            topic, b"not json", **{"ce-id": "bad", "ce-type": "post.liked.v1", "ce-source": "/test"}
        ).result()
        publisher.publish_all([like(i) for i in range(5)])
        [letter] = pull_all(project, SUB + "--dlq", expect=1)
        wait_until(lambda: len(seen) == 5, what="the good messages")
    assert letter.attributes["pubsubkit-dlq-reason"] == "post.liked.v1: message data is not JSON"
    assert letter.data == b"not json"


def test_stop_lets_in_flight_handlers_finish_and_ack(setup, pull_all, project) -> None:
    publisher, store = setup
    started, release, done = threading.Event(), threading.Event(), []

    def slow(event: PostLiked) -> None:
        started.set()
        release.wait(30)
        done.append(event.post_id)

    worker = PullWorker(TOPOLOGY, "worker", slow, store=store)
    worker.start()
    publisher.publish(like(1)).result()
    assert started.wait(30)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop() must wait for the in-flight handler"
    release.set()
    stopper.join(30)
    assert not stopper.is_alive() and done == ["p1"]
    assert pull_all(project, SUB, quiet=2) == []  # it was acked, not abandoned


def test_a_message_over_4_mib_does_not_stall_the_subscription(setup, project) -> None:
    """Pub/Sub takes 10 MB; the emulator's default channel refused anything over 4 MiB, which
    stopped the whole stream: 0 of 21 delivered. Now the big one is dead-lettered (its data is
    not an event) and the small ones flow, and the dead letter can be inspected."""
    from shared import wire
    from shared.tools.dlq import inspect

    publisher, store = setup
    seen: list[str] = []
    big = b"{" + b" " * 5_000_000 + b"}"  # 5 MB of JSON that is no post.liked.v1
    attributes = {
        "ce-specversion": "1.0",
        "ce-id": "big",
        "ce-source": "/t",
        "ce-type": "post.liked.v1",
    }
    with PullWorker(TOPOLOGY, "worker", lambda e: seen.append(e.post_id), store=store):
        publisher.client.publish(publisher.topic_path("post-liked"), big, **attributes).result()
        publisher.publish_all([like(i) for i in range(20)])
        wait_until(lambda: len(seen) >= 20, timeout=60, what="20 small events past a 5 MB one")
        # inspect() answers at once, so wait for the dead letter here (it used to wait 10 s).
        wait_until(lambda: inspect(TOPOLOGY, SUB, project=project), timeout=30, what="it")
    letters = inspect(TOPOLOGY, SUB, project=project)
    assert [(d.event_id, len(d.data)) for d in letters] == [("big", len(big))]
    assert (
        letters[0].attributes[wire.ATTR_DLQ_REASON].startswith("post.liked.v1: data does not fit")
    )


def test_claims_last_as_long_as_the_worker_may_hold_a_message(tmp_path) -> None:
    """The library extends a message's lease up to max_lease_duration; a claim that ended
    sooner (it lasted 60 s while leases ran to an hour) let a redelivery run beside a live
    handler. A claim lasts as long as the worker may keep the message."""
    from shared import WorkerSettings

    worker = PullWorker(
        TOPOLOGY,
        "worker",
        lambda e: None,
        store=SqliteStore(tmp_path / "state.db"),
        settings=WorkerSettings(max_lease_duration=900),
        project="p",
    )
    assert worker.pipeline.lease == 900
    short = PullWorker(
        TOPOLOGY,
        "worker",
        lambda e: None,
        settings=WorkerSettings(max_lease_duration=5),
        project="p",
    )
    assert short.pipeline.lease == TOPOLOGY.consumer("worker").handler_budget == 60  # never less


def keyed(message_id: str, attempt: int = 1, key: str | None = "k") -> RawMessage:
    return RawMessage(b"{}", {}, message_id=message_id, ordering_key=key, attempt=attempt)


def test_after_a_failure_the_rest_of_its_key_waits_behind_it() -> None:
    gate = OrderGate(max_attempts=5, hold=60, clock=lambda: 0.0)
    assert gate.admit(keyed("m5"))
    gate.settle(keyed("m5"), acked=False)
    assert not gate.admit(keyed("m6"))  # nacked unhandled: it comes back behind m5
    assert gate.admit(keyed("m1", key="other"))  # other keys flow
    assert gate.admit(keyed("m1", key=None))  # and messages without a key
    assert gate.admit(keyed("m5", attempt=2))  # the failed one, back
    gate.settle(keyed("m5", attempt=2), acked=True)
    assert gate.admit(keyed("m6", attempt=2))


def test_a_failed_message_on_its_last_attempt_does_not_hold_its_key() -> None:
    gate = OrderGate(max_attempts=5, hold=60, clock=lambda: 0.0)
    gate.settle(keyed("m5", attempt=4), acked=False)
    assert not gate.admit(keyed("m6"))
    gate.settle(keyed("m5", attempt=5), acked=False)  # Pub/Sub dead-letters it now
    assert gate.admit(keyed("m6"))


def test_a_key_is_held_no_longer_than_hold_seconds() -> None:
    now = [0.0]
    gate = OrderGate(max_attempts=5, hold=30, clock=lambda: now[0])
    gate.settle(keyed("m5"), acked=False)
    now[0] = 30.0
    assert not gate.admit(keyed("m6"))
    now[0] = 30.5  # m5 went elsewhere (another instance) and never came back here
    assert gate.admit(keyed("m6"))


def test_only_ordered_consumers_get_a_gate() -> None:
    ordered = Topology(
        [Topic("post-liked", events=[PostLiked])],
        [
            Consumer("worker", topics=["post-liked"], ordered=True, retry=RetryPolicy(1, 20)),
            Consumer("other", topics=["post-liked"]),
        ],
    )
    gates = order_gates(ordered, ["post-liked--worker", "post-liked--other"])
    assert list(gates) == ["post-liked--worker"]
    assert (gates["post-liked--worker"].max_attempts, gates["post-liked--worker"].hold) == (5, 80)
