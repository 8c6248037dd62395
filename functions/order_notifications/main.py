"""Cloud Function: asks for a customer notification when an order is dispatched."""

import functions_framework
from notifications import notify_dispatch

from shared import Delivery, consumer
from shared.system.events import OrderDispatched
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "order_notifications")


@functions_framework.http
@app.handler
def order_notifications(event: OrderDispatched, delivery: Delivery) -> None:
    notify_dispatch(app.publisher, event, delivery)
