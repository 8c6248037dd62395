"""A toolkit function with a trivial handler: decode, filter, typed event, count, 204."""

import functions_framework
from fn_counter import hit
from topologies import HTTP_KIT

from shared import Delivery, consumer
from shared.system.events import PostLiked

app = consumer(HTTP_KIT, "bench_kit")


@functions_framework.http
@app.handler
def bench_kit(event: PostLiked, delivery: Delivery) -> None:
    hit(delivery.message_id)
