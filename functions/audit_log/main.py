"""Cloud Function: records every event of every topic in the audit log, redacted."""

import functions_framework
from audit import record

from shared import Delivery, Event, consumer
from shared.system.topology import TOPOLOGY

app = consumer(TOPOLOGY, "audit_log")


@functions_framework.http
@app.handler
def audit_log(event: Event, delivery: Delivery) -> None:
    record(app.store, event, delivery)
