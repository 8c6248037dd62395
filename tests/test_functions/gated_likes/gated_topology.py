"""A topology whose idempotency claim lasts about 10 s, so a crash's retry fits in a test.

The claim lease is max(ack deadline, function timeout) = 10 s. While a dead instance's claim
is live every redelivery answers BUSY, and each of those answers is a delivery attempt: the
retry backoff times the attempts must outlast the lease, or a healthy event is dead-lettered.
"""

from shared import Consumer, FunctionSettings, RetryPolicy, Topic, Topology
from shared.system.events import PostLiked

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [
        Consumer(
            "gated_likes",
            topics=["post-liked"],
            ack_deadline=10,
            max_delivery_attempts=15,
            retry=RetryPolicy(1.0, 3.0),
            function=FunctionSettings(timeout=10),
        )
    ],
)
