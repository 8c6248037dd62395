"""The OpenTelemetry SDK, configured from the standard environment variables.

Imported only when the environment asks for traces or metrics: the SDK and its exporters cost
import time a function that records nothing should not pay.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("pubsub_kit.telemetry")

_INSTALL_HINT = {
    "otlp": "opentelemetry-exporter-otlp-proto-http (pip install 'pubsub-kit[otel]')",
    "gcp_trace": "opentelemetry-exporter-gcp-trace (pip install 'pubsub-kit[otel]')",
}
# The gRPC and HTTP OTLP packages both register "otlp"; we ship the HTTP one.
_FALLBACK = {
    "otlp": "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
    "otlp_metrics": "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
}


def service_name() -> str:
    """``OTEL_SERVICE_NAME``, else the Cloud Run service (the function), else ``pubsub-kit``."""
    return os.environ.get("OTEL_SERVICE_NAME") or os.environ.get("K_SERVICE") or "pubsub-kit"


def resource() -> Resource:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": service_name()})


def tracer_provider(exporters: list[str], trace_dir: str | None) -> TracerProvider:
    """A provider exporting to ``exporters`` (batched) and to ``trace_dir`` (at once), made global.

    An exporter that is not installed is reported once and left out: a function must not fail
    to start because its traces cannot be sent.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=resource())
    for name in exporters:
        exporter = _load("opentelemetry_traces_exporter", name, _FALLBACK.get(name))
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter()))
    if trace_dir:
        from shared.telemetry.spans_file import SpanFileExporter

        # Written as each span ends: the local runtime stops functions with SIGTERM, which
        # skips the exit hooks a batching processor needs to flush.
        provider.add_span_processor(SimpleSpanProcessor(SpanFileExporter(trace_dir)))
    trace.set_tracer_provider(provider)  # the application's own spans join the same traces
    return provider


def meter_provider(exporters: list[str]) -> MeterProvider:
    """A provider exporting periodically to ``exporters``, made global."""
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers = []
    for name in exporters:
        fallback = _FALLBACK.get(f"{name}_metrics")
        exporter = _load("opentelemetry_metrics_exporter", name, fallback)
        if exporter is not None:
            readers.append(PeriodicExportingMetricReader(exporter()))
    provider = MeterProvider(metric_readers=readers, resource=resource())
    metrics.set_meter_provider(provider)
    return provider


def _load(group: str, name: str, fallback: str | None) -> Any:
    found = [e for e in entry_points(group=group) if e.name == name]
    try:
        if found:
            return found[0].load()
        if fallback is not None:
            module, _, attribute = fallback.partition(":")
            return getattr(__import__(module, fromlist=[attribute]), attribute)
    except ImportError:
        pass
    log.error(
        f"OpenTelemetry exporter {name!r} is not installed; nothing is exported to it. "
        f"Install {_INSTALL_HINT.get(name, 'the package that provides it')}"
    )
    return None
