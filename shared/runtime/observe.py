"""Step: the event's context for everything inside (logs, published events), and one log line.

Outermost, so that every other step runs in the event's context and the line it writes says how
the message ended, whatever ended it. A step that raises (a store that is down) is a transient
failure: the message is retried, never lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from shared import telemetry, wire
from shared.delivery import RawMessage
from shared.observability import EventContext, TraceContext, describe_exception, event_context
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next

log = logging.getLogger("pubsub_kit.consumer")


class Observe:
    """Run the rest inside the event's context; log ``<status> <event type>`` with its fields.

    The line's severity is the outcome's; its fields are the consumer, message id, subscription,
    attempt, event id and type, ``status``, ``outcome`` (ack or nack), ``reason`` and
    ``duration_ms``; a warning first when handling outlasted the ack deadline (a push may
    then have been delivered again). While the event is handled, every log line carries its
    trace and correlation id, and events published from the handler continue both.
    """

    def __init__(self, ack_deadline: float | None = None) -> None:
        self.ack_deadline = ack_deadline

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        started = time.monotonic()
        raw = message.raw
        fields = log_fields(message.consumer, raw)
        with event_context(_context_of(raw, fields)):
            try:
                result = call_next(message)
            except Exception as exc:  # noqa: BLE001 - a broken step must not lose the message
                error = describe_exception(exc)
                log.error("pipeline step raised", extra={"fields": {"error": error}})
                result = Result(Outcome.RETRY, error["type"])
            elapsed = time.monotonic() - started
            if self.ack_deadline is not None and elapsed > self.ack_deadline:
                log.warning(
                    f"handling took {elapsed:.1f} s, longer than the ack deadline "
                    f"({self.ack_deadline:g} s): Pub/Sub may have delivered it again meanwhile",
                    extra={"fields": {"duration_ms": round(elapsed * 1000, 1)}},
                )
            log.log(
                result.outcome.severity,
                f"{result.status} {fields['event_type'] or 'message'}",
                extra={
                    "fields": {
                        "outcome": "ack" if result.ack else "nack",
                        "status": result.status,
                        "reason": result.reason,
                        "duration_ms": round(elapsed * 1000, 1),
                    }
                },
            )
        return result


def log_fields(consumer: str, raw: RawMessage) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "message_id": raw.message_id,
        "subscription": raw.subscription,
        "attempt": raw.attempt,
        "event_id": raw.attributes.get(wire.ATTR_ID),
        "event_type": raw.attributes.get(wire.ATTR_TYPE),
    }


def _context_of(raw: RawMessage, fields: dict[str, Any]) -> EventContext:
    # The consumer span when tracing is on; otherwise a hop of the producer's trace that nobody
    # records (its sampled flag passed on as received), or a new trace marked not sampled.
    trace = telemetry.current_trace()
    if trace is None:
        parent = TraceContext.parse(raw.attributes.get(wire.ATTR_TRACEPARENT))
        trace = parent.child() if parent else TraceContext.new()
    return EventContext(
        correlation_id=raw.attributes.get(wire.ATTR_CORRELATION),
        trace=trace,
        tracestate=raw.attributes.get(wire.ATTR_TRACESTATE),
        log_fields=fields,
    )
