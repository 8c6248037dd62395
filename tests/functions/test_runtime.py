"""The Cloud Functions runtime, through functions-framework's create_app and real stores.

Dead-lettering and publishing go to the real emulator.
"""

from __future__ import annotations

import concurrent.futures
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.push import parse_request
from shared.system.events import FieldChange, OrderDispatched, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from tests.functions.conftest import golden, push_body, raw_push_body

NOW = datetime.now(UTC)
CANARY = "canary-5d2b@example.com"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def like(i: int = 1, liker: str = "u1", author: str = "u2") -> PostLiked:
    return PostLiked(post_id=f"p{i}", liker_id=liker, author_id=author, liked_at=NOW)


@pytest.mark.parametrize(
    "payload", ["push_body.json", "eventarc_binary.json", "eventarc_structured.json"]
)
def test_each_delivery_format_is_handled(payload, client, store) -> None:
    """Golden payloads: a push subscription's body, and Eventarc's binary and structured modes."""
    case = golden(payload)
    headers, body = (case["headers"], case["body"]) if "headers" in case else ({}, case)
    response = client("audit_log").post("/", json=body, headers=headers)
    assert response.status_code == 204, response.data
    [entry] = store.query_audit(subject="p1")
    assert (entry.event_id, entry.actor, entry.event_type) == ("evt-1", "u1", "post.liked.v1")


def test_delivery_info_reaches_the_handler_from_each_format() -> None:
    push = parse_request({}, json.dumps(golden("push_body.json")).encode())
    assert (push.attempt, push.ordering_key, push.subscription) == (
        1,
        "p1",
        "post-liked--audit_log",
    )
    assert push.publish_time and push.publish_time.microsecond == 123456
    case = golden("eventarc_structured.json")
    structured = parse_request(case["headers"], json.dumps(case["body"]).encode())
    assert structured.attempt is None and structured.subscription == "post-liked--audit_log"
    assert structured.attributes["ce-type"] == "post.liked.v1"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-31T12:00:01.123456789Z", datetime(2026, 1, 31, 12, 0, 1, 123456, tzinfo=UTC)),
        ("2026-01-31T12:00:01.5Z", datetime(2026, 1, 31, 12, 0, 1, 500000, tzinfo=UTC)),
        ("2026-01-31T12:00:01Z", datetime(2026, 1, 31, 12, 0, 1, tzinfo=UTC)),
        ("2026-01-31T13:00:01.25+01:00", datetime(2026, 1, 31, 12, 0, 1, 250000, tzinfo=UTC)),
        ("2026-01-31T12:00:01", datetime(2026, 1, 31, 12, 0, 1, tzinfo=UTC)),
    ],
)
def test_the_publish_time_is_read_as_an_aware_time_whatever_its_precision(stamp, expected) -> None:
    # Found by the fuzz suite: nanoseconds before "Z" once lost the offset, and a naive time
    # made max_event_age raise (a retry, forever) for events without ce-time.
    body = {"message": {"data": "", "messageId": "1", "publishTime": stamp}}
    push = parse_request({}, json.dumps(body).encode())
    assert push.publish_time == expected
    assert push.publish_time is not None and push.publish_time.tzinfo is not None


def test_a_request_that_is_not_a_pubsub_message_is_refused(client) -> None:
    response = client("timeline_enrichment").post("/", data=b"hello", content_type="text/plain")
    assert response.status_code == 400
    assert b"expected a Pub/Sub push body" in response.data


def test_the_same_push_twice_has_one_effect(client, store) -> None:
    body = push_body(like(), subscription="post-liked--timeline_enrichment")
    app = client("timeline_enrichment")
    assert [app.post("/", json=body).status_code for _ in range(3)] == [204, 204, 204]
    assert store.counters("timeline_affinity", "u1") == {"u2": 1}


def test_the_same_push_concurrently_has_one_effect(client, store) -> None:
    body = push_body(like(), subscription="post-liked--timeline_enrichment")
    app = client("timeline_enrichment")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: app.post("/", json=body).status_code, range(16)))
    assert set(statuses) <= {204, 503} and 204 in statuses  # 503: "busy", redelivered later
    assert store.counters("timeline_affinity", "u1") == {"u2": 1}


def test_self_likes_do_not_count(client, store) -> None:
    body = push_body(like(liker="u1", author="u1"), subscription="post-liked--timeline_enrichment")
    assert client("timeline_enrichment").post("/", json=body).status_code == 204
    assert store.counters("timeline_affinity", "u1") == {}


@pytest.mark.emulator
def test_malformed_and_unknown_messages_are_dead_lettered_with_the_reason(
    project, client, pull_all
) -> None:
    provision(TOPOLOGY)
    app = client("timeline_enrichment")
    sub = "post-liked--timeline_enrichment"
    base = {"ce-specversion": "1.0", "ce-source": "/tests"}
    malformed = raw_push_body(
        b"{oops",
        {**base, "ce-id": "m1", "ce-type": "post.liked.v1"},
        subscription=sub,
        project=project,
    )
    unknown = raw_push_body(
        b"{}",
        {**base, "ce-id": "u1", "ce-type": "post.unliked.v1"},
        subscription=sub,
        project=project,
    )
    assert app.post("/", json=malformed).status_code == 204
    assert app.post("/", json=unknown).status_code == 204
    letters = {m.attributes["ce-id"]: m for m in pull_all(project, sub + "--dlq", expect=2)}
    assert (
        letters["m1"].attributes["pubsubkit-dlq-reason"]
        == "post.liked.v1: message data is not JSON"
    )
    assert letters["m1"].data == b"{oops"
    assert (
        letters["u1"]
        .attributes["pubsubkit-dlq-reason"]
        .startswith("unknown event type 'post.unliked.v1'")
    )
    assert letters["u1"].attributes["pubsubkit-dlq-attempt"] == "1"


@pytest.mark.emulator
def test_an_event_older_than_max_event_age_is_dead_lettered(
    project, client, store, pull_all
) -> None:
    provision(TOPOLOGY)
    sub = "post-liked--timeline_enrichment"
    body = push_body(like(), subscription=sub, project=project, time=NOW - timedelta(days=8))
    assert client("timeline_enrichment").post("/", json=body).status_code == 204
    [letter] = pull_all(project, sub + "--dlq", expect=1)
    assert "max_event_age" in letter.attributes["pubsubkit-dlq-reason"]
    assert store.counters("timeline_affinity", "u1") == {}


@pytest.mark.emulator
def test_dispatch_notification_keeps_correlation_and_trace(project, client, pull_all) -> None:
    from google.cloud import pubsub_v1

    provision(TOPOLOGY)
    pubsub_v1.SubscriberClient().create_subscription(
        name=f"projects/{project}/subscriptions/check",
        topic=f"projects/{project}/topics/notification-requested",
    )
    order = OrderDispatched(order_id="o1", customer_id="c1", carrier="DHL", dispatched_at=NOW)
    parent = f"00-{TRACE}-00f067aa0ba902b7-01"
    body = push_body(
        order,
        subscription="order-dispatched--order_notifications",
        project=project,
        event_id="dispatch-1",
        traceparent=parent,
        correlation_id="checkout-42",
    )
    assert client("order_notifications").post("/", json=body).status_code == 204
    [message] = pull_all(project, "check", expect=1)
    attrs = message.attributes
    assert attrs["ce-type"] == "notification.requested.v1"
    assert attrs["ce-correlationid"] == "checkout-42"
    assert attrs["ce-traceparent"].split("-")[1] == TRACE
    assert attrs["ce-traceparent"] != parent  # a new span of the same trace
    assert json.loads(message.data) == {
        "customer_id": "c1",
        "channel": "email",
        "template": "order-dispatched-dhl",
        "order_id": "o1",
    }


@pytest.mark.emulator
def test_permanent_error_in_a_handler_dead_letters_it(project, client, pull_all) -> None:
    provision(TOPOLOGY)
    order = OrderDispatched(order_id="o1", customer_id="c1", carrier="pigeon", dispatched_at=NOW)
    sub = "order-dispatched--order_notifications"
    body = push_body(order, subscription=sub, project=project)
    assert client("order_notifications").post("/", json=body).status_code == 204
    [letter] = pull_all(project, sub + "--dlq", expect=1)
    assert letter.attributes["pubsubkit-dlq-reason"].startswith(
        "PermanentError: no notification template for carrier 'pigeon'"
    )


def test_a_filtered_out_message_is_acked_without_running_the_handler(client, store) -> None:
    """The emulator ignores filters; the runtime applies order_notifications' filter itself."""
    body = push_body(like(), subscription="order-dispatched--order_notifications")
    response = client("order_notifications").post("/", json=body)
    assert response.status_code == 204  # acked: GCP would never have delivered it


def test_audit_log_never_stores_or_logs_a_sensitive_value(client, store, store_url, capfd) -> None:
    event = UserUpdated(
        user_id="u9",
        changed_by="admin",
        changes={
            "email": FieldChange(old="old-" + CANARY, new=CANARY),
            "display_name": FieldChange(old="A", new="B"),
        },
        email=CANARY,
    )
    body = push_body(event, subscription="user-updated--audit_log")
    assert client("audit_log").post("/", json=body).status_code == 204
    [entry] = store.query_audit(subject="u9")
    assert (entry.actor, entry.event_type) == ("admin", "user.updated.v1")
    assert entry.data["changes"]["display_name"] == {"old": "A", "new": "B"}
    store.close()
    db_path = store_url.removeprefix("sqlite:///")
    files = [Path(db_path), Path(db_path + "-wal")]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    assert b"canary-5d2b" not in raw
    captured = capfd.readouterr()
    assert "canary-5d2b" not in captured.out + captured.err


def test_audit_log_is_queryable_by_subject_actor_and_time(client, store) -> None:
    app = client("audit_log")
    for i, (actor, hours_ago) in enumerate([("alice", 3), ("bob", 2), ("alice", 1)]):
        event = PostLiked(post_id=f"p{i}", liker_id=actor, author_id="carol", liked_at=NOW)
        body = push_body(
            event, subscription="post-liked--audit_log", time=NOW - timedelta(hours=hours_ago)
        )
        assert app.post("/", json=body).status_code == 204
    assert [e.subject for e in store.query_audit(actor="alice")] == ["p0", "p2"]
    assert [e.actor for e in store.query_audit(subject="p1")] == ["bob"]
    window = store.query_audit(
        since=NOW - timedelta(hours=2, minutes=30), until=NOW - timedelta(minutes=30)
    )
    assert [e.subject for e in window] == ["p1", "p2"]
