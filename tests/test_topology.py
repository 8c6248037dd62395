"""Topology declarations: invalid ones fail when declared; exports cannot drift."""

from __future__ import annotations

import pytest

from shared import (
    Consumer,
    FunctionSettings,
    RetryPolicy,
    Topic,
    Topology,
    TopologyError,
)
from shared.system.events import OrderDispatched, PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.cli import TERRAFORM_EXPORT, terraform_json
from shared.tools.contracts import render
from shared.topology import subscription_name
from tests.conftest import REPO


def test_names_follow_the_documented_rule() -> None:
    sub = TOPOLOGY.subscription("post-liked--timeline_enrichment")
    assert subscription_name("post-liked", "timeline_enrichment") == sub.name
    assert sub.dead_letter_topic == "post-liked--timeline_enrichment--dlq"
    assert sub.dead_letter_subscription == "post-liked--timeline_enrichment--dlq"


def test_every_subscription_has_its_own_dead_letter_topic() -> None:
    dlqs = [s.dead_letter_topic for s in TOPOLOGY.subscriptions.values()]
    assert len(dlqs) == len(set(dlqs)) == len(TOPOLOGY.subscriptions)


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Topic("Post_Liked", events=[PostLiked]), "kebab-case"),
        (lambda: Topic("post--liked", events=[PostLiked]), "no '--'"),
        (lambda: Topic("goog-topic", events=[PostLiked]), "goog"),
        (lambda: Topic("post-liked", events=[]), "no event types"),
        (lambda: Topic("post-liked", events=[PostLiked], message_retention=60), "600-2678400"),
        (lambda: Consumer("Timeline", topics=["t"]), "snake_case"),
        (lambda: Consumer("timeline", topics=[]), "no topic"),
        (lambda: Consumer("timeline", topics=["t"], ack_deadline=5), "ack_deadline must be 10-600"),
        (
            lambda: Consumer("timeline", topics=["t"], ack_deadline=601),
            "ack_deadline must be 10-600",
        ),
        (
            lambda: Consumer("timeline", topics=["t"], max_delivery_attempts=4),
            "max_delivery_attempts must be 5-100",
        ),
        (
            lambda: Consumer("timeline", topics=["t"], max_delivery_attempts=101),
            "max_delivery_attempts must be 5-100",
        ),
        (
            lambda: Consumer("timeline", topics=["t"], retry=RetryPolicy(20, 10)),
            "below retry.minimum_backoff",
        ),
        (lambda: Consumer("timeline", topics=["t"], filter="attributes.x = y"), "quoted string"),
        (
            lambda: Consumer(
                "timeline", topics=["t"], function=FunctionSettings(runtime="python39")
            ),
            "runtime must be",
        ),
        (
            lambda: Consumer("timeline", topics=["t"], function=FunctionSettings(memory="lots")),
            "memory must look like",
        ),
        (
            lambda: Topology(
                [Topic("post-liked", events=[PostLiked])], [Consumer("cc", topics=["missing"])]
            ),
            "'missing', which is not declared",
        ),
        (
            lambda: Topology(
                [Topic("post-liked", events=[PostLiked])],
                [Consumer("cc", topics=["post-liked"], publishes=["nope"])],
            ),
            "'nope', which is not declared",
        ),
        (
            lambda: Topology(
                [Topic("a-topic", events=[PostLiked]), Topic("b-topic", events=[PostLiked])]
            ),
            "belongs to one topic",
        ),
        (
            lambda: Topology(
                [Topic("a-topic", events=[PostLiked]), Topic("a-topic", events=[OrderDispatched])]
            ),
            "declared twice",
        ),
    ],
)
def test_invalid_declarations_fail_with_a_clear_error(declare, message) -> None:
    with pytest.raises(TopologyError, match=message):
        declare()


def test_topic_for_an_undeclared_event_says_which_types_exist() -> None:
    topology = Topology([Topic("post-liked", events=[PostLiked])])
    with pytest.raises(TopologyError, match=r"order.dispatched.v1.*post.liked.v1"):
        topology.topic_for(OrderDispatched)


def test_with_prefix_renames_topics_and_keeps_the_naming_rule() -> None:
    prefixed = TOPOLOGY.with_prefix("t1")
    assert "t1-post-liked--audit_log" in prefixed.subscriptions
    assert prefixed.consumer("order_notifications").publishes == ("t1-notification-requested",)


def test_checked_in_terraform_export_matches_the_topology() -> None:
    assert TERRAFORM_EXPORT.read_text() == terraform_json(TOPOLOGY), (
        "infra/topology.json is stale: run `pubsub-kit topology export --terraform`"
    )


def test_checked_in_contracts_match_the_models() -> None:
    folder = REPO / "docs" / "contracts"
    for name, text in render(TOPOLOGY).items():
        assert (folder / name).read_text() == text, (
            f"docs/contracts/{name} is stale: run `pubsub-kit schema`"
        )


def test_export_carries_every_policy_of_the_declaration() -> None:
    export = TOPOLOGY.to_terraform()
    sub = export["subscriptions"]["order-dispatched--order_notifications"]
    assert sub == {
        "topic": "order-dispatched",
        "consumer": "order_notifications",
        "ack_deadline_seconds": 60,
        "max_delivery_attempts": 5,
        "minimum_backoff": "10s",
        "maximum_backoff": "300s",
        "filter": 'attributes.ce-type = "order.dispatched.v1"',
        "enable_message_ordering": False,
        "dead_letter_topic": "order-dispatched--order_notifications--dlq",
    }
    assert export["consumers"]["order_notifications"]["publishes_to"] == ["notification-requested"]
    assert set(export["dead_letter_topics"]) == {s + "--dlq" for s in export["subscriptions"]}
