"""Provisioning the topology on the emulator: complete, idempotent, and self-correcting."""

from __future__ import annotations

import pytest
from google.cloud import pubsub_v1

from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from shared.topology import Consumer, RetryPolicy, Topic, Topology

pytestmark = pytest.mark.emulator


def test_provision_creates_every_topic_subscription_and_dead_letter_queue(project) -> None:
    report = provision(TOPOLOGY)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topics = {
        t.name.rsplit("/", 1)[-1] for t in publisher.list_topics(project=f"projects/{project}")
    }
    subs = {
        s.name.rsplit("/", 1)[-1]: s
        for s in subscriber.list_subscriptions(project=f"projects/{project}")
    }
    assert set(TOPOLOGY.topics) <= topics
    for name, sub in TOPOLOGY.subscriptions.items():
        assert sub.dead_letter_topic in topics
        assert sub.dead_letter_subscription in subs, "nothing dead-lettered may be lost"
        live = subs[name]
        assert live.ack_deadline_seconds == sub.consumer.ack_deadline
        assert live.dead_letter_policy.max_delivery_attempts == sub.consumer.max_delivery_attempts
        assert live.dead_letter_policy.dead_letter_topic.endswith("/" + sub.dead_letter_topic)
        assert live.filter == (sub.consumer.filter or "")
    assert len(report.created) == len(topics) + len(subs)


def test_provisioning_twice_changes_nothing_the_second_time(project) -> None:
    provision(TOPOLOGY)
    second = provision(TOPOLOGY)
    assert not second.changed
    assert len(second.unchanged) == len(TOPOLOGY.topics) + 3 * len(TOPOLOGY.subscriptions)


def test_a_changed_setting_is_updated_in_place(project) -> None:
    def topology(attempts: int) -> Topology:
        return Topology(
            [Topic("post-liked", events=[PostLiked])],
            [
                Consumer(
                    "timeline",
                    topics=["post-liked"],
                    max_delivery_attempts=attempts,
                    retry=RetryPolicy(1, 5),
                )
            ],
        )

    provision(topology(5))
    report = provision(topology(7))
    assert report.updated == [f"projects/{project}/subscriptions/post-liked--timeline"]
    live = pubsub_v1.SubscriberClient().get_subscription(
        subscription=f"projects/{project}/subscriptions/post-liked--timeline"
    )
    assert live.dead_letter_policy.max_delivery_attempts == 7


def test_the_provision_command_is_idempotent(project) -> None:
    from shared.tools.cli import main

    assert main(["provision"]) == 0
    assert main(["provision", "--project", project]) == 0
