"""A bare functions-framework CloudEvent function: count the message, nothing else."""

import functions_framework
from fn_counter import hit


@functions_framework.cloud_event
def bench_bare(cloud_event) -> None:  # noqa: ANN001 - functions-framework's CloudEvent
    hit()
