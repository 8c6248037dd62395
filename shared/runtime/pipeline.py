"""One message through one consumer: the steps, in order, in one place.

The HTTP runtime (Cloud Functions, push), the pull worker and the test harness all run this
pipeline, so all three keep the same ack contract:

====================================================  =========================================
what happened                                         outcome
====================================================  =========================================
handler returned                                      ``HANDLED``: ack
same event already handled (idempotency)              ``DUPLICATE``: ack, handler not run
filtered out by the consumer's filter                 ``FILTERED``: ack, handler not run
another instance is handling it right now             ``BUSY``: nack (comes back; then it is a
                                                      duplicate)
``RetryableError`` or any unexpected exception        ``RETRY``: nack, redelivered with backoff
``PermanentError``, undecodable data, unknown or      ``DEAD_LETTERED``: on the dead-letter topic
unsupported event type, older than max_event_age      with the reason, then ack
dead-lettering itself failed                          ``DEAD_LETTER_FAILED``: nack; never ack
                                                      what was neither handled nor dead-lettered
====================================================  =========================================

The steps, outermost first (each is a module of this package with its own tests):

1. :class:`~shared.runtime.telemetry.MessageTelemetry`: the consumer span, continuing the
   producer's trace, and the message count by status (both only when telemetry is on).
2. :class:`~shared.runtime.observe.Observe`: event context (trace, correlation id) and one log
   line per message; a step that raises becomes ``RETRY``.
3. :class:`~shared.runtime.dead_lettering.DeadLetter`: settles ``REJECTED`` results from the
   steps below by publishing to the dead-letter topic.
4. :class:`~shared.runtime.filtering.Filter`: the subscription filter (the emulator ignores it).
5. :class:`~shared.runtime.decoding.Decode`: wire format to typed event.
6. :class:`~shared.runtime.upcasting.Upcast` (when the topology has upcasters the handler
   needs): an older version becomes the one the handler takes.
7. :class:`~shared.runtime.admission.AcceptTypes` and :class:`~shared.runtime.admission.MaxAge`.
8. :class:`~shared.runtime.idempotency.Claim`: once per event across instances.
9. :class:`~shared.runtime.telemetry.HandlerTelemetry`: the handler's span and duration.
10. :class:`~shared.runtime.handling.Run`: the handler, and the ack contract for how it ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shared.delivery import RawMessage
from shared.events import Event
from shared.runtime.admission import AcceptTypes, MaxAge
from shared.runtime.dead_lettering import DeadLetter, DeadLetterSink
from shared.runtime.decoding import Decode
from shared.runtime.filtering import Filter
from shared.runtime.handlers import Handler, accepted_types
from shared.runtime.handling import Run
from shared.runtime.idempotency import Claim
from shared.runtime.message import Inflight
from shared.runtime.observe import Observe
from shared.runtime.outcome import Result
from shared.runtime.step import Next, Step, compose
from shared.runtime.telemetry import HandlerTelemetry, MessageTelemetry
from shared.runtime.upcasting import Upcast
from shared.stores.base import Store
from shared.topology import Consumer, Topology


class Pipeline:
    """The composed steps for one consumer's handler; ``pipeline.process(raw)`` runs one message.

    Args:
        topology: decodes event types and names the subscriptions.
        consumer: the consumer's name in the topology.
        handler: ``handler(event)`` or ``handler(event, delivery)``; the annotation of
            ``event`` says which event types it takes (see :mod:`shared.runtime.handlers`).
        store: opens the idempotency store on first use (``None``: no idempotency, for
            consumers declared with ``uses_store=False``).
        dead_letters: where undeliverable messages go.
        accepts: the event models the handler takes, for handlers without an annotation.
        lease: seconds an idempotency claim holds: as long as the runner may keep a message.
            Default: the consumer's ack deadline or its function's timeout, whichever is longer.

    Raises:
        TopologyError: the handler names an event type the consumer's topics do not carry.
        TypeError: the handler takes neither ``(event)`` nor ``(event, delivery)``.
    """

    def __init__(
        self,
        topology: Topology,
        consumer: str,
        handler: Handler,
        *,
        store: Callable[[], Store] | None,
        dead_letters: DeadLetterSink,
        accepts: Iterable[type[Event]] | None = None,
        lease: float | None = None,
    ) -> None:
        self.topology = topology
        self.consumer: Consumer = topology.consumer(consumer)
        self.handler = handler
        self.dead_letters = dead_letters
        carried = [m for t in self.consumer.topics for m in topology.topics[t].events]
        self.accepts = accepted_types(handler, consumer, carried, accepts)
        # Versions the topics carry that the handler does not take, but an upcaster converts.
        self.upcast = {m.event_type for m in carried} & set(topology.upcasters) - self.accepts
        # A claim outlives the handler's time budget, so a live handler is never taken over.
        self.lease = lease if lease is not None else self.consumer.handler_budget
        self.steps = self._steps(store)
        self._run: Next = compose(self.steps, Run(handler))

    def _steps(self, store: Callable[[], Store] | None) -> list[Step]:
        consumer = self.consumer
        steps: list[Step] = [
            MessageTelemetry(self.topology, consumer.name),
            Observe(consumer.ack_deadline),
            DeadLetter(self.topology, consumer.name, self.dead_letters),
        ]
        if consumer.predicate is not None:
            steps.append(Filter(consumer.predicate))
        steps.append(Decode(self.topology.registry))
        if self.upcast:
            steps.append(Upcast(self.accepts, self.topology.upcasters))
        steps.append(AcceptTypes(consumer.name, self.accepts))
        if consumer.max_event_age is not None:
            steps.append(MaxAge(consumer.name, consumer.max_event_age))
        if store is not None:
            steps.append(Claim(store, self.lease))
        steps.append(HandlerTelemetry(consumer.name))
        return steps

    def process(self, raw: RawMessage) -> Result:
        """Run one message through every step; the result says what to answer Pub/Sub."""
        return self._run(Inflight(raw, self.consumer.name))
