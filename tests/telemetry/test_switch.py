"""Telemetry is off unless asked for, and then costs nothing; the environment turns it on.

Each case is a fresh process that imports a real function's main.py as Cloud Functions does and
handles one event, so nothing this test process imported hides what the function loads.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared import telemetry
from shared.telemetry.spans_file import read_spans

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("consume_once.py")
AUDIT_LOG = REPO / "functions" / "audit_log"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTEL_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SERVICE_NAME")


def consume_once(tmp_path: Path, *args: str, **env: str) -> tuple[dict[str, Any], str]:
    """Deliver one event to the audit_log function in a new process: (its report, its logs)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in OTEL_VARIABLES and k != telemetry.TRACE_DIR_VARIABLE
    }
    environment |= {
        "PUBSUB_KIT_STORE": f"sqlite:///{tmp_path / 'state.db'}",
        "PUBSUB_PROJECT_ID": "telemetry-tests",
        "PYTHONPATH": str(REPO),
        **env,
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(AUDIT_LOG), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report, *_ = [line for line in done.stdout.splitlines() if line.startswith('{"status"')]
    return json.loads(report), done.stdout + done.stderr


def test_off_by_default_nothing_of_opentelemetry_is_even_imported(tmp_path):
    report, _ = consume_once(tmp_path)
    assert report["status"] == 204
    assert report["imported_by_main"] == []  # the cold start does not grow
    assert report["imported_after_one_message"] == []  # and no span is made


def test_off_the_log_line_says_the_producers_trace_continues_unrecorded(tmp_path):
    _, logs = consume_once(tmp_path, TRACEPARENT)
    [line] = [json.loads(x) for x in logs.splitlines() if '"handled post.liked.v1"' in x]
    assert line["logging.googleapis.com/trace"].endswith("0af7651916cd43dd8448eb211c80319c")
    assert line["logging.googleapis.com/trace_sampled"] is True  # as the producer decided


def test_off_a_new_trace_is_not_claimed_to_be_sampled(tmp_path):
    _, logs = consume_once(tmp_path)
    [line] = [json.loads(x) for x in logs.splitlines() if '"handled post.liked.v1"' in x]
    assert line["logging.googleapis.com/trace_sampled"] is False  # nobody records it


def test_a_trace_folder_records_every_span_of_the_process_under_its_service_name(tmp_path):
    folder = tmp_path / "traces"
    report, _ = consume_once(
        tmp_path,
        TRACEPARENT,
        PUBSUB_KIT_TRACE_DIR=str(folder),
        OTEL_SERVICE_NAME="audit-log-test",
    )
    assert report["status"] == 204
    assert report["imported_by_main"] == []  # still lazy: on at the first message
    spans = {s.name: s for s in read_spans(folder)}
    assert set(spans) == {"process post-liked--audit_log", "handle audit_log"}
    assert {s.service for s in spans.values()} == {"audit-log-test"}
    assert {s.trace_id for s in spans.values()} == {"0af7651916cd43dd8448eb211c80319c"}
    assert spans["process post-liked--audit_log"].parent_id == "b7ad6b7169203331"
    assert spans["handle audit_log"].parent_id == spans["process post-liked--audit_log"].span_id


def test_standard_exporter_variables_turn_traces_and_metrics_on(tmp_path):
    _, output = consume_once(
        tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="console"
    )
    assert '"name": "process post-liked--audit_log"' in output  # the SDK's console exporter
    assert '"name": "pubsub_kit.messages"' in output


def test_an_exporter_that_is_not_installed_is_reported_and_the_message_still_handled(tmp_path):
    report, output = consume_once(tmp_path, OTEL_TRACES_EXPORTER="no_such_exporter")
    assert report["status"] == 204
    assert "OpenTelemetry exporter 'no_such_exporter' is not installed" in output


@pytest.mark.parametrize("value", ["none", ""])
def test_exporter_none_means_off(tmp_path, value):
    report, _ = consume_once(tmp_path, OTEL_TRACES_EXPORTER=value)
    assert report["imported_after_one_message"] == []


class _Collector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.received
    server.shutdown()
    server.server_close()


def test_otlp_sends_the_spans_to_the_endpoint_the_standard_variables_name(tmp_path, collector):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    endpoint, received = collector
    report, _ = consume_once(
        tmp_path,
        TRACEPARENT,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME="audit-log-otlp",
    )
    assert report["status"] == 204
    # The batch processor flushes when the process exits, before consume_once returns.
    [(path, body)] = received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "audit-log-otlp"
    names = {s.name for scope in resource_spans.scope_spans for s in scope.spans}
    assert names == {"process post-liked--audit_log", "handle audit_log"}
    traces = {s.trace_id.hex() for scope in resource_spans.scope_spans for s in scope.spans}
    assert traces == {"0af7651916cd43dd8448eb211c80319c"}


def test_cloud_trace_is_the_exporter_gcp_trace_names():
    from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

    from shared.telemetry import _sdk

    assert _sdk._load("opentelemetry_traces_exporter", "gcp_trace", None) is CloudTraceSpanExporter
