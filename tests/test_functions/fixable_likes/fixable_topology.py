"""A topology with one consumer of likes, whose handler the replay tests break and fix."""

from shared import Consumer, Topic, Topology
from shared.system.events import PostLiked

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [Consumer("fixable_likes", topics=["post-liked"], ack_deadline=10)],
)
