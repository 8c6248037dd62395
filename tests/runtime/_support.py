"""Messages, stub ``call_next`` functions and a small topology for testing one step at a time.

A step is ``step(message, call_next) -> Result`` (shared/runtime/step.py), so each test calls it
with a stub for the rest of the pipeline, as Watermill tests a middleware around a stub handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from shared import wire
from shared.delivery import RawMessage
from shared.errors import PublishError
from shared.events import Event
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.system.events import OrderDispatched, PostLiked, UserUpdated
from shared.topology import Consumer, Topic, Topology

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
CANARY = "canary-5d1e@example.com"  # must never reach a log line or a reason
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"

# One consumer on two topics, one on a single topic: enough to tell subscriptions apart.
TWO_TOPICS = Topology(
    topics=[
        Topic("post-liked", events=[PostLiked]),
        Topic("order-dispatched", events=[OrderDispatched]),
        Topic("user-updated", events=[UserUpdated]),
    ],
    consumers=[
        Consumer("activity", topics=["post-liked", "order-dispatched"]),
        Consumer("profiles", topics=["user-updated"]),
    ],
)


def like(post_id: str = "p1") -> PostLiked:
    return PostLiked(post_id=post_id, liker_id="u1", author_id="u2", liked_at=NOW)


def order() -> OrderDispatched:
    return OrderDispatched(order_id="o1", customer_id="c1", carrier="dhl", dispatched_at=NOW)


def raw(
    data: bytes = b"{}",
    attributes: Mapping[str, str] | None = None,
    *,
    message_id: str = "m1",
    attempt: int | None = 1,
    subscription: str | None = "post-liked--timeline_enrichment",
) -> RawMessage:
    """A message as it comes off the wire, before any step has looked at it."""
    return RawMessage(
        data=data,
        attributes=dict(attributes or {}),
        message_id=message_id,
        publish_time=NOW,
        attempt=attempt,
        subscription=subscription,
    )


def encoded(
    event: Event,
    *,
    event_id: str = "e1",
    time: datetime = NOW,
    message_id: str = "m1",
    attempt: int | None = 1,
    subscription: str | None = "post-liked--timeline_enrichment",
    correlation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> RawMessage:
    """``event`` encoded as a publisher would, then delivered."""
    envelope = wire.new_envelope(
        event,
        source="/tests",
        event_id=event_id,
        time=time,
        correlation_id=correlation_id,
        traceparent=traceparent,
        tracestate=tracestate,
    )
    data, attributes = wire.encode(event, envelope)
    return raw(data, attributes, message_id=message_id, attempt=attempt, subscription=subscription)


def inflight(raw_message: RawMessage, consumer: str = "timeline_enrichment") -> Inflight:
    """The message as the first step sees it: not decoded yet."""
    return Inflight(raw_message, consumer)


def decoded(
    event: Event,
    consumer: str = "timeline_enrichment",
    *,
    event_id: str = "e1",
    time: datetime = NOW,
    attempt: int | None = 1,
    subscription: str | None = "post-liked--timeline_enrichment",
) -> Inflight:
    """The message as the steps after decoding see it."""
    message = encoded(
        event, event_id=event_id, time=time, attempt=attempt, subscription=subscription
    )
    typed, envelope = wire.decode(message.data, message.attributes, TWO_TOPICS.registry)
    return Inflight(message, consumer, typed, envelope)


class Rest:
    """A stub for ``call_next``: records what it is given and answers ``result``."""

    def __init__(self, result: Result | Outcome = Outcome.HANDLED) -> None:
        self.result = result if isinstance(result, Result) else Result(result)
        self.seen: list[Inflight] = []

    def __call__(self, message: Inflight) -> Result:
        self.seen.append(message)
        return self.result

    @property
    def called(self) -> bool:
        return bool(self.seen)


class Raising:
    """A stub for ``call_next`` that raises ``error`` (a step whose store is down, say)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, message: Inflight) -> Result:
        raise self.error


class FailingSink:
    """A dead-letter sink that cannot publish, as when Pub/Sub refuses or times out."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or PublishError("t--c--dlq", "e1", "deadline exceeded")
        self.attempts = 0

    def send(self, raw: RawMessage, subscription: str, reason: str) -> str:
        self.attempts += 1
        raise self.error
