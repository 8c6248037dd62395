"""The probe consumer of the contract suite: a tiny topology, its events, and its handler.

The handler does what the event's ``action`` says, after counting its run in the store, so every
runner (in memory, pull worker, function over HTTP) can tell how often it ran from one place:
the SQLite file they share.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import ClassVar, Literal

from shared import Delivery, Event, PermanentError, RetryableError
from shared.stores import Store
from shared.topology import Consumer, FunctionSettings, RetryPolicy, Topic, Topology

CONSUMER = "contract_probe"
TOPIC = "contract-probe"
SUBSCRIPTION = f"{TOPIC}--{CONSUMER}"
AUDIENCE = "audience"  # the attribute the consumer's filter reads
MAX_EVENT_AGE = 3600.0  # seconds
RUNS = "contract-probe-runs"  # the store collection where the handler counts its runs

Action = Literal["ok", "retry", "crash", "permanent"]


class ProbeRequested(Event):
    """Asks the probe handler to return, or to fail in one of the ways the contract names."""

    event_type: ClassVar[str] = "contract.probe.v1"

    action: Action


class ProbeRequestedV2(Event):
    """A newer version on the same topic, which the probe handler does not take (yet)."""

    event_type: ClassVar[str] = "contract.probe.v2"

    action: Action


class ProbeCrashed(Exception):
    """What the handler raises for ``action="crash"``: an exception the toolkit does not know."""


TOPOLOGY = Topology(
    [Topic(TOPIC, events=[ProbeRequested, ProbeRequestedV2])],
    [
        Consumer(
            CONSUMER,
            topics=[TOPIC],
            ack_deadline=10,  # seconds, the least Pub/Sub allows
            max_delivery_attempts=5,  # the least Pub/Sub allows
            retry=RetryPolicy(minimum_backoff=0.2, maximum_backoff=0.5),  # seconds
            filter=f'attributes.{AUDIENCE} = "probe"',
            max_event_age=MAX_EVENT_AGE,
            function=FunctionSettings(timeout=60),  # seconds; also the claim's lease
        )
    ],
)


def act(store: Store, event: ProbeRequested, delivery: Delivery) -> None:
    """Count this run, then do what ``event.action`` asks.

    Raises:
        RetryableError: for ``"retry"``.
        ProbeCrashed: for ``"crash"``.
        PermanentError: for ``"permanent"``.
    """
    store.increment(RUNS, delivery.event_id, "runs", once=uuid.uuid4().hex)  # every run counts
    if event.action == "retry":
        raise RetryableError("probe asked to retry")
    if event.action == "crash":
        raise ProbeCrashed("probe asked to crash")
    if event.action == "permanent":
        raise PermanentError("probe asked to be dead-lettered")


def handler(store: Callable[[], Store]) -> Callable[[ProbeRequested, Delivery], None]:
    """The probe handler on ``store()``, annotated so that it takes ``contract.probe.v1`` only."""

    def contract_probe(event: ProbeRequested, delivery: Delivery) -> None:
        act(store(), event, delivery)

    return contract_probe


def handler_runs(store: Store, event_id: str) -> int:
    """How many times the probe handler ran for ``event_id`` so far."""
    return store.counters(RUNS, event_id).get("runs", 0)
