"""The consumer's spans and metrics, through the whole pipeline, recorded by the real SDK.

The same spans across real processes, the emulator and HTTP are proven in test_trace_e2e.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from shared import PermanentError, RetryableError, telemetry
from shared.observability import CloudLoggingFormatter
from shared.system.events import PostLiked
from shared.testing import HandlerHarness
from tests.runtime._support import CANARY, TRACE_ID, TRACEPARENT, TWO_TOPICS, like, order
from tests.telemetry.conftest import Recorded, attributes, record

PARENT_SPAN = TRACEPARENT.split("-")[2]


def harness(handler: Callable[..., None] | None = None) -> HandlerHarness:
    def ignore(event: PostLiked) -> None:
        pass

    return HandlerHarness(TWO_TOPICS, "activity", handler or ignore)


def test_a_message_is_a_consumer_span_continuing_the_producers_trace(recorded: Recorded):
    result = harness().deliver(
        like(), event_id="e1", attempt=3, traceparent=TRACEPARENT, subscription=None
    )
    assert result.status == "handled"
    span = recorded.named("process post-liked--activity")
    assert span.kind is SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert f"{span.parent.span_id:016x}" == PARENT_SPAN
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) | {"messaging.message.id": "m"} == {
        "messaging.system": "gcp_pubsub",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "post-liked",
        "messaging.destination.subscription.name": "post-liked--activity",
        "messaging.consumer.group.name": "post-liked--activity",
        "messaging.message.id": "m",
        "messaging.message.body.size": attributes(span)["messaging.message.body.size"],
        "messaging.gcp_pubsub.message.delivery_attempt": 3,
        "cloudevents.event_id": "e1",
        "cloudevents.event_type": "post.liked.v1",
        "cloudevents.event_source": attributes(span)["cloudevents.event_source"],
        "pubsub_kit.consumer": "activity",
        "pubsub_kit.status": "handled",
    }


def test_the_handler_is_a_child_span_of_the_message(recorded: Recorded):
    harness().deliver(like(), traceparent=TRACEPARENT)
    message = recorded.named("process post-liked--activity")
    handler = recorded.named("handle activity")
    assert handler.parent is not None and handler.parent.span_id == message.context.span_id
    assert handler.context.trace_id == message.context.trace_id
    assert handler.attributes == {
        "pubsub_kit.consumer": "activity",
        "cloudevents.event_type": "post.liked.v1",
        "cloudevents.event_id": attributes(handler)["cloudevents.event_id"],
        "pubsub_kit.status": "handled",
    }


def test_a_message_without_a_trace_starts_one(recorded: Recorded):
    harness().deliver(like())
    span = recorded.named("process post-liked--activity")
    assert span.parent is None and span.context.trace_id != 0


@pytest.mark.parametrize(
    ("raises", "status", "reason"),
    [
        (RetryableError("inventory service is down"), "retry", "inventory service is down"),
        (ValueError(CANARY), "retry", "ValueError"),
        (PermanentError("no such carrier"), "dead_lettered", "PermanentError: no such carrier"),
    ],
)
def test_the_span_status_follows_the_outcome_and_never_quotes_an_exception(
    recorded: Recorded, raises: Exception, status: str, reason: str
):
    def handler(event: PostLiked) -> None:
        raise raises

    assert harness(handler).deliver(like()).status == status
    for span in recorded.spans:
        if span.name.startswith("dead-letter"):
            continue  # dead-lettering worked: its own span is no failure
        assert span.status.status_code is StatusCode.ERROR, span.name
        assert span.status.description == reason
        assert CANARY not in json.dumps(dict(span.attributes or {}))
        assert not span.events  # no exception event: its message may quote event data
    assert attributes(recorded.named("process post-liked--activity"))["pubsub_kit.status"] == status


def test_dead_lettering_is_a_producer_span_inside_the_message(recorded: Recorded):
    def handler(event: PostLiked) -> None:
        raise PermanentError("no such carrier")

    harness(handler).deliver(like())
    message = recorded.named("process post-liked--activity")
    dead_letter = recorded.named("dead-letter post-liked--activity--dlq")
    assert dead_letter.kind is SpanKind.PRODUCER
    assert dead_letter.parent is not None
    assert dead_letter.parent.span_id == message.context.span_id
    assert attributes(dead_letter)["messaging.destination.name"] == "post-liked--activity--dlq"
    assert dead_letter.status.status_code is StatusCode.UNSET  # dead-lettering itself worked


def test_outcomes_that_are_not_failures_leave_the_status_unset(recorded: Recorded):
    h = harness()
    h.deliver(like(), event_id="same")
    h.deliver(like(), event_id="same")  # a duplicate: acked, handler not run
    first, second = [s for s in recorded.spans if s.name.startswith("process")]
    assert [attributes(first)["pubsub_kit.status"], attributes(second)["pubsub_kit.status"]] == [
        "handled",
        "duplicate",
    ]
    assert {first.status.status_code, second.status.status_code} == {StatusCode.UNSET}
    assert len([s for s in recorded.spans if s.name == "handle activity"]) == 1


def test_messages_are_counted_by_consumer_and_status_and_handlers_timed(recorded: Recorded):
    def handler(event: Any) -> None:
        if event.event_type == "order.dispatched.v1":
            raise PermanentError("no such carrier")

    h = harness(handler)
    h.deliver(like(), event_id="a")
    h.deliver(like(), event_id="a")
    h.deliver(order(), event_id="b")
    counts = {
        (attributes(p)["pubsub_kit.consumer"], attributes(p)["pubsub_kit.status"]): p.value
        for p in recorded.points("pubsub_kit.messages")
    }
    assert counts == {
        ("activity", "handled"): 1,
        ("activity", "duplicate"): 1,
        ("activity", "dead_lettered"): 1,
    }
    durations = {
        attributes(p)["pubsub_kit.status"]: p.count
        for p in recorded.points("pubsub_kit.handler.duration")
    }
    assert durations == {"handled": 1, "rejected": 1}  # the handler ran twice


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_log_lines_carry_the_span_they_were_written_in(recorded: Recorded, json_lines):
    def handler(event: PostLiked) -> None:
        logging.getLogger("app").info("inside the handler")

    harness(handler).deliver(like(), traceparent=TRACEPARENT)
    inside, done = (
        line for line in json_lines() if line["logger"] in ("app", "pubsub_kit.consumer")
    )
    handler_span = recorded.named("handle activity")
    message_span = recorded.named("process post-liked--activity")
    assert inside["logging.googleapis.com/spanId"] == f"{handler_span.context.span_id:016x}"
    assert done["logging.googleapis.com/spanId"] == f"{message_span.context.span_id:016x}"
    assert done["logging.googleapis.com/trace"].endswith(TRACE_ID)
    assert done["logging.googleapis.com/trace_sampled"] is True


def test_a_trace_the_sampler_drops_says_so_in_the_logs(json_lines):
    dropped = record(sampler=ALWAYS_OFF)
    try:
        harness().deliver(like())
    finally:
        telemetry.reset()
    assert dropped.spans == []
    [line] = [line for line in json_lines() if line["logger"] == "pubsub_kit.consumer"]
    assert line["logging.googleapis.com/trace_sampled"] is False
