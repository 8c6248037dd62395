"""The probe consumer as a Cloud Function, for the HTTP runner of the contract suite."""

import functions_framework

from shared import Delivery, consumer
from tests.contract.probe import CONSUMER, TOPOLOGY, ProbeRequested, act

app = consumer(TOPOLOGY, CONSUMER)


@functions_framework.http
@app.handler
def contract_probe(event: ProbeRequested, delivery: Delivery) -> None:
    act(app.store, event, delivery)
