"""A function whose process dies, mid-request, on likes of posts whose id starts with "crash-"."""

import os

import functions_framework
from crashy_topology import TOPOLOGY

from shared import Delivery, consumer
from shared.system.events import PostLiked

app = consumer(TOPOLOGY, "crashy_likes")


@functions_framework.http
@app.handler
def crashy_likes(event: PostLiked, delivery: Delivery) -> None:
    attempt = delivery.attempt or 0
    app.store.increment(
        "attempts", event.post_id, str(attempt), once=f"{delivery.event_key}/{attempt}"
    )
    if event.post_id.startswith("crash-"):
        os._exit(1)  # as a segfault or an out-of-memory kill: no answer, no cleanup
    app.store.increment("applied", event.post_id, "count", once=delivery.event_key)
