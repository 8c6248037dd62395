"""Unit-test a handler without an emulator: real pipeline, in-memory store, recorded dead letters.

    from shared.testing import HandlerHarness

    def test_unknown_carrier_is_dead_lettered():
        harness = HandlerHarness(TOPOLOGY, "order_notifications", handle)
        result = harness.deliver(OrderDispatched(..., carrier="pigeon"))
        assert result.status == "dead_lettered"
        assert harness.dead_letters[0].reason.startswith("PermanentError")

Everything but the transport is the production code path: decoding from the wire format,
the filter, ``max_event_age``, the idempotency claim, the ack contract. The same behaviours are
proven against the real emulator in the toolkit's own test suite.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from shared import wire
from shared.delivery import RawMessage
from shared.events import Event
from shared.runtime import DeadLetterSink, Handler, Outcome, Pipeline, Result
from shared.stores.base import Store
from shared.stores.sqlite import SqliteStore
from shared.topology import Topology

__all__ = ["DeadLetterRecord", "HandlerHarness", "Outcome", "RecordingSink", "Result"]


@dataclasses.dataclass(frozen=True)
class DeadLetterRecord:
    """A message the runtime sent to a dead-letter topic, with its reason."""

    subscription: str
    reason: str
    message: RawMessage


class RecordingSink:
    """A :class:`~shared.runtime.DeadLetterSink` that keeps what it is sent in :attr:`sent`.

    Args:
        forward: a sink that gets each dead letter first; what it refuses (raises) is not kept.
    """

    def __init__(self, forward: DeadLetterSink | None = None) -> None:
        self.forward = forward
        self.sent: list[DeadLetterRecord] = []

    def send(self, raw: RawMessage, subscription: str, reason: str) -> str:
        if self.forward is not None:
            self.forward.send(raw, subscription, reason)
        self.sent.append(DeadLetterRecord(subscription, reason, raw))
        return f"dead-letter-{len(self.sent)}"


class HandlerHarness:
    """Delivers events to a handler through the production pipeline, in memory.

    Args:
        topology: the declarations the handler's consumer belongs to.
        consumer: the consumer's name.
        handler: ``handler(event)`` or ``handler(event, delivery)``.
        store: defaults to a private in-memory SQLite store (``harness.store``).
        accepts: the event models the handler supports (as in ``ConsumerApp.handler``).
        dead_letter_sink: also sent every dead letter, before it is recorded in
            ``harness.dead_letters``; one that raises ``PublishError`` shows what happens when
            the dead-letter topic is unreachable (``DEAD_LETTER_FAILED``, nothing recorded).
    """

    def __init__(
        self,
        topology: Topology,
        consumer: str,
        handler: Handler,
        *,
        store: Store | None = None,
        accepts: Iterable[type[Event]] | None = None,
        dead_letter_sink: DeadLetterSink | None = None,
    ) -> None:
        self.topology = topology
        self.store = store or SqliteStore(":memory:")
        self._sink = RecordingSink(forward=dead_letter_sink)
        self.pipeline = Pipeline(
            topology,
            consumer,
            handler,
            store=(lambda: self.store) if topology.consumer(consumer).uses_store else None,
            dead_letters=self._sink,
            accepts=accepts,
        )

    @property
    def dead_letters(self) -> list[DeadLetterRecord]:
        return list(self._sink.sent)

    def deliver(
        self,
        event: Event,
        *,
        event_id: str | None = None,
        attempt: int = 1,
        time: datetime | None = None,
        subscription: str | None = None,
        ordering_key: str | None = None,
        traceparent: str | None = None,
    ) -> Result:
        """Encode ``event`` as a publisher would and deliver it once; returns the outcome.

        ``traceparent`` is the producer's W3C trace context, as a producer that traces sends it.
        """
        envelope = wire.new_envelope(
            event, source="/tests", event_id=event_id, time=time, traceparent=traceparent
        )
        data, attributes = wire.encode(event, envelope)
        return self.deliver_raw(
            data, attributes, attempt=attempt, subscription=subscription, ordering_key=ordering_key
        )

    def deliver_raw(
        self,
        data: bytes,
        attributes: Mapping[str, str],
        *,
        attempt: int = 1,
        subscription: str | None = None,
        ordering_key: str | None = None,
    ) -> Result:
        """Deliver a message as it would arrive off the wire (for malformed-input tests)."""
        if subscription is None:
            subs = self.topology.subscriptions_of(self.pipeline.consumer.name)
            event_type = attributes.get(wire.ATTR_TYPE)
            subscription = next(
                (s.name for s in subs if any(m.event_type == event_type for m in s.topic.events)),
                subs[0].name,
            )
        raw = RawMessage(
            data=data,
            attributes=dict(attributes),
            message_id=str(uuid.uuid4()),
            publish_time=datetime.now(UTC),
            ordering_key=ordering_key,
            attempt=attempt,
            subscription=subscription,
        )
        return self.pipeline.process(raw)
