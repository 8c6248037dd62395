"""Steps: a span and a count for each message, a span and a duration for its handler.

Both cost one call per message when telemetry is off (see :mod:`shared.telemetry`). The message
step is the outermost, so that the log line and everything below run inside the consumer span:
log lines carry its trace and span id, and events the handler publishes are its descendants.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared import telemetry, wire
from shared.delivery import RawMessage
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next
from shared.topology import Topology

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

# Outcomes a trace should flag. BUSY is not a failure: another instance has the event.
_ERRORS = frozenset(
    {Outcome.RETRY, Outcome.REJECTED, Outcome.DEAD_LETTERED, Outcome.DEAD_LETTER_FAILED}
)


class MessageTelemetry:
    """The consumer span ``process <subscription>``, child of the producer's span, and the
    ``pubsub_kit.messages`` count by status."""

    def __init__(self, topology: Topology, consumer: str) -> None:
        self.topology = topology
        self.consumer = consumer

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        tracer = telemetry.tracer()
        result = call_next(message) if tracer is None else self._traced(tracer, message, call_next)
        if (instruments := telemetry.instruments()) is not None:
            instruments.messages.add(
                1, {telemetry.CONSUMER: self.consumer, telemetry.STATUS: result.status}
            )
        return result

    def _traced(self, tracer: Tracer, message: Inflight, call_next: Next) -> Result:
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        raw = message.raw
        parent = telemetry.remote_parent(
            raw.attributes.get(wire.ATTR_TRACEPARENT), raw.attributes.get(wire.ATTR_TRACESTATE)
        )
        span = tracer.start_span(
            f"process {raw.subscription or self.consumer}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes=self.attributes(raw),
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            result = call_next(message)
            end(span, result)
            return result
        finally:
            otel_context.detach(token)
            span.end()

    def attributes(self, raw: RawMessage) -> dict[str, Any]:
        """The span's attributes: the messaging conventions, the CloudEvent, the consumer."""
        attributes: dict[str, Any] = {
            telemetry.SYSTEM: telemetry.GCP_PUBSUB,
            telemetry.OPERATION_TYPE: "process",
            telemetry.OPERATION_NAME: "process",
            telemetry.MESSAGE_ID: raw.message_id,
            telemetry.BODY_SIZE: len(raw.data),
            telemetry.CONSUMER: self.consumer,
        }
        topic = raw.topic or self._topic_of(raw.subscription)
        optional = {
            telemetry.DESTINATION: topic,
            telemetry.SUBSCRIPTION: raw.subscription,
            telemetry.CONSUMER_GROUP: raw.subscription,
            telemetry.ORDERING_KEY: raw.ordering_key,
            telemetry.DELIVERY_ATTEMPT: raw.attempt,
            telemetry.EVENT_ID: raw.attributes.get(wire.ATTR_ID),
            telemetry.EVENT_TYPE: raw.attributes.get(wire.ATTR_TYPE),
            telemetry.EVENT_SOURCE: raw.attributes.get(wire.ATTR_SOURCE),
        }
        attributes.update({k: v for k, v in optional.items() if v})
        return attributes

    def _topic_of(self, subscription: str | None) -> str | None:
        found = self.topology.subscriptions.get(subscription or "")
        return found.topic.name if found is not None else None


class HandlerTelemetry:
    """The span ``handle <consumer>`` around the handler, and ``pubsub_kit.handler.duration``.

    The last step before the handler runs, so only messages that reach the handler count.
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.name = f"handle {consumer}"

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        tracer = telemetry.tracer()
        instruments = telemetry.instruments()
        if tracer is None and instruments is None:
            return call_next(message)
        started = time.perf_counter()
        if tracer is None:
            result = call_next(message)
        else:
            with tracer.start_as_current_span(
                self.name,
                attributes={
                    telemetry.CONSUMER: self.consumer,
                    telemetry.EVENT_TYPE: message.decoded[1].type,
                    telemetry.EVENT_ID: message.decoded[1].id,
                },
                record_exception=False,  # its message may quote event data
                set_status_on_exception=False,
            ) as span:
                result = call_next(message)
                end(span, result)
        if instruments is not None:
            instruments.handler_duration.record(
                time.perf_counter() - started,
                {telemetry.CONSUMER: self.consumer, telemetry.STATUS: result.status},
            )
        return result


def end(span: Span, result: Result) -> None:
    """Mark ``span`` with how the message ended: its status follows the outcome."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute(telemetry.STATUS, result.status)
    if result.reason:
        span.set_attribute(telemetry.REASON, result.reason)
    if result.outcome in _ERRORS:
        span.set_status(Status(StatusCode.ERROR, result.reason or result.status))
