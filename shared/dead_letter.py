"""Dead-lettering by the runtime, and inspecting and replaying what was dead-lettered.

Two roads lead to a subscription's dead-letter topic ``<topic>--<consumer>--dlq``:

- the runtime sends a message there *at once* when it can never succeed (undecodable data, an
  unknown or unsupported event type, a :class:`~shared.errors.PermanentError`), with the reason
  in the ``pubsubkit-dlq-reason`` attribute;
- Pub/Sub sends it there after ``max_delivery_attempts`` failed deliveries, with its own
  ``CloudPubSubDeadLetterSource*`` attributes.

Either way the original data and attributes are kept, so :func:`replay` can publish the message
again to its original topic once the cause is fixed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared import _codec
from shared.delivery import RawMessage
from shared.errors import PublishError
from shared.topology import DLQ_SUFFIX, Topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

# Attributes added on the way to the dead-letter topic; removed again on replay.
_ADDED_ATTRIBUTES = (
    _codec.ATTR_DLQ_REASON,
    _codec.ATTR_DLQ_CONSUMER,
    _codec.ATTR_DLQ_SUBSCRIPTION,
    _codec.ATTR_DLQ_MESSAGE_ID,
    _codec.ATTR_DLQ_ATTEMPT,
)
_PUBSUB_DLQ_PREFIX = "CloudPubSubDeadLetterSource"
MAX_REASON_LENGTH = 1000  # characters; attribute values may hold 1024 bytes


class DeadLetterSink:
    """Publishes messages the runtime gives up on to their subscription's dead-letter topic.

    The client library is imported on first use: a consumer that never dead-letters never
    pays for it at cold start.
    """

    def __init__(self, project: str, consumer: str) -> None:
        self.project = project
        self.consumer = consumer
        self._client: PublisherClient | None = None
        self._lock = threading.Lock()

    def _publisher(self) -> PublisherClient:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def send(self, raw: RawMessage, subscription: str, reason: str, timeout: float = 30.0) -> str:
        """Publish ``raw`` with ``reason`` to ``subscription``'s dead-letter topic; wait for it.

        Returns:
            The dead-letter message's id.

        Raises:
            PublishError: the dead-letter topic did not accept it (the caller must not ack).
        """
        topic = subscription + DLQ_SUFFIX
        attributes = dict(raw.attributes)
        attributes.update(
            {
                _codec.ATTR_DLQ_REASON: reason[:MAX_REASON_LENGTH],
                _codec.ATTR_DLQ_CONSUMER: self.consumer,
                _codec.ATTR_DLQ_SUBSCRIPTION: subscription,
                _codec.ATTR_DLQ_MESSAGE_ID: raw.message_id,
            }
        )
        if raw.attempt is not None:
            attributes[_codec.ATTR_DLQ_ATTEMPT] = str(raw.attempt)
        path = f"projects/{self.project}/topics/{topic}"
        try:
            return self._publisher().publish(path, raw.data, **attributes).result(timeout=timeout)
        except Exception as exc:
            raise PublishError(topic, raw.attributes.get(_codec.ATTR_ID, raw.message_id), exc) from exc


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message, as :func:`inspect` shows it."""

    subscription: str  # the source subscription
    message_id: str
    event_id: str | None
    event_type: str | None
    reason: str
    attempts: int | None
    data: bytes
    attributes: Mapping[str, str]
    ack_id: str = dataclasses.field(repr=False, default="")


def _reason(attributes: Mapping[str, str]) -> str:
    if _codec.ATTR_DLQ_REASON in attributes:
        return attributes[_codec.ATTR_DLQ_REASON]
    count = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount")
    if count:
        return f"delivery failed {count} times (max_delivery_attempts reached)"
    return "unknown"


def _attempts(attributes: Mapping[str, str]) -> int | None:
    value = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount") or attributes.get(
        _codec.ATTR_DLQ_ATTEMPT
    )
    return int(value) if value and value.isdigit() else None


def inspect(
    topology: Topology,
    subscription: str,
    *,
    project: str,
    subscriber: SubscriberClient | None = None,
    max_messages: int = 100,
    timeout: float = 5.0,
) -> list[DeadLetter]:
    """Read up to ``max_messages`` dead letters of ``subscription`` without removing them.

    The messages are pulled and immediately made available again (ack deadline 0), so
    inspecting changes nothing but their delivery count on the dead-letter subscription.
    """
    from google.cloud import pubsub_v1

    source = topology.subscription(subscription)
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    path = f"projects/{project}/subscriptions/{source.dead_letter_subscription}"
    letters = _pull(subscriber, path, source.name, max_messages, timeout)
    if letters:
        subscriber.modify_ack_deadline(
            request={"subscription": path, "ack_ids": [d.ack_id for d in letters], "ack_deadline_seconds": 0}
        )
    return letters


def _pull(
    subscriber: SubscriberClient, path: str, source: str, max_messages: int, timeout: float
) -> list[DeadLetter]:
    from google.api_core import exceptions

    letters: dict[str, DeadLetter] = {}
    # One pull may return fewer messages than are there; ask again until an empty answer. The
    # first waits for messages; the others only collect what is already there.
    while len(letters) < max_messages:
        try:
            response = subscriber.pull(
                request={
                    "subscription": path,
                    "max_messages": max_messages - len(letters),
                    "return_immediately": bool(letters),
                },
                timeout=timeout,
            )
        except exceptions.DeadlineExceeded:
            break
        if not response.received_messages:
            break
        for received in response.received_messages:
            message = received.message
            attributes = dict(message.attributes)
            letters.setdefault(
                message.message_id,
                DeadLetter(
                    subscription=source,
                    message_id=attributes.get(_codec.ATTR_DLQ_MESSAGE_ID, message.message_id),
                    event_id=attributes.get(_codec.ATTR_ID),
                    event_type=attributes.get(_codec.ATTR_TYPE),
                    reason=_reason(attributes),
                    attempts=_attempts(attributes),
                    data=bytes(message.data),
                    attributes=attributes,
                    ack_id=received.ack_id,
                ),
            )
    return list(letters.values())


def replay(
    topology: Topology,
    subscription: str,
    *,
    project: str,
    subscriber: SubscriberClient | None = None,
    publisher: PublisherClient | None = None,
    max_messages: int = 1000,
    timeout: float = 5.0,
) -> int:
    """Publish dead letters of ``subscription`` to its topic again, then remove them.

    The original data and attributes (``ce-id`` included) are published unchanged but for the
    dead-letter attributes, so consumers that already handled an event still see a duplicate.
    Every consumer of the topic receives the replayed message; the others' idempotency makes
    that harmless. A message is acked on the dead-letter subscription only after its re-publish
    succeeded, so a failed replay loses nothing.

    Returns:
        How many messages were replayed.
    """
    from google.cloud import pubsub_v1

    source = topology.subscription(subscription)
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    publisher = publisher or pubsub_v1.PublisherClient()
    dlq_path = f"projects/{project}/subscriptions/{source.dead_letter_subscription}"
    topic_path = f"projects/{project}/topics/{source.topic.name}"
    replayed = 0
    while replayed < max_messages:
        letters = _pull(subscriber, dlq_path, source.name, min(100, max_messages - replayed), timeout)
        if not letters:
            break
        futures = [
            (letter, publisher.publish(topic_path, letter.data, **_original(letter.attributes)))
            for letter in letters
        ]
        for letter, future in futures:
            future.result(timeout=60)
            subscriber.acknowledge(request={"subscription": dlq_path, "ack_ids": [letter.ack_id]})
            replayed += 1
    return replayed


def _original(attributes: Mapping[str, str]) -> dict[str, Any]:
    return {
        k: v
        for k, v in attributes.items()
        if k not in _ADDED_ATTRIBUTES and not k.startswith(_PUBSUB_DLQ_PREFIX)
    }
