"""``pubsub-kit trace EVENT_ID``: the tree of one event's trace across services, from the spans the
local runtime records (``.pubsub-kit/traces``, see :mod:`shared.telemetry.spans_file`).

    trace 0af7651916cd43dd8448eb211c80319c: 6 spans, 3 services
    send order-dispatched                                demo                  ok         2.1 ms
    ├─ process order-dispatched--audit_log               audit_log             handled    4.0 ms
    └─ process order-dispatched--order_notifications     order_notifications   handled   11.9 ms
       └─ handle order_notifications                     order_notifications   handled    9.7 ms
          └─ send notification-requested                 order_notifications   ok         3.3 ms
             └─ process notification-requested--audit_log  audit_log           handled    3.1 ms
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared import telemetry
from shared.errors import ToolkitError
from shared.telemetry.spans_file import SpanRecord, read_spans


@dataclasses.dataclass(frozen=True)
class Trace:
    """The spans of one trace, and which of them have no recorded parent (its roots)."""

    trace_id: str
    spans: list[SpanRecord]

    @property
    def roots(self) -> list[SpanRecord]:
        ids = {s.span_id for s in self.spans}
        return _by_start([s for s in self.spans if s.parent_id not in ids])

    def children(self, span: SpanRecord) -> list[SpanRecord]:
        return _by_start([s for s in self.spans if s.parent_id == span.span_id])

    @property
    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})


def traces_of(event_id: str, folder: Path) -> list[Trace]:
    """Every trace in ``folder`` with a span of ``event_id`` (a unique prefix of it will do).

    Raises:
        ToolkitError: nothing recorded there, no span of that event, or the prefix is ambiguous.
    """
    if not folder.is_dir():
        raise ToolkitError(
            f"no traces recorded in {folder}; `pubsub-kit dev` and `pubsub-kit demo` record them "
            "there (or give the folder with --dir)"
        )
    spans = list(read_spans(folder))
    event_ids = {str(s.attributes.get(telemetry.EVENT_ID, "")) for s in spans} - {""}
    matching = {event_id} & event_ids or {e for e in event_ids if e.startswith(event_id)}
    if not matching:
        raise ToolkitError(
            f"no span in {folder} belongs to event {event_id!r}; the event ids are the ce-id "
            "attributes (the `event_id` field of the functions' log lines)"
        )
    if len(matching) > 1:
        raise ToolkitError(
            f"{len(matching)} events have ids starting with {event_id!r}; give more of the id"
        )
    (found,) = matching
    trace_ids = {s.trace_id for s in spans if s.attributes.get(telemetry.EVENT_ID) == found}
    return [
        Trace(trace_id, [s for s in spans if s.trace_id == trace_id])
        for trace_id in sorted(trace_ids)
    ]


def render(trace: Trace) -> str:
    """The trace as an indented tree: span, service, outcome, duration."""
    rows: list[tuple[str, SpanRecord]] = []

    def walk(span: SpanRecord, prefix: str, branch: str) -> None:
        rows.append((prefix + branch + span.name, span))
        children = trace.children(span)
        below = prefix + ("" if not branch else "   " if branch == "└─ " else "│  ")
        for i, child in enumerate(children):
            walk(child, below, "└─ " if i == len(children) - 1 else "├─ ")

    for root in trace.roots:
        walk(root, "", "")
    width = max(len(label) for label, _ in rows)
    service_width = max(len(s.service) for _, s in rows)
    lines = [
        f"trace {trace.trace_id}: {len(trace.spans)} spans, "
        f"{len(trace.services)} services ({', '.join(trace.services)})"
    ]
    for label, span in rows:
        lines.append(
            f"{label:<{width}}  {span.service:<{service_width}}  {outcome(span):<14} "
            f"{span.duration_ms:>8.1f} ms"
        )
    unrecorded = {s.parent_id for s in trace.roots if s.parent_id}
    if unrecorded:
        lines.append(
            f"(started by a span recorded elsewhere: {', '.join(sorted(unrecorded))}, "
            "a producer outside this system)"
        )
    return "\n".join(lines)


def outcome(span: SpanRecord) -> str:
    """The pipeline's status for consumer spans; ``ok`` or ``error`` for the others."""
    status = span.attributes.get(telemetry.STATUS)
    if status:
        return str(status)
    return "error" if span.status == "ERROR" else "ok"


def as_json(trace: Trace) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "spans": [
            {
                "span_id": s.span_id,
                "parent_id": s.parent_id,
                "name": s.name,
                "service": s.service,
                "outcome": outcome(s),
                "duration_ms": round(s.duration_ms, 3),
                "attributes": s.attributes,
            }
            for s in _by_start(trace.spans)
        ],
    }


def _by_start(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    return sorted(spans, key=lambda s: (s.start_ns, s.name))
