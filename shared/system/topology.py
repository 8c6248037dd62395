"""The example system's topology: the single source of its topics, subscriptions and functions.

``pubsub-kit provision`` creates it on the emulator, ``pubsub-kit dev`` runs it locally and
``pubsub-kit topology export --terraform`` writes ``infra/topology.json`` for GCP.
"""

from __future__ import annotations

from shared.system.events import (
    NotificationRequested,
    OrderDispatched,
    PostLiked,
    UserUpdated,
)
from shared.topology import Consumer, FunctionSettings, RetryPolicy, Topic, Topology

TOPOLOGY = Topology(
    topics=[
        Topic("post-liked", events=[PostLiked]),
        Topic("user-updated", events=[UserUpdated]),
        Topic("order-dispatched", events=[OrderDispatched]),
        Topic("notification-requested", events=[NotificationRequested]),
    ],
    consumers=[
        Consumer(
            "timeline_enrichment",
            topics=["post-liked"],
            retry=RetryPolicy(minimum_backoff=10, maximum_backoff=300),
            # Likes are only worth ranking a timeline with for a week.
            max_event_age=7 * 24 * 3600,
        ),
        Consumer(
            "audit_log",
            topics=["post-liked", "user-updated", "order-dispatched", "notification-requested"],
            # The audit trail must not miss anything: more attempts before dead-lettering.
            max_delivery_attempts=10,
            retry=RetryPolicy(minimum_backoff=10, maximum_backoff=600),
        ),
        Consumer(
            "order_notifications",
            topics=["order-dispatched"],
            filter='attributes.ce-type = "order.dispatched.v1"',
            publishes=["notification-requested"],
            retry=RetryPolicy(minimum_backoff=10, maximum_backoff=300),
            function=FunctionSettings(max_instances=5),
        ),
    ],
)
