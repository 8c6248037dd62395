"""The ack contract, unit-tested through shared.testing.HandlerHarness (in memory).

Every behaviour here is also run against the real emulator: tests/functions, tests/e2e and
tests/test_worker.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared import PermanentError, RetryableError, wire
from shared.consumer import respond
from shared.system.events import OrderDispatched, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.testing import HandlerHarness, Outcome

NOW = datetime.now(UTC)
CANARY = "canary-91ce@example.com"


def like() -> PostLiked:
    return PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=NOW)


def test_returning_acks_and_a_redelivery_is_a_duplicate() -> None:
    calls: list[str] = []
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: calls.append(e.post_id))
    first = harness.deliver(like(), event_id="e1")
    again = harness.deliver(like(), event_id="e1", attempt=2)
    assert (first.outcome, first.ack) == (Outcome.HANDLED, True)
    assert (again.outcome, again.ack) == (Outcome.DUPLICATE, True)
    assert calls == ["p1"]
    assert respond(first) == ("", 204)


def test_retryable_error_nacks_and_releases_the_claim() -> None:
    calls: list[int] = []

    def flaky(event, delivery):
        calls.append(delivery.attempt)
        if delivery.attempt < 2:
            raise RetryableError("search index down")

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", flaky)
    retry = harness.deliver(like(), event_id="e1", attempt=1)
    assert (retry.outcome, retry.ack, retry.reason) == (Outcome.RETRY, False, "search index down")
    assert respond(retry)[1] == 500
    assert harness.deliver(like(), event_id="e1", attempt=2).status == "handled"
    assert calls == [1, 2]


def test_an_unexpected_exception_retries_and_its_message_is_not_logged(caplog) -> None:
    def boom(event):
        raise KeyError(CANARY)

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", boom)
    with caplog.at_level(logging.INFO):
        result = harness.deliver(like())
    assert (result.outcome, result.ack, result.reason) == (Outcome.RETRY, False, "KeyError")
    assert CANARY not in caplog.text


def test_permanent_error_dead_letters_at_once_with_the_reason() -> None:
    def reject(event):
        raise PermanentError("post was deleted")

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", reject)
    result = harness.deliver(like(), event_id="e1")
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTERED, True)
    [letter] = harness.dead_letters
    assert (letter.subscription, letter.reason) == (
        "post-liked--timeline_enrichment",
        "PermanentError: post was deleted",
    )


def test_a_dead_lettered_event_is_not_done_so_a_replay_after_the_fix_is_handled() -> None:
    fixed = [False]

    def handler(event):
        if not fixed[0]:
            raise PermanentError("post was deleted")

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", handler)
    assert harness.deliver(like(), event_id="e1").outcome is Outcome.DEAD_LETTERED
    fixed[0] = True  # the handler is fixed, and the dead letter replayed with the same ce-id
    assert harness.deliver(like(), event_id="e1").outcome is Outcome.HANDLED


@pytest.mark.parametrize(
    ("data", "event_type", "reason"),
    [
        (b"{not json", "post.liked.v1", "post.liked.v1: message data is not JSON"),
        (b"{}", "post.unliked.v1", "unknown event type 'post.unliked.v1'"),
        (
            b'{"post_id": "p1"}',
            "post.liked.v1",
            "post.liked.v1: data does not fit the model (liker_id",
        ),
    ],
)
def test_undecodable_messages_are_dead_lettered_not_retried(data, event_type, reason) -> None:
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: None)
    attributes = {"ce-id": "x", "ce-source": "/t", "ce-type": event_type, "ce-specversion": "1.0"}
    result = harness.deliver_raw(data, attributes, subscription="post-liked--timeline_enrichment")
    assert result.outcome is Outcome.DEAD_LETTERED and result.ack
    assert harness.dead_letters[0].reason.startswith(reason)
    assert harness.dead_letters[0].message.data == data


def test_the_declared_filter_is_applied_by_the_runtime() -> None:
    calls: list[object] = []
    harness = HandlerHarness(TOPOLOGY, "order_notifications", calls.append)
    attributes = {"ce-id": "x", "ce-source": "/t", "ce-type": "order.cancelled.v1"}
    result = harness.deliver_raw(
        b"{}", attributes, subscription="order-dispatched--order_notifications"
    )
    assert (result.outcome, result.ack) == (Outcome.FILTERED, True)
    assert calls == [] and harness.dead_letters == []


def test_events_older_than_max_event_age_are_dead_lettered() -> None:
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: None)
    result = harness.deliver(like(), time=NOW - timedelta(days=8))
    assert result.status == "dead_lettered" and "max_event_age" in (result.reason or "")


def test_types_the_handler_does_not_accept_are_dead_lettered_as_unsupported() -> None:
    harness = HandlerHarness(TOPOLOGY, "audit_log", lambda e: None, accepts=[PostLiked])
    event = UserUpdated(user_id="u1", changed_by="u1", changes={})
    result = harness.deliver(event)
    assert result.status == "dead_lettered"
    assert harness.dead_letters[0].reason.startswith("unsupported event type 'user.updated.v1'")
    assert harness.dead_letters[0].subscription == "user-updated--audit_log"


def test_a_claim_held_by_another_instance_is_busy_until_its_lease_ends() -> None:
    harness = HandlerHarness(TOPOLOGY, "order_notifications", lambda e: None)
    order = OrderDispatched(order_id="o1", customer_id="c1", carrier="dhl", dispatched_at=NOW)
    assert harness.store.claim("order_notifications/%2Ftests/e9", lease=60).value == "acquired"
    busy = harness.deliver(order, event_id="e9")
    assert (busy.outcome, busy.ack) == (Outcome.BUSY, False)
    assert respond(busy)[1] == 503


def test_an_instance_that_died_mid_work_delays_the_retry_only_until_its_lease_ends() -> None:
    from shared.stores.sqlite import SqliteStore

    now = [1_000.0]
    store = SqliteStore(":memory:", clock=lambda: now[0])
    calls: list[str] = []
    harness = HandlerHarness(
        TOPOLOGY, "timeline_enrichment", lambda e: calls.append(e.post_id), store=store
    )
    lease = harness.pipeline.lease
    assert (
        store.claim("timeline_enrichment/%2Ftests/e5", lease=lease).value == "acquired"
    )  # then the instance died
    assert harness.deliver(like(), event_id="e5", attempt=2).status == "busy"
    now[0] += lease + 1
    assert harness.deliver(like(), event_id="e5", attempt=3).status == "handled"
    assert calls == ["p1"]


def test_two_producers_reusing_an_event_id_are_two_events() -> None:
    """CloudEvents identifies an event by source and id: same id, other source, not a duplicate."""
    calls: list[str] = []
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: calls.append(e.post_id))
    for source in ("/services/web", "/services/mobile", "/services/web"):
        data, attributes = wire.encode(
            like(), wire.new_envelope(like(), source=source, event_id="1")
        )
        harness.deliver_raw(data, attributes)
    assert calls == ["p1", "p1"]  # the third is the web producer's event 1 again


def test_an_event_id_as_long_as_pubsub_allows_is_handled_not_refused_by_the_store() -> None:
    calls: list[str] = []
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: calls.append(e.post_id))
    long_id = "x" * 1024  # an attribute value may hold 1,024 bytes
    assert harness.deliver(like(), event_id=long_id).outcome is Outcome.HANDLED
    assert harness.deliver(like(), event_id=long_id).outcome is Outcome.DUPLICATE
    assert harness.deliver(like(), event_id=long_id[:-1] + "y").outcome is Outcome.HANDLED
    assert len(calls) == 2


def nested_list(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


POISON_ATTRIBUTES = {"ce-specversion": "1.0", "ce-source": "/t", "ce-id": "poison"}


@pytest.mark.parametrize(
    ("data", "attributes", "reason"),
    [
        (
            b'{"a": ' * 1200 + b"1" + b"}" * 1200,
            {},
            "post.liked.v1: message data is nested deeper than 64 levels",
        ),
        (
            b'{"post_id": ' + b"7" * 5000 + b"}",
            {},
            "post.liked.v1: message data holds a number with more digits than can be read",
        ),
        (
            json.dumps({"post_id": "p", "x": nested_list(70)}).encode(),
            {},
            "post.liked.v1: message data is nested deeper than 64 levels",
        ),
        (b"{}", {"ce-time": "0001-01-01T00:00:00+01:00"}, "ce-time is not an RFC 3339"),
    ],
    ids=["nested-1200", "5000-digits", "nested-65", "ce-time-overflow"],
)
def test_messages_that_can_never_succeed_are_dead_lettered_once_with_a_reason(
    data, attributes, reason
) -> None:
    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", lambda e: None)
    attributes = {**POISON_ATTRIBUTES, "ce-type": "post.liked.v1", **attributes}
    result = harness.deliver_raw(data, attributes)
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTERED, True)
    [letter] = harness.dead_letters
    assert letter.reason.startswith(reason)


def test_a_change_value_nested_300_deep_is_dead_lettered_not_retried_forever() -> None:
    value: object = "x"
    for _ in range(300):
        value = {"k": value}
    data = {"user_id": "u1", "changed_by": "u1", "changes": {"name": {"new": value}}}
    harness = HandlerHarness(TOPOLOGY, "audit_log", lambda e: e.redacted())
    attributes = {**POISON_ATTRIBUTES, "ce-type": "user.updated.v1"}
    result = harness.deliver_raw(json.dumps(data).encode(), attributes)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert harness.dead_letters[0].reason == (
        "user.updated.v1: message data is nested deeper than 64 levels"
    )
