"""A function whose handler names an event its consumer's topics do not carry: fails at import."""

import functions_framework

from shared import consumer
from shared.system.events import OrderDispatched
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "timeline_enrichment")


@functions_framework.http
@app.handler
def timeline_enrichment(event: OrderDispatched) -> None:
    """Never runs: timeline_enrichment consumes post-liked, which carries post.liked.v1 only."""
