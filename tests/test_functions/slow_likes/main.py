"""A function that takes longer than its ack deadline for posts whose id starts with "slow-".

Every run of the handler is counted as it starts (a fresh ``once`` token per run), so a second
run of the same event shows as a second effect at once: only the runtime's claim keeps it at one.
"""

import threading
import uuid

import functions_framework
from slow_topology import SLOW_SECONDS, TOPOLOGY

from shared import Delivery, consumer
from shared.system.events import PostLiked

app = consumer(TOPOLOGY, "slow_likes")
_never = threading.Event()  # nothing sets it: waiting on it is a bounded pause


@functions_framework.http
@app.handler
def slow_likes(event: PostLiked, delivery: Delivery) -> None:
    app.store.increment("runs", event.post_id, "count", once=f"{delivery.event_key}/{uuid.uuid4()}")
    if event.post_id.startswith("slow-"):
        _never.wait(SLOW_SECONDS)
