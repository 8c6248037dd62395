"""A topology with fast retries, so retry behaviour can be observed within a test."""

from shared import Consumer, RetryPolicy, Topic, Topology
from shared.system.events import PostLiked

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [Consumer("flaky_likes", topics=["post-liked"], ack_deadline=10, retry=RetryPolicy(0.5, 1.0))],
)
