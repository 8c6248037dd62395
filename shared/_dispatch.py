"""One message through one consumer: decode, filter, age check, idempotency, handler, outcome.

Shared by the HTTP runtime (Cloud Functions, push) and the pull worker, so both keep the same
ack contract:

====================================================  =========================================
what happened                                         outcome
====================================================  =========================================
handler returned                                      ack
same event already handled (idempotency)              ack, handler not run
filtered out by the consumer's filter                 ack, handler not run
another instance is handling it right now             nack (comes back; then it is a duplicate)
``RetryableError`` or any unexpected exception        nack: redelivered with backoff
``PermanentError``, undecodable data, unknown or      dead-letter with the reason, then ack
unsupported event type, older than max_event_age
dead-lettering itself failed                          nack: never ack what was neither handled
                                                      nor dead-lettered
====================================================  =========================================
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from shared import _codec
from shared.dead_letter import DeadLetterSink
from shared.delivery import Delivery, RawMessage
from shared.errors import EventError, PermanentError, RetryableError, ToolkitError
from shared.events import Event
from shared.observability import (
    EventContext,
    TraceContext,
    describe_exception,
    event_context,
)
from shared.stores.base import ClaimState, Store
from shared.topology import Consumer, Topology

log = logging.getLogger("pubsub_kit.consumer")

Handler = Callable[..., Any]


class Outcome(enum.Enum):
    """What to tell Pub/Sub about a message."""

    ACK = "ack"
    """Done with it: handled, a duplicate, filtered out, or safely dead-lettered."""
    NACK = "nack"
    """Not done: Pub/Sub redelivers it after the retry backoff."""


@dataclasses.dataclass(frozen=True)
class Result:
    outcome: Outcome
    status: str  # handled | duplicate | filtered | busy | retry | dead_lettered
    reason: str | None = None


class Dispatcher:
    """Runs ``handler`` for the messages of one consumer under the ack contract above.

    Args:
        topology: decodes event types and names the subscriptions.
        consumer: the consumer's name in the topology.
        handler: ``handler(event)`` or ``handler(event, delivery)``.
        store: opens the idempotency store on first use (``None``: no idempotency, for
            consumers declared with ``uses_store=False``).
        dead_letters: where undeliverable messages go.
        accepts: event models the handler supports; default every type on its topics.
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
    ) -> None:
        self.topology = topology
        self.consumer: Consumer = topology.consumer(consumer)
        self.handler = handler
        self._wants_delivery = _takes_delivery(handler)
        self._store = store
        self.dead_letters = dead_letters
        subscribed = {m.event_type for t in self.consumer.topics for m in topology.topics[t].events}
        self.accepts = subscribed if accepts is None else {m.event_type for m in accepts}
        self._predicate = self.consumer.predicate
        # A claim outlives the handler's time budget, so a live handler is never taken over.
        self.lease = float(max(self.consumer.ack_deadline, self.consumer.function.timeout))

    def process(self, raw: RawMessage) -> Result:
        started = time.monotonic()
        fields: dict[str, Any] = {
            "consumer": self.consumer.name,
            "message_id": raw.message_id,
            "subscription": raw.subscription,
            "attempt": raw.attempt,
            "event_id": raw.attributes.get(_codec.ATTR_ID),
            "event_type": raw.attributes.get(_codec.ATTR_TYPE),
        }
        trace = TraceContext.parse(raw.attributes.get(_codec.ATTR_TRACEPARENT))
        context = EventContext(
            correlation_id=raw.attributes.get(_codec.ATTR_CORRELATION),
            trace=trace.child() if trace else TraceContext.new(),
            tracestate=raw.attributes.get(_codec.ATTR_TRACESTATE),
            log_fields=fields,
        )
        with event_context(context):
            result = self._process(raw)
            severity = {
                "handled": logging.INFO,
                "duplicate": logging.INFO,
                "filtered": logging.INFO,
                "busy": logging.INFO,
                "retry": logging.WARNING,
            }.get(result.status, logging.ERROR)
            log.log(
                severity,
                f"{result.status} {fields['event_type'] or 'message'}",
                extra={
                    "fields": {
                        "outcome": result.outcome.value,
                        "status": result.status,
                        "reason": result.reason,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    }
                },
            )
            return result

    def _process(self, raw: RawMessage) -> Result:
        if self._predicate is not None and not self._predicate(raw.attributes):
            # GCP never delivers a filtered-out message; the emulator does, so drop it here.
            return Result(Outcome.ACK, "filtered")
        try:
            event, envelope = _codec.decode(raw.data, raw.attributes, self.topology.registry)
        except EventError as exc:
            return self._dead_letter(raw, str(exc))
        if envelope.type not in self.accepts:
            return self._dead_letter(
                raw, f"unsupported event type {envelope.type!r}; {self.consumer.name} accepts "
                f"{', '.join(sorted(self.accepts))}"
            )
        max_age = self.consumer.max_event_age
        if max_age is not None:
            age = (datetime.now(timezone.utc) - envelope.time).total_seconds()
            if age > max_age:
                return self._dead_letter(
                    raw, f"event is {age:.0f} s old; {self.consumer.name} takes events up to "
                    f"{max_age:.0f} s old (max_event_age)"
                )
        delivery = Delivery.of(raw, envelope)
        store = self._store() if self._store is not None else None
        key = f"{self.consumer.name}/{envelope.id}"
        if store is not None:
            state = store.claim(key, self.lease)
            if state is ClaimState.DONE:
                return Result(Outcome.ACK, "duplicate")
            if state is ClaimState.BUSY:
                return Result(Outcome.NACK, "busy", "another instance is handling this event")
        try:
            if self._wants_delivery:
                self.handler(event, delivery)
            else:
                self.handler(event)
        except PermanentError as exc:
            result = self._dead_letter(raw, f"{type(exc).__name__}: {exc.reason}")
            if store is not None:
                if result.outcome is Outcome.ACK:
                    store.complete(key)
                else:
                    store.release(key)
            return result
        except RetryableError as exc:
            if store is not None:
                store.release(key)
            return Result(Outcome.NACK, "retry", exc.reason)
        except Exception as exc:  # noqa: BLE001 - the contract: unexpected errors are retried
            if store is not None:
                store.release(key)
            # No exc_info: any handler that renders tracebacks would print the exception's
            # message, which may quote event data. Type and location only.
            log.error("handler raised", extra={"fields": {"error": describe_exception(exc)}})
            return Result(Outcome.NACK, "retry", describe_exception(exc)["type"])
        if store is not None:
            store.complete(key)
        return Result(Outcome.ACK, "handled")

    def _dead_letter(self, raw: RawMessage, reason: str) -> Result:
        subscription = self._subscription_of(raw)
        if subscription is None:
            return Result(
                Outcome.NACK, "retry", f"cannot tell which subscription to dead-letter for: {reason}"
            )
        try:
            self.dead_letters.send(raw, subscription, reason)
        except ToolkitError as exc:  # PublishError, or no project configured
            log.error("dead-lettering failed", extra={"fields": {"error": describe_exception(exc)}})
            return Result(Outcome.NACK, "retry", f"dead-lettering failed: {reason}")
        return Result(Outcome.ACK, "dead_lettered", reason)

    def _subscription_of(self, raw: RawMessage) -> str | None:
        if raw.subscription:
            return raw.subscription
        subscriptions = self.topology.subscriptions_of(self.consumer.name)
        if len(subscriptions) == 1:
            return subscriptions[0].name
        event_type = raw.attributes.get(_codec.ATTR_TYPE)
        for sub in subscriptions:
            if any(m.event_type == event_type for m in sub.topic.events):
                return sub.name
        return None


def _takes_delivery(handler: Handler) -> bool:
    params = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if not params or len(params) > 2 and all(p.kind is not p.VAR_POSITIONAL for p in params):
        raise TypeError(
            f"handler {getattr(handler, '__name__', handler)!r} must take (event) or "
            f"(event, delivery); found {len(params)} positional parameters"
        )
    return len(params) >= 2 or params[0].kind is params[0].VAR_POSITIONAL
