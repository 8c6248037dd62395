"""Cloud Function: keeps each user's timeline affinity from post.liked.v1 events."""

import functions_framework
from timeline import record_like

from shared import Delivery, consumer
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "timeline_enrichment")


@functions_framework.http
@app.handler
def timeline_enrichment(event: PostLiked, delivery: Delivery) -> None:
    record_like(app.store, event, delivery)
