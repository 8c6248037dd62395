"""A bare functions-framework CloudEvent function: count the message, nothing else."""

import functions_framework
from cloudevents.http import CloudEvent
from fn_counter import hit


@functions_framework.cloud_event
def bench_bare(cloud_event: CloudEvent) -> None:
    hit(cloud_event["id"])  # functions-framework makes the Pub/Sub message id the event's id
