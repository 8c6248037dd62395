"""Turn a dispatched order into a notification request for its customer."""

from __future__ import annotations

import uuid

from shared import Delivery, PermanentError, Publisher
from shared.system.events import NotificationRequested, OrderDispatched

# Carriers we have tracking templates for; anything else can never be notified about.
TEMPLATES = {
    "dhl": "order-dispatched-dhl",
    "ups": "order-dispatched-ups",
    "royal-mail": "order-dispatched-royal-mail",
}


def notify_dispatch(publisher: Publisher, event: OrderDispatched, delivery: Delivery) -> str:
    """Publish ``notification.requested.v1`` for ``event`` and wait until Pub/Sub has it.

    The notification's id is derived from the dispatch event's source and id, so a redelivered
    dispatch re-sends the *same* notification event, which its consumers drop as a duplicate,
    while dispatches of two producers that reuse an id get two notifications. It carries
    the dispatch's correlation id and continues its trace (the publisher reads both from the
    event being handled).

    Raises:
        PermanentError: the carrier has no template; retrying cannot help.
    """
    template = TEMPLATES.get(event.carrier.lower())
    if template is None:
        raise PermanentError(
            f"no notification template for carrier {event.carrier!r}; "
            f"known carriers: {', '.join(sorted(TEMPLATES))}"
        )
    notification = NotificationRequested(
        customer_id=event.customer_id, channel="email", template=template, order_id=event.order_id
    )
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{delivery.event_key}#notification"))
    future = publisher.publish(notification, event_id=event_id)
    # Wait: acking the dispatch before the notification is accepted could lose it.
    return future.result(timeout=publisher.settings.timeout)
