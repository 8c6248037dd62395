"""Dead-lettering: a rejected message is acked only once it is on its dead-letter topic."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from shared import wire
from shared.errors import ConfigurationError, PublishError
from shared.runtime import Outcome, Result
from shared.runtime import dead_lettering as dead_lettering_module
from shared.runtime.dead_lettering import DeadLetter, PubSubDeadLetterSink
from shared.system.topology import TOPOLOGY
from shared.testing import RecordingSink
from tests.runtime._support import (
    TWO_TOPICS,
    FailingSink,
    Rest,
    encoded,
    inflight,
    like,
    order,
    raw,
)

REJECTED = Result(Outcome.REJECTED, "PermanentError: post was deleted")


def test_what_was_not_rejected_passes_through_untouched():
    sink = RecordingSink()
    step = DeadLetter(TOPOLOGY, "timeline_enrichment", sink)
    for outcome in Outcome:
        if outcome is not Outcome.REJECTED:
            answer = Result(outcome, "why")
            assert step(inflight(encoded(like())), Rest(answer)) is answer
    assert sink.sent == []


def test_a_rejected_message_goes_to_its_subscriptions_dead_letter_topic_and_is_acked():
    sink = RecordingSink()
    message = encoded(like(), subscription="post-liked--timeline_enrichment")
    result = DeadLetter(TOPOLOGY, "timeline_enrichment", sink)(inflight(message), Rest(REJECTED))
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTERED, True)
    assert result.reason == "PermanentError: post was deleted"
    [letter] = sink.sent
    assert (letter.subscription, letter.reason) == (
        "post-liked--timeline_enrichment",
        "PermanentError: post was deleted",
    )
    assert letter.message is message


def test_a_rejection_without_a_reason_is_recorded_as_rejected():
    sink = RecordingSink()
    step = DeadLetter(TOPOLOGY, "timeline_enrichment", sink)
    result = step(inflight(encoded(like())), Rest(Outcome.REJECTED))
    assert result.reason == "rejected"
    assert sink.sent[0].reason == "rejected"


def test_without_a_subscription_in_the_delivery_a_single_subscription_consumer_uses_its_own():
    """An Eventarc trigger does not say the subscription; undecodable data has no ce-type."""
    sink = RecordingSink()
    step = DeadLetter(TWO_TOPICS, "profiles", sink)
    result = step(inflight(raw(b"{nope", {}, subscription=None), "profiles"), Rest(REJECTED))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].subscription == "user-updated--profiles"


@pytest.mark.parametrize(
    ("message", "subscription"),
    [
        (encoded(like(), subscription=None), "post-liked--activity"),
        (encoded(order(), subscription=None), "order-dispatched--activity"),
    ],
)
def test_without_a_subscription_in_the_delivery_the_event_type_picks_among_several(
    message, subscription
):
    sink = RecordingSink()
    result = DeadLetter(TWO_TOPICS, "activity", sink)(inflight(message, "activity"), Rest(REJECTED))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].subscription == subscription


def test_when_no_subscription_fits_the_message_is_not_acked():
    sink = RecordingSink()
    message = raw(b"{}", {"ce-type": "user.updated.v1"}, subscription=None)
    result = DeadLetter(TWO_TOPICS, "activity", sink)(inflight(message, "activity"), Rest(REJECTED))
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTER_FAILED, False)
    assert result.reason == (
        "cannot tell which subscription to dead-letter for: PermanentError: post was deleted"
    )
    assert sink.sent == []


def test_a_sink_that_fails_leaves_the_message_unacked_and_logs_why(caplog):
    sink = FailingSink()
    step = DeadLetter(TOPOLOGY, "timeline_enrichment", sink)
    with caplog.at_level(logging.INFO, logger="pubsub_kit.consumer"):
        result = step(inflight(encoded(like())), Rest(REJECTED))
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTER_FAILED, False)
    assert result.reason == "dead-lettering failed: PermanentError: post was deleted"
    assert sink.attempts == 1
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "dead-lettering failed")
    error = record.fields["error"]
    assert error["type"] == "PublishError"
    assert error["message"] == str(sink.error)


def test_a_sink_without_a_project_leaves_the_message_unacked():
    sink = FailingSink(ConfigurationError("no project id"))
    result = DeadLetter(TOPOLOGY, "timeline_enrichment", sink)(
        inflight(encoded(like())), Rest(REJECTED)
    )
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTER_FAILED, False)


# -- the Pub/Sub sink, with the client library replaced by a recording fake ---------------------


class FakeFuture:
    def __init__(self, outcome: str | Exception) -> None:
        self.outcome = outcome
        self.timeouts: list[float | None] = []

    def result(self, timeout: float | None = None) -> str:
        self.timeouts.append(timeout)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakePublisher:
    """What the sink uses of ``pubsub_v1.PublisherClient``."""

    def __init__(self, outcome: str | Exception = "dlq-42") -> None:
        self.future = FakeFuture(outcome)
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.stopped = False
        self.transport = FakeTransport()

    def publish(self, topic: str, data: bytes, **attributes: str) -> FakeFuture:
        self.published.append((topic, data, attributes))
        return self.future

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
    fake = FakePublisher()
    monkeypatch.setattr(dead_lettering_module, "_publisher_client", lambda: fake)
    monkeypatch.setenv("PUBSUB_PROJECT_ID", "env-project")
    return fake


def test_the_sink_publishes_the_original_message_with_why_who_and_where(publisher):
    message = encoded(like(), message_id="m7", attempt=3)
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1", timeout=5.0)
    new_id = sink.send(message, "post-liked--timeline_enrichment", "PermanentError: gone")
    assert new_id == "dlq-42"
    [(topic, data, attributes)] = publisher.published
    assert topic == "projects/p1/topics/post-liked--timeline_enrichment--dlq"
    assert data == message.data
    assert attributes == {
        **message.attributes,
        wire.ATTR_DLQ_REASON: "PermanentError: gone",
        wire.ATTR_DLQ_CONSUMER: "timeline_enrichment",
        wire.ATTR_DLQ_SUBSCRIPTION: "post-liked--timeline_enrichment",
        wire.ATTR_DLQ_MESSAGE_ID: "m7",
        wire.ATTR_DLQ_ATTEMPT: "3",
    }
    assert publisher.future.timeouts == [5.0]


def test_the_sink_leaves_out_the_attempt_where_the_platform_does_not_count_them(publisher):
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like(), attempt=None), "post-liked--timeline_enrichment", "why")
    [(_, _, attributes)] = publisher.published
    assert wire.ATTR_DLQ_ATTEMPT not in attributes


def test_the_sink_cuts_a_long_reason_to_fit_an_attribute(publisher):
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like()), "post-liked--timeline_enrichment", "x" * 5000)
    [(_, _, attributes)] = publisher.published
    assert attributes[wire.ATTR_DLQ_REASON] == "x" * 1024


def test_a_long_reason_is_cut_by_bytes_on_a_character_boundary(publisher):
    """1,000 'é' are 2,000 bytes: cut by characters, the dead-letter publish would fail."""
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like()), "post-liked--timeline_enrichment", "é" * 1000)
    [(_, _, attributes)] = publisher.published
    assert attributes[wire.ATTR_DLQ_REASON] == "é" * 512
    assert all(len(v.encode()) <= 1024 for v in attributes.values())


def test_a_long_reason_is_never_cut_inside_a_character(publisher):
    """'€' is 3 bytes and 1,024 is not a multiple of 3: the stray byte is dropped, not sent."""
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like()), "post-liked--timeline_enrichment", "€" * 500)
    [(_, _, attributes)] = publisher.published
    assert attributes[wire.ATTR_DLQ_REASON] == "€" * 341  # 1,023 bytes


def test_a_message_with_many_attributes_stays_within_pubsubs_100(publisher):
    crowded = {**encoded(like()).attributes, **{f"x-{i}": "v" for i in range(89)}}
    message = raw(b"{}", crowded)
    assert len(message.attributes) == 97  # 8 ce-* attributes and 89 of the producer's
    PubSubDeadLetterSink("timeline_enrichment", project="p1").send(message, "s--c", "why")
    [(_, _, attributes)] = publisher.published
    assert len(attributes) == 100
    assert {k: attributes[k] for k in message.attributes} == dict(message.attributes)  # replayable
    assert attributes[wire.ATTR_DLQ_REASON] == "why"  # the reason first, then where and who
    assert attributes[wire.ATTR_DLQ_SUBSCRIPTION] == "s--c"
    assert wire.ATTR_DLQ_ATTEMPT not in attributes


def test_a_message_already_at_pubsubs_100_attributes_is_dead_lettered_with_them_alone(publisher):
    """Adding even the reason would make Pub/Sub refuse the dead letter, and the message loop."""
    full = {**encoded(like()).attributes, **{f"x-{i}": "v" for i in range(92)}}
    message = raw(b"{}", full)
    assert len(message.attributes) == 100
    PubSubDeadLetterSink("timeline_enrichment", project="p1").send(message, "s--c", "why")
    [(_, _, attributes)] = publisher.published
    assert attributes == dict(message.attributes)


def test_behind_an_eventarc_trigger_the_topic_names_the_subscription():
    """Eventarc pushes from its own subscription; the CloudEvent source names the topic."""
    sink = RecordingSink()
    step = DeadLetter(TOPOLOGY, "audit_log", sink)
    message = dataclasses.replace(
        raw(b"{nope", {}, subscription="eventarc-europe-west1-audit-log-281-sub-123"),
        topic="user-updated",
    )
    assert step(inflight(message, "audit_log"), Rest(REJECTED)).outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].subscription == "user-updated--audit_log"


def test_a_topic_the_consumer_does_not_subscribe_to_is_never_dead_lettered_for():
    """A trigger left on another topic: the event type picks among the consumer's own."""
    sink = RecordingSink()
    step = DeadLetter(TWO_TOPICS, "activity", sink)
    message = dataclasses.replace(
        encoded(like(), subscription="eventarc-sub-9"), topic="user-updated"
    )
    assert step(inflight(message, "activity"), Rest(REJECTED)).outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].subscription == "post-liked--activity"


def test_a_subscription_that_is_not_the_consumers_own_is_never_dead_lettered_to():
    sink = RecordingSink()
    message = raw(b"{}", {"ce-type": "order.dispatched.v1"}, subscription="eventarc-sub-9")
    step = DeadLetter(TOPOLOGY, "audit_log", sink)
    assert step(inflight(message, "audit_log"), Rest(REJECTED)).outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].subscription == "order-dispatched--audit_log"


def test_the_sink_reads_the_project_from_the_environment_by_default(publisher):
    PubSubDeadLetterSink("timeline_enrichment").send(encoded(like()), "s--c", "why")
    assert publisher.published[0][0] == "projects/env-project/topics/s--c--dlq"


def test_the_sink_waits_thirty_seconds_by_default_for_pubsub_to_accept(publisher):
    PubSubDeadLetterSink("timeline_enrichment", project="p1").send(encoded(like()), "s--c", "why")
    assert publisher.future.timeouts == [30.0]


def test_a_publish_failure_is_a_publish_error_naming_the_topic_and_event(publisher):
    publisher.future.outcome = TimeoutError("deadline exceeded")
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    with pytest.raises(PublishError) as info:
        sink.send(encoded(like(), event_id="e9"), "s--c", "why")
    assert (info.value.topic, info.value.event_id) == ("s--c--dlq", "e9")
    assert "deadline exceeded" in str(info.value)
    assert info.value.__cause__ is publisher.future.outcome


def test_a_message_without_a_ce_id_is_named_by_its_message_id(publisher):
    publisher.future.outcome = TimeoutError("deadline exceeded")
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    with pytest.raises(PublishError) as info:
        sink.send(raw(b"{nope", {}, message_id="m3"), "s--c", "why")
    assert info.value.event_id == "m3"


def test_a_missing_project_is_reported_as_such_not_as_a_publish_failure(
    publisher, monkeypatch: pytest.MonkeyPatch
):
    for name in ("PUBSUB_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="no project id"):
        PubSubDeadLetterSink("timeline_enrichment").send(encoded(like()), "s--c", "why")
    assert publisher.published == []


def test_closing_the_sink_stops_the_client_it_made(publisher):
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like()), "s--c", "why")
    sink.close()
    assert publisher.stopped and publisher.transport.closed


def test_a_sink_that_never_dead_lettered_makes_no_client(monkeypatch: pytest.MonkeyPatch):
    made: list[Any] = []
    monkeypatch.setattr(dead_lettering_module, "_publisher_client", lambda: made.append(1))
    PubSubDeadLetterSink("timeline_enrichment", project="p1").close()
    assert made == []


def test_a_reason_with_text_utf_8_cannot_encode_still_reaches_the_dead_letter(publisher):
    """A PermanentError reason built from bytes decoded with surrogateescape."""
    reason = b"bad byte \xff here".decode("utf-8", errors="surrogateescape")
    sink = PubSubDeadLetterSink("timeline_enrichment", project="p1")
    sink.send(encoded(like()), "post-liked--timeline_enrichment", reason)
    [(_, _, attributes)] = publisher.published
    assert attributes[wire.ATTR_DLQ_REASON] == "bad byte ? here"
