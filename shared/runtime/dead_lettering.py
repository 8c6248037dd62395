"""Step: settle what can never succeed by publishing it to its dead-letter topic, with the reason.

Two roads lead to a subscription's dead-letter topic ``<topic>--<consumer>--dlq``:

- this step sends a message there *at once* when the rest of the pipeline rejected it
  (undecodable, an unknown or unsupported type, too old, a :class:`~shared.errors.PermanentError`),
  with the reason in the ``pubsubkit-dlq-reason`` attribute;
- Pub/Sub sends it there after ``max_delivery_attempts`` failed deliveries, with its own
  ``CloudPubSubDeadLetterSource*`` attributes.

Either way the original data and attributes are kept, so ``pubsub-kit dlq replay`` can publish it
again once the cause is fixed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from shared import telemetry, wire
from shared._clients import Lazy
from shared.config import project_id
from shared.delivery import RawMessage
from shared.errors import PublishError, ToolkitError
from shared.observability import describe_exception
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next
from shared.topology import Topology, dead_letter_name, subscription_name

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

log = logging.getLogger("pubsub_kit.consumer")

MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's limit for one attribute value, in UTF-8 bytes
MAX_ATTRIBUTES = 100  # Pub/Sub's limit of attributes per message


class DeadLetterSink(Protocol):
    """Where the runtime sends what it gives up on (Pub/Sub, or a list in unit tests)."""

    def send(self, raw: RawMessage, subscription: str, reason: str) -> str:
        """Put ``raw`` on ``subscription``'s dead-letter topic with ``reason``; its new id.

        Raises:
            ToolkitError: it did not get there; the caller must not ack the message.
        """
        ...


class PubSubDeadLetterSink:
    """Publishes to ``<subscription>--dlq`` and waits until Pub/Sub accepted it.

    The client library is imported on first use, and the project read then: a consumer that
    never dead-letters never pays for either.

    Args:
        consumer: recorded on the dead letter (``pubsubkit-dlq-consumer``).
        project: default :func:`shared.config.project_id` at the first dead letter.
        timeout: seconds to wait for Pub/Sub to accept a dead letter.
    """

    def __init__(self, consumer: str, project: str | None = None, timeout: float = 30.0) -> None:
        self.consumer = consumer
        self.project = project
        self.timeout = timeout
        self._client: Lazy[PublisherClient] = Lazy(_publisher_client, _close_publisher)

    def send(self, raw: RawMessage, subscription: str, reason: str) -> str:
        topic = dead_letter_name(subscription)
        attributes = dead_letter_attributes(raw, self.consumer, subscription, reason)
        event_id = raw.attributes.get(wire.ATTR_ID, raw.message_id)
        try:
            path = f"projects/{project_id(self.project)}/topics/{topic}"
            future = self._client.get().publish(path, raw.data, **attributes)
            return str(future.result(timeout=self.timeout))
        except ToolkitError:
            raise
        except Exception as exc:
            raise PublishError(topic, event_id, exc) from exc

    def close(self) -> None:
        self._client.close()


def dead_letter_attributes(
    raw: RawMessage, consumer: str, subscription: str, reason: str
) -> dict[str, str]:
    """The dead letter's attributes: the original ones (for replay), then why, who and where.

    Within Pub/Sub's limits, or the dead-letter publish itself would fail and the message loop:
    the reason is cut to 1,024 UTF-8 bytes on a character boundary, and when the original
    attributes leave no room for all of ours, ours are added in order of use until 100.
    """
    ours = {
        wire.ATTR_DLQ_REASON: fit_bytes(reason, MAX_ATTRIBUTE_BYTES),
        wire.ATTR_DLQ_SUBSCRIPTION: subscription,
        wire.ATTR_DLQ_CONSUMER: consumer,
        wire.ATTR_DLQ_MESSAGE_ID: raw.message_id,
    }
    if raw.attempt is not None:
        ours[wire.ATTR_DLQ_ATTEMPT] = str(raw.attempt)
    attributes = {k: v for k, v in raw.attributes.items() if k not in ours}
    room = max(0, MAX_ATTRIBUTES - len(attributes))
    attributes.update(dict(list(ours.items())[:room]))
    return attributes


def fit_bytes(text: str, limit: int) -> str:
    """``text`` as valid UTF-8 of at most ``limit`` bytes, never cut inside a character.

    A lone surrogate (text decoded with ``surrogateescape``, say) has no UTF-8 form and becomes
    ``?``: a reason that cannot be encoded must not stop the message reaching its dead letter.
    """
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return encoded.decode("utf-8")
    return encoded[:limit].decode("utf-8", errors="ignore")


def _publisher_client() -> PublisherClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


def _close_publisher(client: PublisherClient) -> None:
    client.stop()
    client.transport.close()


class DeadLetter:
    """Turn a rejected result into a dead letter: acked once Pub/Sub has it, nacked otherwise.

    Args:
        topology: tells which subscription a message came through when the delivery does not
            say (an Eventarc trigger).
        consumer: the consumer's name.
        sink: where dead letters go.
    """

    def __init__(self, topology: Topology, consumer: str, sink: DeadLetterSink) -> None:
        self.topology = topology
        self.consumer = consumer
        self.sink = sink

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        result = call_next(message)
        if result.outcome is not Outcome.REJECTED:
            return result
        reason = result.reason or "rejected"
        subscription = self.subscription_of(message.raw)
        if subscription is None:
            return Result(
                Outcome.DEAD_LETTER_FAILED,
                f"cannot tell which subscription to dead-letter for: {reason}",
            )
        target = dead_letter_name(subscription)
        attributes = {
            telemetry.SYSTEM: telemetry.GCP_PUBSUB,
            telemetry.OPERATION_TYPE: "send",
            telemetry.DESTINATION: target,
            telemetry.REASON: reason,
        }
        with telemetry.span(f"dead-letter {target}", attributes, producer=True) as span:
            try:
                self.sink.send(message.raw, subscription, reason)
            except ToolkitError as exc:  # PublishError, or no project configured
                error = describe_exception(exc)
                log.error("dead-lettering failed", extra={"fields": {"error": error}})
                telemetry.fail(span, error["type"])
                return Result(Outcome.DEAD_LETTER_FAILED, f"dead-lettering failed: {reason}")
        return Result(Outcome.DEAD_LETTERED, reason)

    def subscription_of(self, raw: RawMessage) -> str | None:
        """Which of this consumer's subscriptions ``raw`` belongs to, from the topology.

        The delivered subscription when it is one of ours; behind an Eventarc trigger the push
        comes from Eventarc's own subscription (``eventarc-...``), so then the topic named by
        the CloudEvent's source, else the only subscription whose topic carries the event type.
        """
        ours = {sub.name: sub for sub in self.topology.subscriptions_of(self.consumer)}
        if raw.subscription in ours:
            return raw.subscription
        if raw.topic is not None and subscription_name(raw.topic, self.consumer) in ours:
            return subscription_name(raw.topic, self.consumer)
        if len(ours) == 1:
            return next(iter(ours))
        event_type = raw.attributes.get(wire.ATTR_TYPE)
        carrying = [
            name
            for name, sub in ours.items()
            if any(m.event_type == event_type for m in sub.topic.events)
        ]
        return carrying[0] if len(carrying) == 1 else None
