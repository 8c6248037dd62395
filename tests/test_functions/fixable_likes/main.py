"""A function that rejects every like (PermanentError) until the file named by
``FIXABLE_LIKES_FIXED`` exists; then it counts each like it handles.

The count is of handler runs, not of events (a fresh ``once`` token each time): an event handled
twice counts twice, which is what the replay tests look for.
"""

import os
import uuid
from pathlib import Path

import functions_framework
from fixable_topology import TOPOLOGY

from shared import PermanentError, consumer
from shared.system.events import PostLiked

app = consumer(TOPOLOGY, "fixable_likes")


@functions_framework.http
@app.handler
def fixable_likes(event: PostLiked) -> None:
    if not Path(os.environ["FIXABLE_LIKES_FIXED"]).exists():
        raise PermanentError(f"post {event.post_id} not found")
    app.store.increment("handled", event.post_id, "runs", once=uuid.uuid4().hex)
