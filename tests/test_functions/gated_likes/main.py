"""A function that stops in the middle of every event until a gate file exists.

It records that it started (per worker process, so a test can tell which starts died with a
killed process), waits for the file named by ``GATED_LIKES_GATE`` (at most ``GATE_WAIT``
seconds, below the ack deadline), then counts the like once per event.
"""

import os
import time
import uuid
from pathlib import Path

import functions_framework
from gated_topology import TOPOLOGY

from shared import Delivery, RetryableError, consumer
from shared.system.events import PostLiked

GATE_WAIT = 8.0  # seconds; the local runtime gives up on a push after the 10 s ack deadline

app = consumer(TOPOLOGY, "gated_likes")


def _gate_open(deadline: float) -> bool:
    gate = Path(os.environ["GATED_LIKES_GATE"])
    while time.monotonic() < deadline:
        if gate.exists():
            return True
        time.sleep(0.05)  # poll interval; bounded by the deadline above
    return gate.exists()


@functions_framework.http
@app.handler
def gated_likes(event: PostLiked, delivery: Delivery) -> None:
    app.store.increment("started", event.post_id, str(os.getpid()), once=uuid.uuid4().hex)
    if not _gate_open(time.monotonic() + GATE_WAIT):
        raise RetryableError(f"gate still closed after {GATE_WAIT:g} s")
    app.store.increment("applied", event.post_id, "count", once=delivery.event_key)
