"""Record what the toolkit traces and measures, in memory, with the real OpenTelemetry SDK."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler

from shared import telemetry


@dataclasses.dataclass
class Recorded:
    """What was recorded since the test began."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.spans]}"
        return found[0]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


def attributes(item: Any) -> dict[str, Any]:
    """The attributes of a span or a metric point, as a dict."""
    return dict(item.attributes or {})


def record(sampler: Sampler = ALWAYS_ON) -> Recorded:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry.use(provider, MeterProvider(metric_readers=[reader]))
    return Recorded(exporter, reader)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """The toolkit records every span and metric of the test in memory."""
    yield record()
    telemetry.reset()


@pytest.fixture
def telemetry_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing configured: the state of a function deployed without tracing."""
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", telemetry.TRACE_DIR_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    telemetry.reset()
    yield
    telemetry.reset()
