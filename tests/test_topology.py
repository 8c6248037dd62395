"""Topology declarations: invalid ones fail when declared; exports cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared import (
    Consumer,
    Event,
    FunctionSettings,
    RetryPolicy,
    Topic,
    Topology,
    TopologyError,
)
from shared.system import topology as example_topology
from shared.system.events import OrderDispatched, PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.cli import terraform_json
from shared.tools.contracts import render
from shared.topology import MAX_PUBSUB_NAME, subscription_name
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
                [Topic("post-liked", events=[PostLiked])], [Consumer("cons", topics=["missing"])]
            ),
            "'missing', which is not declared",
        ),
        (
            lambda: Topology(
                [Topic("post-liked", events=[PostLiked])],
                [Consumer("cons", topics=["post-liked"], publishes=["nope"])],
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
    assert (REPO / "infra" / "topology.json").read_text() == terraform_json(TOPOLOGY), (
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


# --- what GCP and infra/ accept (issue 8) --------------------------------------------------
# tests/test_infra.py runs the same names and values through Terraform itself.

DURATION = re.compile(r"[0-9]+(\.[0-9]{1,9})?s")  # protobuf Duration, as infra/ validates it


def _retention_export(seconds: int) -> str:
    topology = Topology([Topic("post-liked", events=[PostLiked], message_retention=seconds)])
    exported: str = topology.to_terraform()["topics"]["post-liked"]["message_retention_duration"]
    return exported


def _backoff_export(minimum: float, maximum: float) -> tuple[str, str]:
    topology = Topology(
        [Topic("post-liked", events=[PostLiked])],
        [Consumer("cons", topics=["post-liked"], retry=RetryPolicy(minimum, maximum))],
    )
    sub = topology.to_terraform()["subscriptions"]["post-liked--cons"]
    return sub["minimum_backoff"], sub["maximum_backoff"]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (600, "600s"),
        (999_999, "999999s"),
        (1_000_000, "1000000s"),
        (1_209_600, "1209600s"),  # 14 days: was "1.2096e+06s"
        (2_678_400, "2678400s"),
    ],
)
def test_message_retention_is_exported_in_whole_seconds(seconds: int, expected: str) -> None:
    assert _retention_export(seconds) == expected


@pytest.mark.parametrize(
    ("minimum", "maximum", "expected"),
    [
        (0, 0, ("0s", "0s")),
        (0.0, 600.0, ("0s", "600s")),
        (-0.0, 0.0, ("0s", "0s")),
        (600, 600, ("600s", "600s")),
        (10, 300, ("10s", "300s")),
        (0.5, 1.5, ("0.5s", "1.5s")),
        (0.1, 0.25, ("0.1s", "0.25s")),
        (0.000001, 0.0001, ("0.000001s", "0.0001s")),  # "1e-06s" and "0.0001s" with :g
        (0.000000001, 599.999999999, ("0.000000001s", "599.999999999s")),
        (1e-10, 123.4567890123, ("0s", "123.456789012s")),  # rounded to the nanosecond
    ],
)
def test_backoffs_are_exported_as_duration_strings_without_exponents(
    minimum: float, maximum: float, expected: tuple[str, str]
) -> None:
    exported = _backoff_export(minimum, maximum)
    assert exported == expected
    assert all(DURATION.fullmatch(d) for d in exported), exported


def test_every_exported_duration_is_a_duration_terraform_accepts() -> None:
    export = TOPOLOGY.to_terraform()
    durations = [t["message_retention_duration"] for t in export["topics"].values()] + [
        s[k]
        for s in export["subscriptions"].values()
        for k in ("minimum_backoff", "maximum_backoff")
    ]
    assert durations
    assert all(DURATION.fullmatch(d) for d in durations), durations


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Consumer("ab", topics=["t"]), r"4-63 characters; found 'ab' \(2 characters\)"),
        (lambda: Consumer("x_", topics=["t"]), "not ending in '_'"),
        (lambda: Consumer("abc", topics=["t"]), "4-63 characters"),
        (lambda: Consumer("audit_", topics=["t"]), "not ending in '_'"),
        (lambda: Consumer("a" * 64, topics=["t"]), r"\(64 characters\)"),
        (lambda: Consumer("audit_log\n", topics=["t"]), "snake_case"),
        (lambda: Consumer("audit-log", topics=["t"]), "snake_case"),
        (lambda: Topic("post-liked\n", events=[PostLiked]), "kebab-case"),
        (lambda: Topic("a" * 256, events=[PostLiked]), "3-255 characters"),
        (
            lambda: Consumer("cons", topics=["t"], function=FunctionSettings(memory="256Mi\n")),
            "memory must look like",
        ),
        (
            lambda: Consumer(
                "cons", topics=["t"], function=FunctionSettings(environment={"PORT": "1"})
            ),
            "may not set 'PORT'",
        ),
        (
            lambda: Consumer(
                "cons", topics=["t"], function=FunctionSettings(environment={"X_GOOGLE_A": "1"})
            ),
            "may not set 'X_GOOGLE_A'",
        ),
        (
            lambda: Consumer(
                "cons", topics=["t"], function=FunctionSettings(environment={"LOG-LEVEL": "x"})
            ),
            "names must be identifiers",
        ),
        (
            lambda: Consumer(
                "cons",
                topics=["t"],
                function=FunctionSettings(environment={"LEVEL": 3}),  # type: ignore[dict-item]
            ),
            "values must be strings",
        ),
    ],
)
def test_names_and_settings_gcp_or_terraform_would_refuse_fail_when_declared(
    declare, message
) -> None:
    with pytest.raises(TopologyError, match=message):
        declare()


@pytest.mark.parametrize(
    "name", ["abcd", "a1b2", "a_bc", "a__b", "google_sync", "timeline_enrichment", "a" * 63]
)
def test_consumer_names_the_naming_module_accepts_are_accepted(name: str) -> None:
    assert Consumer(name, topics=["t"]).name == name


# --- function concurrency (issue 13) -------------------------------------------------------


@pytest.mark.parametrize("concurrency", [0, -1, 1001, 2.5, True, "4", None])
def test_a_concurrency_cloud_run_would_refuse_fails_when_declared(concurrency: object) -> None:
    settings = FunctionSettings(concurrency=concurrency)  # type: ignore[arg-type]
    with pytest.raises(TopologyError) as raised:
        Consumer("cons", topics=["t"], function=settings)
    message = str(raised.value)
    assert "consumer 'cons': function.concurrency" in message
    assert f"must be a whole number 1-1000, found {concurrency!r}" in message
    assert "max_instance_request_concurrency" in message  # the name the GCP docs use


@pytest.mark.parametrize("concurrency", [1, 8, 80, 1000])
def test_concurrency_from_1_to_1000_is_exported_for_terraform(concurrency: int) -> None:
    topology = Topology(
        [Topic("post-liked", events=[PostLiked])],
        [
            Consumer(
                "cons",
                topics=["post-liked"],
                function=FunctionSettings(concurrency=concurrency),
            )
        ],
    )
    assert topology.to_terraform()["consumers"]["cons"]["concurrency"] == concurrency


def test_a_function_takes_one_request_at_a_time_unless_it_declares_more() -> None:
    assert FunctionSettings().concurrency == 1
    exported = TOPOLOGY.to_terraform()["consumers"]
    assert {name: c["concurrency"] for name, c in exported.items()} == dict.fromkeys(
        TOPOLOGY.consumers, 1
    )


def test_topic_names_up_to_pubsubs_limit_are_accepted() -> None:
    assert Topic("a" * 255, events=[PostLiked]).name == "a" * 255


@pytest.mark.parametrize(
    ("consumer", "function_name", "account_id"),
    [
        ("timeline_enrichment", "timeline-enrichment", "fn-timeline-enrichment"),
        ("abcd", "abcd", "fn-abcd"),
        ("a" * 27, "a" * 27, "fn-" + "a" * 27),  # 30 characters: kept whole
        # Longer: 21 characters without trailing "-", then 8 hex digits of a hash ("#").
        ("a" * 28, "a" * 28, "fn-" + "a" * 18 + "-########"),
        (
            "a_very_long_consumer_name_for_tests",
            "a-very-long-consumer-name-for-tests",
            "fn-a-very-long-consum-########",
        ),
        (
            "abcdefghijklmnopq_rstuvwxyz_0",
            "abcdefghijklmnopq-rstuvwxyz-0",
            "fn-abcdefghijklmnopq-########",
        ),
        (
            "abcdefghijklmnop__qrstuvwxyz",
            "abcdefghijklmnop--qrstuvwxyz",
            "fn-abcdefghijklmnop-########",
        ),
    ],
)
def test_derived_names_follow_the_naming_module(
    consumer: str, function_name: str, account_id: str
) -> None:
    declared = Consumer(consumer, topics=["t"])
    assert declared.function_name == function_name
    pattern = account_id.replace("#" * 8, "[0-9a-f]{8}")
    assert re.fullmatch(pattern, declared.service_account_id), declared.service_account_id


def test_two_consumers_may_not_share_a_service_account_id() -> None:
    long = Consumer("a_very_long_consumer_name_for_tests", topics=["post-liked"])
    # A short name spelling out the long one's shortened id gets that very id.
    twin = Consumer(
        long.service_account_id.removeprefix("fn-").replace("-", "_"), topics=["post-liked"]
    )
    assert twin.service_account_id == long.service_account_id
    with pytest.raises(TopologyError, match="would share the service account id 'fn-a-very-long-"):
        Topology([Topic("post-liked", events=[PostLiked])], [long, twin])


def _one_subscription(topic_length: int, consumer_length: int) -> Topology:
    return Topology(
        [Topic("t" * topic_length, events=[PostLiked])],
        [Consumer("c" * consumer_length, topics=["t" * topic_length])],
    )


def test_the_longest_dead_letter_topic_pubsub_allows_is_accepted() -> None:
    topology = _one_subscription(MAX_PUBSUB_NAME - len("----dlq") - 63, 63)
    (sub,) = topology.subscriptions.values()
    assert len(sub.dead_letter_topic) == MAX_PUBSUB_NAME == 255


@pytest.mark.parametrize(("topic_length", "consumer_length"), [(186, 63), (200, 60), (255, 4)])
def test_a_subscription_whose_dead_letter_topic_is_too_long_fails_at_construction(
    topic_length: int, consumer_length: int
) -> None:
    subscription = "t" * topic_length + "--" + "c" * consumer_length
    length = topic_length + consumer_length + len("----dlq")
    with pytest.raises(
        TopologyError,
        match=f"subscription '{subscription}' is too long: .* has {length} characters and "
        f"Pub/Sub allows 255",
    ):
        _one_subscription(topic_length, consumer_length)


def test_the_audit_log_consumes_every_declared_topic() -> None:
    """The README says it stores every event of every topic: true of the topology as declared."""
    assert sorted(TOPOLOGY.consumer("audit_log").topics) == sorted(TOPOLOGY.topics)


def test_a_topic_added_to_the_example_system_is_audited_without_another_edit() -> None:
    """What a newcomer does: add a Topic to the list in shared/system/topology.py, nothing else."""

    class OrderCancelled(Event):
        event_type: ClassVar[str] = "order.cancelled.v1"
        order_id: str

    module = Path(example_topology.__file__)
    source = module.read_text()
    assert source.count("\nTOPICS = [\n") == 1, "the example declares its topics in TOPICS"
    added = source.replace(
        "\nTOPICS = [\n", '\nTOPICS = [\n    Topic("order-cancelled", events=[OrderCancelled]),\n'
    )
    namespace: dict[str, Any] = {"OrderCancelled": OrderCancelled}
    exec(compile(added, str(module), "exec"), namespace)  # the module, as edited
    topology: Topology = namespace["TOPOLOGY"]
    assert "order-cancelled" in topology.consumer("audit_log").topics
    sub = topology.subscription("order-cancelled--audit_log")
    assert sub.dead_letter_topic == "order-cancelled--audit_log--dlq"
    assert "order-cancelled--audit_log" in terraform_json(topology)
