"""The publisher against the real emulator: typed, flushed at exit, ordered, fork-safe and lazy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from google.cloud import pubsub_v1

from shared import Publisher, PublishError, ToolkitError, Topic, Topology
from shared.system.events import OrderDispatched, PostLiked
from tests.conftest import REPO

pytestmark = pytest.mark.emulator

TOPOLOGY = Topology([Topic("post-liked", events=[PostLiked])])


def like(i: int) -> PostLiked:
    return PostLiked(post_id=f"p{i}", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


def make_topic(project: str, name: str, *, ordered: bool = False) -> str:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(request={"name": f"projects/{project}/topics/{name}"})
    subscriber.create_subscription(
        request={
            "name": f"projects/{project}/subscriptions/{name}-check",
            "topic": f"projects/{project}/topics/{name}",
            "enable_message_ordering": ordered,
        }
    )
    return f"{name}-check"


def test_published_event_carries_cloudevents_attributes(project, pull_all) -> None:
    check = make_topic(project, "post-liked")
    message_id = Publisher(TOPOLOGY).publish(like(1), correlation_id="corr-9").result(timeout=30)
    [message] = pull_all(project, check, expect=1)
    assert message.message_id == message_id
    attrs = dict(message.attributes)
    assert attrs["ce-type"] == "post.liked.v1" and attrs["ce-specversion"] == "1.0"
    assert attrs["ce-subject"] == "p1" and attrs["ce-correlationid"] == "corr-9"
    assert attrs["ce-traceparent"].startswith("00-")
    assert json.loads(message.data)["post_id"] == "p1"


def test_a_process_that_publishes_and_exits_loses_nothing(project, pull_all) -> None:
    check = make_topic(project, "post-liked")
    script = textwrap.dedent(
        """
        from datetime import datetime, timezone
        from shared import Publisher, Topic, Topology
        from shared.system.events import PostLiked
        publisher = Publisher(Topology([Topic("post-liked", events=[PostLiked])]))
        now = datetime.now(timezone.utc)
        for i in range(5000):
            publisher.publish(PostLiked(post_id=f"p{i}", liker_id="u", author_id="a", liked_at=now))
        # no flush, no wait: the process simply ends here
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    messages = pull_all(project, check, expect=5000, timeout=60)
    assert sorted(json.loads(m.data)["post_id"] for m in messages) == sorted(
        f"p{i}" for i in range(5000)
    )


def test_ordering_key_recovers_after_a_failure_and_keeps_order(project, pull_all) -> None:
    publisher = Publisher(TOPOLOGY)
    # The topic does not exist yet: the publish fails and the library pauses the key.
    failed = publisher.publish(like(0), ordering_key="user-1", event_id="evt-0")
    with pytest.raises(PublishError) as info:
        failed.result(timeout=30)
    assert (info.value.topic, info.value.event_id) == ("post-liked", "evt-0")

    check = make_topic(project, "post-liked", ordered=True)
    futures = [publisher.publish(like(i), ordering_key="user-1") for i in range(1, 21)]
    assert all(f.result(timeout=30) for f in futures)
    messages = pull_all(project, check, expect=20)
    assert [json.loads(m.data)["post_id"] for m in messages] == [f"p{i}" for i in range(1, 21)]


def test_publish_all_waits_for_every_message(project, pull_all) -> None:
    check = make_topic(project, "post-liked")
    ids = Publisher(TOPOLOGY).publish_all([like(i) for i in range(50)])
    assert len(set(ids)) == 50
    assert {m.message_id for m in pull_all(project, check, expect=50)} == set(ids)


def test_invalid_input_is_refused_before_any_io(monkeypatch) -> None:
    monkeypatch.delenv("PUBSUB_PROJECT_ID", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    publisher = Publisher(TOPOLOGY)
    with pytest.raises(ToolkitError, match="takes an Event model instance; found dict"):
        publisher.publish({"post_id": "p1"})  # type: ignore[arg-type]
    with pytest.raises(ToolkitError, match=r"order.dispatched.v1.*not declared on any topic"):
        publisher.publish(
            OrderDispatched(
                order_id="o",
                customer_id="c",
                carrier="dhl",
                dispatched_at=datetime.now(UTC),
            )
        )
    assert publisher._sender.peek() is None and publisher._ordered.peek() is None  # no I/O


def test_a_forked_child_gets_its_own_client(project, pull_all) -> None:
    import multiprocessing

    check = make_topic(project, "post-liked")
    publisher = Publisher(TOPOLOGY)
    publisher.publish(like(0)).result(timeout=30)

    def child() -> None:
        publisher.publish(like(1)).result(timeout=30)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert sorted(json.loads(m.data)["post_id"] for m in pull_all(project, check, expect=2)) == [
        "p0",
        "p1",
    ]


def test_importing_the_toolkit_does_not_load_the_pubsub_client() -> None:
    code = (
        "import sys, runpy; sys.path.insert(0, 'functions/timeline_enrichment');"
        "runpy.run_path('functions/timeline_enrichment/main.py');"
        "print('google.cloud.pubsub_v1' in sys.modules, 'google.cloud.firestore' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "False"]


def test_publish_all_gives_up_with_a_clear_error_when_pubsub_is_unreachable(monkeypatch) -> None:
    import socket

    from shared import PublisherSettings

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("PUBSUB_PROJECT_ID", "nowhere")
    publisher = Publisher(TOPOLOGY, PublisherSettings(timeout=1.0, flush_timeout=0.5))
    with pytest.raises(PublishError, match=r"3 of 3 messages .*not accepted within 1 s") as info:
        publisher.publish_all([like(i) for i in range(3)])
    assert info.value.topic == "post-liked" and info.value.event_id


def test_a_publish_to_an_unreachable_pubsub_fails_within_the_timeout(monkeypatch) -> None:
    """The library alone retries an unreachable Pub/Sub for up to 10 minutes."""
    from shared import PublisherSettings
    from shared.tools.ports import free_ports

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_ports()[0]}")  # nothing there
    publisher = Publisher(TOPOLOGY, PublisherSettings(timeout=1.0), project="p")
    future = publisher.publish(
        PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))
    )
    with pytest.raises(PublishError, match=r"not accepted within 1 s.*same event_id is safe"):
        future.result(timeout=30)  # settles at the deadline, not after the library's retries


def test_a_publish_error_without_a_message_names_the_errors_type() -> None:
    error = PublishError("t", "e1", KeyError())
    assert str(error) == "publishing event e1 to topic 't' failed: KeyError"


# Batching: unordered messages are batched by the toolkit (shared/_batching.py) and sent with
# the library's Publish call. A batch goes when it is full, when it is old enough, or on close.
# max_latency is far beyond every result() timeout below, so a message that arrives proves the
# batch was sent for being full or closed, not for its age.
LATE = 600.0


def test_a_full_batch_is_sent_without_waiting_for_its_age(project, pull_all) -> None:
    from shared import PublisherSettings

    check = make_topic(project, "post-liked")
    publisher = Publisher(TOPOLOGY, PublisherSettings(max_messages=5, max_latency=LATE))
    futures = [publisher.publish(like(i)) for i in range(10)]  # two full batches
    ids = [f.result(timeout=30) for f in futures]
    assert {m.message_id for m in pull_all(project, check, expect=10)} == set(ids)


def test_a_batch_is_sent_when_its_bytes_are_reached(project, pull_all) -> None:
    from shared import PublisherSettings

    check = make_topic(project, "post-liked")
    # Each message is well over 100 bytes: every one fills a batch on its own.
    publisher = Publisher(TOPOLOGY, PublisherSettings(max_bytes=100, max_latency=LATE))
    futures = [publisher.publish(like(i)) for i in range(3)]
    assert all(f.result(timeout=30) for f in futures)
    assert len(pull_all(project, check, expect=3)) == 3


def test_a_batch_that_is_neither_full_nor_old_goes_on_close(project, pull_all) -> None:
    from shared import PublisherSettings

    check = make_topic(project, "post-liked")
    publisher = Publisher(TOPOLOGY, PublisherSettings(max_latency=LATE, flush_timeout=30))
    future = publisher.publish(like(1))
    assert not future.done()  # waiting for its batch to fill
    assert publisher.close() == 0  # nothing left outstanding
    assert future.result(timeout=0)
    [message] = pull_all(project, check, expect=1)
    assert message.message_id == future.result()


def test_a_batch_that_is_old_enough_is_sent(project, pull_all) -> None:
    from shared import PublisherSettings

    check = make_topic(project, "post-liked")
    publisher = Publisher(TOPOLOGY, PublisherSettings(max_latency=0.05))
    message_id = publisher.publish(like(1)).result(timeout=30)  # one message, far from full
    [message] = pull_all(project, check, expect=1)
    assert message.message_id == message_id


def test_ordered_and_unordered_messages_of_one_publisher_all_arrive(project, pull_all) -> None:
    check = make_topic(project, "post-liked", ordered=True)
    publisher = Publisher(TOPOLOGY)
    futures = [
        publisher.publish(like(i), ordering_key="user-1" if i % 2 else None) for i in range(40)
    ]
    ids = [f.result(timeout=30) for f in futures]
    messages = pull_all(project, check, expect=40)
    assert {m.message_id for m in messages} == set(ids)
    keyed = [json.loads(m.data)["post_id"] for m in messages if m.ordering_key == "user-1"]
    assert keyed == [f"p{i}" for i in range(1, 40, 2)]  # the keyed ones in publish order


def test_a_batch_refused_by_pubsub_fails_each_of_its_futures(project) -> None:
    # Nothing provisioned: Pub/Sub refuses the whole batch (topic not found).
    publisher = Publisher(TOPOLOGY)
    futures = [publisher.publish(like(i)) for i in range(3)]
    for future in futures:
        with pytest.raises(PublishError, match=r"[Nn]ot ?[Ff]ound") as info:
            future.result(timeout=30)
        assert (info.value.topic, info.value.event_id) == ("post-liked", future.event_id)
    with pytest.raises(PublishError, match=r"3 of 3 messages failed, the first: "):
        publisher.publish_all([like(i) for i in range(3)])
