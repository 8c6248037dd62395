"""A function whose dependency fails on the first two attempts of every event, and always for
posts whose id starts with "doomed-"."""

import functions_framework
from flaky_topology import TOPOLOGY

from shared import Delivery, RetryableError, consumer
from shared.system.events import PostLiked

app = consumer(TOPOLOGY, "flaky_likes")


@functions_framework.http
@app.handler
def flaky_likes(event: PostLiked, delivery: Delivery) -> None:
    attempt = delivery.attempt or 0
    app.store.increment(
        "attempts", event.post_id, str(attempt), once=f"{delivery.event_key}/{attempt}"
    )
    if attempt < 3 or event.post_id.startswith("doomed-"):
        raise RetryableError(f"dependency unavailable on attempt {attempt}")
    app.store.increment("applied", event.post_id, "count", once=delivery.event_key)
