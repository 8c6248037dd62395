"""Structured logs Cloud Logging understands, and trace context that follows an event.

Log lines are one JSON object each, on stdout, with ``severity``, ``message`` and, while an
event is being handled, ``logging.googleapis.com/trace`` and ``spanId`` so Cloud Logging groups
every line of one request under its trace. The context of the event being handled (its
correlation id and W3C ``traceparent``) lives in a context variable: the publisher reads it, so
an event published from a handler carries the same correlation id and continues the same trace.

Never pass event data to a log call; use ids, or ``event.redacted()`` where data is needed.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from shared import config
from shared._random import hex_id

_TRACE_HEADER_VERSION = "00"


@dataclasses.dataclass(frozen=True)
class TraceContext:
    """A W3C trace context (``traceparent``): trace id, this hop's span id, sampled flag."""

    trace_id: str
    span_id: str
    sampled: bool = False

    @classmethod
    def new(cls) -> TraceContext:
        """A new trace that nothing records (so not sampled): tracing is off here."""
        return cls(hex_id(128), hex_id(64))

    @classmethod
    def parse(cls, traceparent: str | None) -> TraceContext | None:
        """Read a ``traceparent`` header; ``None`` when absent or malformed."""
        parts = (traceparent or "").strip().split("-")
        if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
            return None
        try:
            int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
        except ValueError:
            return None
        if set(parts[1]) == {"0"} or set(parts[2]) == {"0"}:
            return None
        return cls(parts[1], parts[2], bool(int(parts[3], 16) & 1))

    def child(self) -> TraceContext:
        """The next hop: same trace, new span."""
        return TraceContext(self.trace_id, hex_id(64), self.sampled)

    @property
    def traceparent(self) -> str:
        flags = "01" if self.sampled else "00"
        return f"{_TRACE_HEADER_VERSION}-{self.trace_id}-{self.span_id}-{flags}"


@dataclasses.dataclass(frozen=True)
class EventContext:
    """What the current unit of work carries onto the events it publishes."""

    correlation_id: str | None = None
    trace: TraceContext | None = None
    tracestate: str | None = None
    log_fields: dict[str, Any] = dataclasses.field(default_factory=dict)


_current: contextvars.ContextVar[EventContext | None] = contextvars.ContextVar(
    "pubsub_kit_event_context", default=None
)


def current_context() -> EventContext | None:
    """The context of the event being handled in this thread or task, if any."""
    return _current.get()


@contextlib.contextmanager
def event_context(context: EventContext) -> Iterator[EventContext]:
    """Make ``context`` current for the block (handlers run inside one)."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class CloudLoggingFormatter(logging.Formatter):
    """Formats records as the JSON lines Cloud Run and Cloud Functions ingest as structured logs.

    Fields passed as ``extra={"fields": {...}}`` are merged in; the current event context adds
    the trace, span and correlation id.
    """

    _SEVERITY: ClassVar[dict[int, str]] = {
        logging.DEBUG: "DEBUG",
        logging.INFO: "INFO",
        logging.WARNING: "WARNING",
        logging.ERROR: "ERROR",
        logging.CRITICAL: "CRITICAL",
    }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": self._SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        context = _current.get()
        if context is not None:
            entry.update(context.log_fields)
            if context.correlation_id:
                entry["correlation_id"] = context.correlation_id
            # The active span (the handler's, say) when tracing is on, else the event's hop.
            trace = _active_trace() or context.trace
            if trace is not None:
                project = config.find_project_id()
                entry["logging.googleapis.com/trace"] = (
                    f"projects/{project}/traces/{trace.trace_id}" if project else trace.trace_id
                )
                entry["logging.googleapis.com/spanId"] = trace.span_id
                entry["logging.googleapis.com/trace_sampled"] = trace.sampled
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = describe_exception(record.exc_info[1])
        return json.dumps(entry, default=str, ensure_ascii=False)


def _active_trace() -> TraceContext | None:
    from shared import telemetry  # imports this module

    return telemetry.current_trace()


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """An exception as log fields that cannot leak event data.

    The toolkit's own messages never contain field values, so they are kept. Any other
    exception's message may quote its input (``KeyError('someone@example.com')``), so only its
    type and where it was raised are logged.
    """
    from shared.errors import ToolkitError

    described: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, ToolkitError):
        described["message"] = str(exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        described["raised_at"] = f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}"
    return described


_configured = False


def configure_logging(level: int | str | None = None, stream: Any = None) -> None:
    """Send the root logger's records to ``stream`` (stdout) as Cloud Logging JSON. Idempotent.

    The level comes from ``level``, else ``PUBSUB_KIT_LOG_LEVEL``, else INFO.
    """
    global _configured
    root = logging.getLogger()
    root.setLevel(level or config.log_level())
    if _configured:
        return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root.handlers = [h for h in root.handlers if not getattr(h, "_pubsub_kit", False)]
    handler._pubsub_kit = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    _configured = True
