"""What a handler learns about the delivery of its event, and the raw message it came from."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from shared.wire import Envelope


@dataclasses.dataclass(frozen=True)
class RawMessage:
    """A Pub/Sub message as it arrived, before decoding; the same for push, Eventarc and pull."""

    data: bytes
    attributes: Mapping[str, str]
    message_id: str
    publish_time: datetime | None = None
    ordering_key: str | None = None
    attempt: int | None = None  # None where the platform does not say (Eventarc triggers)
    subscription: str | None = None  # short name, e.g. "post-liked--audit_log"
    topic: str | None = None  # where the transport says (an Eventarc CloudEvent's source)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """The delivery of one event to one consumer.

    Attributes:
        envelope: the event's CloudEvents context (id, source, time, correlation, trace).
        message_id: Pub/Sub's id of this message.
        publish_time: when Pub/Sub accepted it.
        attempt: 1 on first delivery; ``None`` when the platform does not count attempts.
        ordering_key: the message's ordering key, if any.
        subscription: the subscription it came through.
    """

    envelope: Envelope
    message_id: str
    publish_time: datetime | None
    attempt: int | None
    ordering_key: str | None
    subscription: str | None

    @property
    def event_id(self) -> str:
        return self.envelope.id

    @property
    def event_key(self) -> str:
        """The event's source and id as one string: the token for idempotent effects.

        Pass it as ``once=`` (scoped by consumer): two producers may reuse an id, but not a
        source and an id (:attr:`shared.wire.Envelope.identity`).
        """
        return self.envelope.identity

    @property
    def correlation_id(self) -> str | None:
        return self.envelope.correlation_id

    @classmethod
    def of(cls, raw: RawMessage, envelope: Envelope) -> Delivery:
        return cls(
            envelope=envelope,
            message_id=raw.message_id,
            publish_time=raw.publish_time,
            attempt=raw.attempt,
            ordering_key=raw.ordering_key,
            subscription=raw.subscription,
        )
