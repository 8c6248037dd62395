"""A consumer whose ack deadline (10 s) is shorter than its handler takes for a "slow-" post."""

from shared import Consumer, RetryPolicy, Topic, Topology
from shared.system.events import PostLiked

ACK_DEADLINE = 10  # seconds: the least Pub/Sub allows
SLOW_SECONDS = 12.0  # how long the handler takes for a post whose id starts with "slow-"

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [
        Consumer(
            "slow_likes",
            topics=["post-liked"],
            ack_deadline=ACK_DEADLINE,
            retry=RetryPolicy(0.5, 1.0),
        )
    ],
)
