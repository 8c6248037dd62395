"""Create a topology's topics and subscriptions on the emulator (or any project), idempotently.

Every consumer subscription is created as a *pull* subscription with its retry policy, its
dead-letter policy and its filter. On GCP, Terraform makes the same subscriptions push
subscriptions to the functions; locally the runtime pulls and delivers the same push body over
HTTP, because the emulator's own push loses messages while a consumer is down (see
``shared.tools.dev``). Running it twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from shared.config import project_id
from shared.topology import Subscription, Topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

log = logging.getLogger(__name__)

DLQ_RETENTION_SECONDS = 7 * 24 * 3600  # what Pub/Sub allows at most for a subscription


@dataclasses.dataclass
class ProvisionReport:
    """What a run did, by resource path."""

    created: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def provision(
    topology: Topology,
    *,
    project: str | None = None,
    publisher: PublisherClient | None = None,
    subscriber: SubscriberClient | None = None,
) -> ProvisionReport:
    """Create what is missing, update what drifted, leave the rest alone.

    Returns:
        A :class:`ProvisionReport`. Resources not in the topology are never deleted.
    """
    from google.cloud import pubsub_v1

    project = project or project_id()
    publisher = publisher or pubsub_v1.PublisherClient()
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    report = ProvisionReport()
    for topic in topology.topics.values():
        _ensure_topic(publisher, f"projects/{project}/topics/{topic.name}", report)
    for sub in topology.subscriptions.values():
        dlq_topic = f"projects/{project}/topics/{sub.dead_letter_topic}"
        _ensure_topic(publisher, dlq_topic, report)
        _ensure_subscription(subscriber, _dead_letter_spec(project, sub), report)
        _ensure_subscription(subscriber, _consumer_spec(project, sub), report)
    return report


def _consumer_spec(project: str, sub: Subscription) -> dict[str, Any]:
    c = sub.consumer
    return {
        "name": f"projects/{project}/subscriptions/{sub.name}",
        "topic": f"projects/{project}/topics/{sub.topic.name}",
        "ack_deadline_seconds": c.ack_deadline,
        "enable_message_ordering": c.ordered,
        "filter": c.filter or "",
        "retry_policy": {
            "minimum_backoff": {
                "seconds": int(c.retry.minimum_backoff),
                "nanos": _nanos(c.retry.minimum_backoff),
            },
            "maximum_backoff": {
                "seconds": int(c.retry.maximum_backoff),
                "nanos": _nanos(c.retry.maximum_backoff),
            },
        },
        "dead_letter_policy": {
            "dead_letter_topic": f"projects/{project}/topics/{sub.dead_letter_topic}",
            "max_delivery_attempts": c.max_delivery_attempts,
        },
    }


def _dead_letter_spec(project: str, sub: Subscription) -> dict[str, Any]:
    return {
        "name": f"projects/{project}/subscriptions/{sub.dead_letter_subscription}",
        "topic": f"projects/{project}/topics/{sub.dead_letter_topic}",
        "ack_deadline_seconds": 60,
        "message_retention_duration": {"seconds": DLQ_RETENTION_SECONDS},
        "retain_acked_messages": False,
    }


def _nanos(seconds: float) -> int:
    return round((seconds - int(seconds)) * 1e9)


def _ensure_topic(publisher: PublisherClient, path: str, report: ProvisionReport) -> None:
    from google.api_core import exceptions

    try:
        publisher.create_topic(request={"name": path})
        report.created.append(path)
        log.info("created topic", extra={"fields": {"topic": path}})
    except exceptions.AlreadyExists:
        report.unchanged.append(path)


# Fields that can change in place; the others (topic, filter, ordering) are fixed at creation.
_MUTABLE = ("ack_deadline_seconds", "retry_policy", "dead_letter_policy")


def _ensure_subscription(
    subscriber: SubscriberClient, spec: dict[str, Any], report: ProvisionReport
) -> None:
    from google.api_core import exceptions
    from google.cloud.pubsub_v1 import types
    from google.protobuf import field_mask_pb2

    wanted = types.Subscription(**spec)
    try:
        subscriber.create_subscription(request=wanted)
        report.created.append(spec["name"])
        log.info("created subscription", extra={"fields": {"subscription": spec["name"]}})
        return
    except exceptions.AlreadyExists:
        pass
    existing = subscriber.get_subscription(request={"subscription": spec["name"]})
    fixed = [
        f
        for f in ("topic", "filter", "enable_message_ordering")
        if getattr(existing, f) != getattr(wanted, f)
    ]
    if fixed:
        log.warning(
            "subscription differs in fields that cannot change in place; delete it to recreate",
            extra={"fields": {"subscription": spec["name"], "fields_differing": fixed}},
        )
    drifted = [f for f in _MUTABLE if f in spec and getattr(existing, f) != getattr(wanted, f)]
    if not drifted:
        report.unchanged.append(spec["name"])
        return
    subscriber.update_subscription(
        request={"subscription": wanted, "update_mask": field_mask_pb2.FieldMask(paths=drifted)}
    )
    report.updated.append(spec["name"])
    log.info(
        "updated subscription", extra={"fields": {"subscription": spec["name"], "fields": drifted}}
    )
