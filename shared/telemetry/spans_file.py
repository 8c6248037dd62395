"""Spans as JSON lines in a folder: how the local runtime keeps traces for ``pubsub-kit trace``.

Each process writes its own file (``<service>-<pid>.jsonl``), one line per ended span, so
processes never interleave and a reader sees every span as soon as it ended. A line::

    {"trace_id": "4bf9...", "span_id": "00f0...", "parent_id": "a3ce..." | null,
     "name": "process orders--order_notifications", "kind": "CONSUMER",
     "service": "order_notifications", "start_ns": 1764..., "end_ns": 1764...,
     "status": "UNSET" | "OK" | "ERROR", "description": "..." | null,
     "attributes": {"messaging.system": "gcp_pubsub", ...}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan


class SpanFileExporter(SpanExporter):
    """Appends each span to ``<folder>/<service>-<pid>.jsonl``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        lines = "".join(json.dumps(_as_record(span), default=str) + "\n" for span in spans)
        service = str(spans[0].resource.attributes.get("service.name", "unknown"))
        path = self.folder / f"{_safe(service)}-{os.getpid()}.jsonl"
        try:
            with self._lock:
                self.folder.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as out:
                    out.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """One span as read back from a trace folder."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    description: str | None
    attributes: dict[str, Any]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def read_spans(folder: str | os.PathLike[str]) -> Iterator[SpanRecord]:
    """Every span recorded in ``folder``; lines cut short by a killed process are skipped."""
    for path in sorted(Path(folder).glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield SpanRecord(**json.loads(line))
                except (ValueError, TypeError):
                    continue


def _as_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}" if context else "",
        "span_id": f"{context.span_id:016x}" if context else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": str(span.resource.attributes.get("service.name", "")),
        "start_ns": span.start_time or 0,
        "end_ns": span.end_time or span.start_time or 0,
        "status": span.status.status_code.name,
        "description": span.status.description,
        "attributes": dict(span.attributes or {}),
    }


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "unknown"
