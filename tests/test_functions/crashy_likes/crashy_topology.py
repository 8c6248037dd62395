"""A consumer whose function dies on some messages, with fast retries and the fewest attempts.

It is declared without the idempotency claim (``uses_store=False``) so that every attempt runs
the handler again, as a crash loop does: with a claim, the dead process's claim would answer
the next attempts with BUSY until its lease ran out, and the test could not see that each
dropped connection counts as one failed attempt. Its effects stay once per event through the
store's once-tokens.
"""

from shared import Consumer, RetryPolicy, Topic, Topology
from shared.system.events import PostLiked

TOPOLOGY = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [
        Consumer(
            "crashy_likes",
            topics=["post-liked"],
            ack_deadline=10,
            max_delivery_attempts=5,
            retry=RetryPolicy(0.5, 1.0),
            uses_store=False,
        )
    ],
)
