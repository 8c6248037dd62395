"""Cloud Function: keeps each user's timeline affinity from likes (post.liked.v2; v1 upcast)."""

import functions_framework
from timeline import record_like

from shared import Delivery, consumer
from shared.system.events import PostLikedV2
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "timeline_enrichment")


@functions_framework.http
@app.handler
def timeline_enrichment(event: PostLikedV2, delivery: Delivery) -> None:
    record_like(app.store, event, delivery)
