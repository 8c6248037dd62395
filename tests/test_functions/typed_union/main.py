"""An audit-like function whose handler takes two of the four types on its topics, by annotation."""

import functions_framework

from shared import Delivery, consumer
from shared.stores import Store
from shared.system.events import PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "audit_log")


@functions_framework.http
@app.handler
def audit_log(event: PostLiked | UserUpdated, delivery: Delivery) -> None:
    store: Store = app.store
    store.increment("typed_union", event.event_type, "handled", once=delivery.event_key)
