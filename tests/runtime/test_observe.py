"""The observe step: the event's context for everything inside, and one log line per message."""

from __future__ import annotations

import io
import json
import logging
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.observability import CloudLoggingFormatter, EventContext, current_context
from shared.runtime import Inflight, Outcome, Result
from shared.runtime import observe as observe_module
from shared.runtime.observe import Observe
from tests.runtime._support import (
    CANARY,
    TRACE_ID,
    TRACEPARENT,
    Raising,
    Rest,
    encoded,
    inflight,
    like,
    raw,
)

OBSERVE = Observe()
LOGGER = "pubsub_kit.consumer"


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The consumer's log lines as Cloud Logging receives them (one JSON object each)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    logger = logging.getLogger(LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def last_record(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    return caplog.records[-1]


@pytest.mark.parametrize(
    ("outcome", "severity", "ack"),
    [
        (Outcome.HANDLED, logging.INFO, "ack"),
        (Outcome.DUPLICATE, logging.INFO, "ack"),
        (Outcome.FILTERED, logging.INFO, "ack"),
        (Outcome.DEAD_LETTERED, logging.ERROR, "ack"),
        (Outcome.BUSY, logging.INFO, "nack"),
        (Outcome.RETRY, logging.WARNING, "nack"),
        (Outcome.DEAD_LETTER_FAILED, logging.ERROR, "nack"),
    ],
)
def test_one_line_per_message_with_the_outcomes_severity_status_and_ack(
    caplog, outcome, severity, ack
):
    answer = Result(outcome, "because")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert OBSERVE(inflight(encoded(like())), Rest(answer)) is answer
    [record] = caplog.records
    assert record.levelno == severity
    assert record.getMessage() == f"{answer.status} post.liked.v1"
    fields = record.fields
    assert (fields["status"], fields["outcome"], fields["reason"]) == (
        answer.status,
        ack,
        "because",
    )


def test_a_message_without_an_event_type_is_logged_as_a_message(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        OBSERVE(inflight(raw(b"{nope", {})), Rest(Outcome.DEAD_LETTERED))
    assert last_record(caplog).getMessage() == "dead_lettered message"


def test_the_line_says_how_long_the_rest_of_the_pipeline_took(caplog, monkeypatch):
    readings = iter([100.0, 101.23456])
    monkeypatch.setattr(
        observe_module, "time", types.SimpleNamespace(monotonic=lambda: next(readings))
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        OBSERVE(inflight(encoded(like())), Rest())
    assert last_record(caplog).fields["duration_ms"] == 1234.6  # type: ignore[attr-defined]


def test_the_line_carries_the_message_and_event_ids_the_trace_and_the_correlation(json_lines):
    message = encoded(
        like(),
        event_id="e5",
        message_id="m5",
        attempt=2,
        correlation_id="corr-1",
        traceparent=TRACEPARENT,
    )
    OBSERVE(inflight(message, "timeline_enrichment"), Rest())
    [line] = json_lines()
    assert {k: line[k] for k in ("severity", "message", "status", "outcome")} == {
        "severity": "INFO",
        "message": "handled post.liked.v1",
        "status": "handled",
        "outcome": "ack",
    }
    assert {
        k: line[k]
        for k in ("consumer", "message_id", "subscription", "attempt", "event_id", "event_type")
    } == {
        "consumer": "timeline_enrichment",
        "message_id": "m5",
        "subscription": "post-liked--timeline_enrichment",
        "attempt": 2,
        "event_id": "e5",
        "event_type": "post.liked.v1",
    }
    assert line["correlation_id"] == "corr-1"
    assert line["logging.googleapis.com/trace"].endswith(TRACE_ID)


def test_inside_the_pipeline_the_event_continues_the_producers_trace_and_correlation():
    seen: list[EventContext | None] = []

    def rest(message: Inflight) -> Result:
        seen.append(current_context())
        return Result(Outcome.HANDLED)

    message = encoded(
        like(), correlation_id="corr-1", traceparent=TRACEPARENT, tracestate="vendor=abc"
    )
    OBSERVE(inflight(message), rest)
    [context] = seen
    assert context is not None and context.trace is not None
    assert (context.correlation_id, context.tracestate) == ("corr-1", "vendor=abc")
    assert context.trace.trace_id == TRACE_ID
    assert context.trace.span_id != TRACEPARENT.split("-")[2]  # a hop of its own
    assert context.log_fields["event_id"] == "e1"
    assert current_context() is None  # and nothing leaks to the next message


@pytest.mark.parametrize("traceparent", [None, "not-a-traceparent"])
def test_a_message_without_a_usable_trace_starts_a_new_one(traceparent):
    traces: list[str] = []

    def rest(message: Inflight) -> Result:
        context = current_context()
        assert context is not None and context.trace is not None
        traces.append(context.trace.trace_id)
        return Result(Outcome.HANDLED)

    attributes = dict(encoded(like()).attributes)
    if traceparent:
        attributes["ce-traceparent"] = traceparent
    OBSERVE(inflight(raw(b"{}", attributes)), rest)
    OBSERVE(inflight(raw(b"{}", attributes)), rest)
    assert len(traces[0]) == 32 and traces[0] != traces[1]


def test_a_step_that_raises_is_retried_and_logged_without_its_message(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = OBSERVE(inflight(encoded(like())), Raising(KeyError(CANARY)))
    assert (result.outcome, result.ack, result.reason) == (Outcome.RETRY, False, "KeyError")
    raised, line = caplog.records
    assert (raised.levelno, raised.getMessage()) == (logging.ERROR, "pipeline step raised")
    assert raised.fields["error"]["type"] == "KeyError"
    assert (line.levelno, line.getMessage()) == (logging.WARNING, "retry post.liked.v1")
    assert line.fields["outcome"] == "nack"
    assert CANARY not in caplog.text
    assert all(CANARY not in repr(record.__dict__) for record in caplog.records)


@pytest.mark.parametrize(("took", "warned"), [(10.5, True), (10.0, False), (3.0, False)])
def test_handling_longer_than_the_ack_deadline_is_warned_about(caplog, monkeypatch, took, warned):
    readings = iter([100.0, 100.0 + took])
    monkeypatch.setattr(
        observe_module, "time", types.SimpleNamespace(monotonic=lambda: next(readings))
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        Observe(ack_deadline=10)(inflight(encoded(like())), Rest())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == int(warned)
    if warned:
        assert warnings[0].getMessage() == (
            "handling took 10.5 s, longer than the ack deadline (10 s): "
            "Pub/Sub may have delivered it again meanwhile"
        )
    assert caplog.records[-1].getMessage() == "handled post.liked.v1"  # the outcome line last


def test_the_ack_deadline_warning_says_how_long_handling_took_in_milliseconds(caplog, monkeypatch):
    """As the outcome line does, so a log-based metric can count slow handling by duration."""
    readings = iter([100.0, 110.56789])
    monkeypatch.setattr(
        observe_module, "time", types.SimpleNamespace(monotonic=lambda: next(readings))
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        Observe(ack_deadline=10)(inflight(encoded(like())), Rest())
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.fields == {"duration_ms": 10567.9}
