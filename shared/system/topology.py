"""The example system's topology: the single source of its topics, subscriptions and functions.

``pubsub-kit provision`` creates it on the emulator, ``pubsub-kit dev`` runs it locally and
``pubsub-kit topology export --terraform`` writes ``infra/topology.json`` for GCP.
"""

from __future__ import annotations

from shared.system.events import (
    NotificationRequested,
    OrderDispatched,
    PostLiked,
    PostLikedV2,
    UserUpdated,
    post_liked_v1_to_v2,
)
from shared.topology import Consumer, FunctionSettings, RetryPolicy, Topic, Topology
from shared.upcasting import Upcaster

TOPICS = [
    # v2 beside v1 while producers move over; handlers written for v2 get v1 upcast.
    Topic("post-liked", events=[PostLiked, PostLikedV2]),
    Topic("user-updated", events=[UserUpdated]),
    Topic("order-dispatched", events=[OrderDispatched]),
    Topic("notification-requested", events=[NotificationRequested]),
]

TOPOLOGY = Topology(
    topics=TOPICS,
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
            # Every topic, derived: a topic added above is audited without a second edit here.
            topics=[topic.name for topic in TOPICS],
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
    upcasters=[Upcaster(PostLiked, PostLikedV2, post_liked_v1_to_v2)],
)
