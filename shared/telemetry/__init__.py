"""OpenTelemetry traces and metrics, when the application or its environment asks for them.

Off by default, and then free: nothing from OpenTelemetry is imported, no span is made, and the
trace context that travels with each event says honestly that nobody sampled it. On when, at the
first message or publish of the process:

- the application has installed an SDK tracer (or meter) provider globally, or passed one to
  :func:`use`;
- ``OTEL_TRACES_EXPORTER`` (or ``OTEL_METRICS_EXPORTER``) names exporters, comma-separated:
  ``otlp`` (any backend; ``pip install pubsub-kit[otel]``), ``gcp_trace`` (Cloud Trace; also in
  ``pubsub-kit[otel]``, and what ``enable_tracing`` in ``infra/`` sets), ``console``. The SDK is
  then configured from the standard variables: ``OTEL_SERVICE_NAME`` (default ``K_SERVICE``, the
  function's name on GCP), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` (default
  parent-based always-on), ``OTEL_EXPORTER_OTLP_*``;
- ``PUBSUB_KIT_TRACE_DIR`` names a folder: every span is also written there as JSON lines, one
  file per process. ``pubsub-kit dev`` sets it, and ``pubsub-kit trace EVENT_ID`` reads it.

What is recorded (attributes follow the OpenTelemetry messaging conventions for GCP Pub/Sub):

- ``send <topic>`` (producer) for each publish, ended when Pub/Sub accepted it or it failed;
- ``process <subscription>`` (consumer) for each message a consumer receives, push or pull, its
  status following the outcome, and inside it ``handle <consumer>`` for the handler and
  ``dead-letter <topic>`` for dead-lettering;
- the counter ``pubsub_kit.messages`` (by consumer and status) and the histogram
  ``pubsub_kit.handler.duration`` (seconds, by consumer and status).

The trace context crosses every hop in the CloudEvents ``ce-traceparent`` and ``ce-tracestate``
attributes, so a trace started by any producer (Python, Node, gcloud) continues through push,
the function and every event its handler publishes. Exception messages are never recorded: they
may quote event data; a span's status description is the outcome's reason, which never does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.observability import TraceContext

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

TRACE_DIR_VARIABLE = "PUBSUB_KIT_TRACE_DIR"
INSTRUMENTATION = "pubsub-kit"

# Attribute names: the messaging semantic conventions (GCP Pub/Sub), CloudEvents, and ours.
SYSTEM = "messaging.system"
GCP_PUBSUB = "gcp_pubsub"
DESTINATION = "messaging.destination.name"
SUBSCRIPTION = "messaging.destination.subscription.name"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
MESSAGE_ID = "messaging.message.id"
BODY_SIZE = "messaging.message.body.size"
ORDERING_KEY = "messaging.gcp_pubsub.message.ordering_key"
DELIVERY_ATTEMPT = "messaging.gcp_pubsub.message.delivery_attempt"
CONSUMER_GROUP = "messaging.consumer.group.name"
EVENT_ID = "cloudevents.event_id"
EVENT_TYPE = "cloudevents.event_type"
EVENT_SOURCE = "cloudevents.event_source"
CONSUMER = "pubsub_kit.consumer"
STATUS = "pubsub_kit.status"
REASON = "pubsub_kit.reason"


class Instruments(NamedTuple):
    """The metrics every consumer records."""

    messages: Counter
    """``pubsub_kit.messages``: messages received, by consumer and status."""
    handler_duration: Histogram
    """``pubsub_kit.handler.duration``: seconds in the handler, by consumer and status."""


_UNRESOLVED: Any = object()
_lock = threading.Lock()
_tracer: Tracer | None = _UNRESOLVED
_instruments: Instruments | None = _UNRESOLVED


def tracer() -> Tracer | None:
    """The tracer to record spans with; ``None`` when tracing is off (then make no span)."""
    found = _tracer
    if found is _UNRESOLVED:
        found = _resolve_tracer()
    return found


def instruments() -> Instruments | None:
    """The metric instruments; ``None`` when metrics are off."""
    found = _instruments
    if found is _UNRESOLVED:
        found = _resolve_instruments()
    return found


def use(
    tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Record with these providers from now on, whatever the environment says.

    For applications that configure OpenTelemetry themselves without setting it globally, and
    for tests (an SDK provider with an in-memory exporter). ``None`` turns that signal off.
    """
    global _tracer, _instruments
    with _lock:
        _tracer = tracer_provider.get_tracer(INSTRUMENTATION) if tracer_provider else None
        _instruments = _instruments_of(meter_provider) if meter_provider else None


def reset() -> None:
    """Forget the decision: the next message or publish looks at the environment again."""
    global _tracer, _instruments
    with _lock:
        _tracer = _UNRESOLVED
        _instruments = _UNRESOLVED


def current_trace() -> TraceContext | None:
    """The trace context of the active span, for log lines; ``None`` when tracing is off."""
    if tracer() is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return TraceContext(
        f"{context.trace_id:032x}", f"{context.span_id:016x}", context.trace_flags.sampled
    )


@contextlib.contextmanager
def span(name: str, attributes: dict[str, Any], *, producer: bool = False) -> Iterator[Span | None]:
    """A child span of the active one for the block; ``None`` (and no span) when tracing is off.

    An exception ends the span as an error named by the exception's type only.
    """
    found = tracer()
    if found is None:
        yield None
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    kind = SpanKind.PRODUCER if producer else SpanKind.INTERNAL
    with found.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,  # its message may quote event data
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def fail(span: Span | None, description: str) -> None:
    """Mark ``span`` (when there is one) as failed; ``description`` must not quote event data."""
    if span is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, description))


def traceparent_of(span: Span) -> tuple[str, str | None]:
    """The W3C ``traceparent`` and ``tracestate`` that make ``span`` the parent of the next hop."""
    context = span.get_span_context()
    flags = "01" if context.trace_flags.sampled else "00"
    state = context.trace_state.to_header() or None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}", state


def remote_parent(traceparent: str | None, tracestate: str | None) -> Context | None:
    """The context a producer sent along (``None`` when absent or malformed: a new trace)."""
    if not traceparent:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = TraceContextTextMapPropagator().extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def _resolve_tracer() -> Tracer | None:
    global _tracer
    with _lock:
        if _tracer is _UNRESOLVED:
            provider = _global_tracer_provider() or _tracer_provider_from_environment()
            _tracer = provider.get_tracer(INSTRUMENTATION) if provider is not None else None
        return _tracer


def _resolve_instruments() -> Instruments | None:
    global _instruments
    with _lock:
        if _instruments is _UNRESOLVED:
            provider = _global_meter_provider() or _meter_provider_from_environment()
            _instruments = _instruments_of(provider) if provider is not None else None
        return _instruments


def _global_tracer_provider() -> TracerProvider | None:
    # An application that set a provider has imported the API: no import just to look.
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def _global_meter_provider() -> MeterProvider | None:
    if "opentelemetry.metrics" not in sys.modules:
        return None
    from opentelemetry import metrics
    from opentelemetry.metrics import NoOpMeterProvider

    provider = metrics.get_meter_provider()
    # Until one is set, the API hands out a private _ProxyMeterProvider: nobody configured one.
    if isinstance(provider, NoOpMeterProvider) or type(provider).__name__.startswith("_Proxy"):
        return None
    return provider


def exporter_names(variable: str) -> list[str]:
    """The exporters ``variable`` (``OTEL_TRACES_EXPORTER``, say) names; ``none`` means none."""
    names = [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]
    return [] if "none" in names else names


def _tracer_provider_from_environment() -> TracerProvider | None:
    names = exporter_names("OTEL_TRACES_EXPORTER")
    trace_dir = os.environ.get(TRACE_DIR_VARIABLE)
    if not names and not trace_dir:
        return None
    try:
        from shared.telemetry import _sdk

        return _sdk.tracer_provider(names, trace_dir)
    except ImportError as exc:
        _sdk_missing("traces", f"OTEL_TRACES_EXPORTER or {TRACE_DIR_VARIABLE}", exc)
        return None


def _meter_provider_from_environment() -> MeterProvider | None:
    names = exporter_names("OTEL_METRICS_EXPORTER")
    if not names:
        return None
    try:
        from shared.telemetry import _sdk

        return _sdk.meter_provider(names)
    except ImportError as exc:
        _sdk_missing("metrics", "OTEL_METRICS_EXPORTER", exc)
        return None


def _sdk_missing(signal: str, variables: str, exc: ImportError) -> None:
    # Like a missing exporter (see _sdk): reported once, and the function keeps handling
    # messages; telemetry must never be why it cannot.
    logging.getLogger("pubsub_kit.telemetry").error(
        f"{variables} asks for {signal}, but OpenTelemetry cannot be imported ({exc}); "
        f"{signal} are off. Install opentelemetry-api and opentelemetry-sdk"
    )


def _instruments_of(provider: MeterProvider) -> Instruments:
    meter = provider.get_meter(INSTRUMENTATION)
    return Instruments(
        messages=meter.create_counter(
            "pubsub_kit.messages",
            unit="{message}",
            description="Messages received by a consumer, by how they ended (status).",
        ),
        handler_duration=meter.create_histogram(
            "pubsub_kit.handler.duration",
            unit="s",
            description="Time spent in a consumer's handler.",
        ),
    )
