"""``pubsub-kit dlq``: inspect and replay what was dead-lettered.

What reaches a dead-letter topic, and how, is told in :mod:`shared.runtime.dead_lettering`.
Either road keeps the original data and attributes, so :func:`replay` can publish the message
again to its original topic once the cause is fixed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from shared import wire
from shared._clients import subscriber_client
from shared.topology import Topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

# Attributes added on the way to the dead-letter topic; removed again on replay.
_ADDED_ATTRIBUTES = (
    wire.ATTR_DLQ_REASON,
    wire.ATTR_DLQ_CONSUMER,
    wire.ATTR_DLQ_SUBSCRIPTION,
    wire.ATTR_DLQ_MESSAGE_ID,
    wire.ATTR_DLQ_ATTEMPT,
)
_PUBSUB_DLQ_PREFIX = "CloudPubSubDeadLetterSource"


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
    if wire.ATTR_DLQ_REASON in attributes:
        return attributes[wire.ATTR_DLQ_REASON]
    count = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount")
    if count:
        return f"delivery failed {count} times (max_delivery_attempts reached)"
    return "unknown"


def _attempts(attributes: Mapping[str, str]) -> int | None:
    value = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount") or attributes.get(
        wire.ATTR_DLQ_ATTEMPT
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
    source = topology.subscription(subscription)
    path = f"projects/{project}/subscriptions/{source.dead_letter_subscription}"
    with _subscriber(subscriber) as client:
        letters = _pull(client, path, source.name, max_messages, timeout)
        if letters:
            client.modify_ack_deadline(
                request={
                    "subscription": path,
                    "ack_ids": [d.ack_id for d in letters],
                    "ack_deadline_seconds": 0,
                }
            )
    return letters


@contextlib.contextmanager
def _subscriber(given: SubscriberClient | None) -> Iterator[SubscriberClient]:
    """``given``, or a client of our own that is closed afterwards."""
    if given is not None:
        yield given
        return
    with subscriber_client() as client:
        yield client


@contextlib.contextmanager
def _publisher(given: PublisherClient | None) -> Iterator[PublisherClient]:
    if given is not None:
        yield given
        return
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    try:
        yield client
    finally:
        client.stop()
        client.transport.close()


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
                    message_id=attributes.get(wire.ATTR_DLQ_MESSAGE_ID, message.message_id),
                    event_id=attributes.get(wire.ATTR_ID),
                    event_type=attributes.get(wire.ATTR_TYPE),
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
    source = topology.subscription(subscription)
    dlq_path = f"projects/{project}/subscriptions/{source.dead_letter_subscription}"
    topic_path = f"projects/{project}/topics/{source.topic.name}"
    replayed = 0
    with _subscriber(subscriber) as pull, _publisher(publisher) as push:
        while replayed < max_messages:
            batch = min(100, max_messages - replayed)
            letters = _pull(pull, dlq_path, source.name, batch, timeout)
            if not letters:
                break
            futures = [
                (letter, push.publish(topic_path, letter.data, **_original(letter.attributes)))
                for letter in letters
            ]
            for letter, future in futures:
                future.result(timeout=60)
                pull.acknowledge(request={"subscription": dlq_path, "ack_ids": [letter.ack_id]})
                replayed += 1
    return replayed


def _original(attributes: Mapping[str, str]) -> dict[str, Any]:
    return {
        k: v
        for k, v in attributes.items()
        if k not in _ADDED_ATTRIBUTES and not k.startswith(_PUBSUB_DLQ_PREFIX)
    }
