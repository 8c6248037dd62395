"""One demo order followed across every hop, on the emulator, as one trace.

In this process, with the real handlers of order_notifications and audit_log run by pull workers
and the SDK's in-memory exporter; then across processes, through ``pubsub-kit dev``'s runtime
(functions-framework over HTTP) and ``pubsub-kit trace``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from shared import Publisher, PullWorker, telemetry, wire
from shared.system.events import OrderDispatched
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from shared.tools.traces import traces_of
from tests.conftest import REPO, wait_until
from tests.telemetry.conftest import Recorded, attributes

pytestmark = pytest.mark.emulator

FOREIGN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
FOREIGN_SPAN = "00f067aa0ba902b7"


def order(order_id: str = "order-1") -> OrderDispatched:
    return OrderDispatched(
        order_id=order_id, customer_id="alice", carrier="dhl", dispatched_at=datetime.now(UTC)
    )


def load_function(name: str) -> ModuleType:
    """``functions/<name>/main.py`` as its own module, its sibling modules importable."""
    folder = REPO / "functions" / name
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"fn_{name}_main", folder / "main.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def workers(project, recorded, tmp_path, monkeypatch) -> Iterator[None]:
    """order_notifications and audit_log, their real handlers, pulling on this test's project."""
    monkeypatch.setenv("PUBSUB_KIT_STORE", f"sqlite:///{tmp_path / 'state.db'}")
    provision(TOPOLOGY, project=project)
    started = []
    for name in ("order_notifications", "audit_log"):
        module = load_function(name)
        handler = inspect.unwrap(getattr(module, name))  # under the HTTP endpoint
        worker = PullWorker(TOPOLOGY, name, handler, project=project)
        worker.start()
        started.append((worker, module))
    yield
    for worker, module in started:
        worker.stop(timeout=10)
        module.app.close()


def audit_of_both_events(recorded: Recorded) -> bool:
    names = [s.name for s in recorded.spans]
    return (
        "process order-dispatched--audit_log" in names
        and "process notification-requested--audit_log" in names
    )


def assert_one_trace_with_the_right_parents(recorded: Recorded) -> ReadableSpan:
    """Every hop in one trace, each parented by the hop that caused it; returns the root."""
    span = recorded.named
    publish_order = span("send order-dispatched")
    notify = span("process order-dispatched--order_notifications")
    handle = span("handle order_notifications")
    publish_notification = span("send notification-requested")
    audit_notification = span("process notification-requested--audit_log")
    audit_order = span("process order-dispatched--audit_log")

    def parent_of(child: ReadableSpan) -> int | None:
        return child.parent.span_id if child.parent else None

    assert parent_of(notify) == publish_order.context.span_id
    assert parent_of(handle) == notify.context.span_id
    assert parent_of(publish_notification) == handle.context.span_id
    assert parent_of(audit_notification) == publish_notification.context.span_id
    assert parent_of(audit_order) == publish_order.context.span_id
    hops = [publish_order, notify, handle, publish_notification, audit_notification, audit_order]
    assert len({s.context.trace_id for s in hops}) == 1
    assert [s.kind for s in (publish_order, publish_notification)] == [SpanKind.PRODUCER] * 2
    assert [s.kind for s in (notify, audit_notification, audit_order)] == [SpanKind.CONSUMER] * 3
    assert {attributes(s)["pubsub_kit.status"] for s in (notify, audit_order, handle)} == {
        "handled"
    }
    return publish_order


def test_a_demo_order_is_one_trace_from_publish_to_the_audit_of_its_notification(workers, recorded):
    with Publisher(TOPOLOGY) as publisher:
        future = publisher.publish(order())
        message_id = future.result(timeout=30)
    wait_until(
        lambda: audit_of_both_events(recorded),
        timeout=60,
        interval=0.2,
        what="audit_log's spans of the order and of its notification",
    )
    publish_order = assert_one_trace_with_the_right_parents(recorded)
    assert publish_order.parent is None
    assert publish_order.attributes == {
        "messaging.system": "gcp_pubsub",
        "messaging.destination.name": "order-dispatched",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.message.id": message_id,
        "messaging.message.body.size": attributes(publish_order)["messaging.message.body.size"],
        "cloudevents.event_id": future.event_id,
        "cloudevents.event_type": "order.dispatched.v1",
        "cloudevents.event_source": attributes(publish_order)["cloudevents.event_source"],
    }


def test_a_trace_from_a_foreign_producer_continues_through_every_hop(workers, recorded, project):
    """A producer in another language sends only data and ce-* attributes, traceparent included."""
    from google.cloud import pubsub_v1

    event = order("order-foreign")
    client = pubsub_v1.PublisherClient()
    client.publish(
        f"projects/{project}/topics/order-dispatched",
        event.model_dump_json().encode(),
        **{
            "ce-specversion": "1.0",
            "ce-id": "node-1",
            "ce-source": "/node/checkout",
            "ce-type": "order.dispatched.v1",
            "ce-time": "2026-11-30T10:00:00Z",
            "ce-traceparent": f"00-{FOREIGN_TRACE}-{FOREIGN_SPAN}-01",
            "ce-tracestate": "vendor=opaque",
        },
    ).result(timeout=30)
    wait_until(
        lambda: audit_of_both_events(recorded),
        timeout=60,
        interval=0.2,
        what="audit_log's spans of the order and of its notification",
    )
    trace_ids = {f"{s.context.trace_id:032x}" for s in recorded.spans}
    assert trace_ids == {FOREIGN_TRACE}
    for name in (
        "process order-dispatched--order_notifications",
        "process order-dispatched--audit_log",
    ):
        span = recorded.named(name)
        assert span.parent is not None and span.parent.is_remote
        assert f"{span.parent.span_id:016x}" == FOREIGN_SPAN
        assert span.context.trace_state.get("vendor") == "opaque"  # passed on, untouched


def test_what_travels_on_the_wire_is_the_producer_span_and_its_sampling_decision(project, pull_all):
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from tests.telemetry.conftest import record

    provision(TOPOLOGY, project=project)
    for sampler, flag in ((None, "01"), (ALWAYS_OFF, "00")):
        recorded = record() if sampler is None else record(sampler)
        try:
            with Publisher(TOPOLOGY) as publisher:
                publisher.publish(order()).result(timeout=30)
        finally:
            telemetry.reset()
        [message] = pull_all(project, "order-dispatched--audit_log", expect=1)
        _, trace_id, span_id, sampled = attributes(message)[wire.ATTR_TRACEPARENT].split("-")
        assert sampled == flag
        if sampler is None:
            published = recorded.named("send order-dispatched")
            assert (trace_id, span_id) == (
                f"{published.context.trace_id:032x}",
                f"{published.context.span_id:016x}",
            )


def test_with_telemetry_off_a_new_trace_is_sent_as_not_sampled(project, pull_all, telemetry_off):
    provision(TOPOLOGY, project=project)
    with Publisher(TOPOLOGY) as publisher:
        publisher.publish(order()).result(timeout=30)
    [message] = pull_all(project, "order-dispatched--audit_log", expect=1)
    assert attributes(message)[wire.ATTR_TRACEPARENT].endswith("-00")


def test_a_publish_that_fails_ends_its_span_as_an_error(project, recorded):
    from opentelemetry.trace import StatusCode

    from shared import PublishError

    # Nothing provisioned: the topic does not exist.
    with Publisher(TOPOLOGY) as publisher, pytest.raises(PublishError):
        publisher.publish(order()).result(timeout=30)
    span = recorded.named("send order-dispatched")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "NotFound"


@pytest.mark.e2e
def test_pubsub_kit_trace_shows_the_tree_across_function_processes(
    local_system, project, tmp_path, telemetry_off
):
    """The functions run by the local runtime record to a folder; the CLI prints the tree."""
    folder = tmp_path / "traces"
    local_system(TOPOLOGY, ["order_notifications", "audit_log"], trace_dir=folder)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from shared.telemetry.spans_file import SpanFileExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(SpanFileExporter(folder)))
    telemetry.use(provider)
    with Publisher(TOPOLOGY) as publisher:
        event_id = publisher.publish(order()).event_id

    def whole_tree() -> bool:
        try:
            return sum(len(t.spans) for t in traces_of(event_id, folder)) >= 8
        except Exception:  # noqa: BLE001 - nothing recorded yet
            return False

    wait_until(whole_tree, timeout=60, interval=0.2, what="8 spans of the order's trace")
    command = [str(Path(sys.executable).with_name("pubsub-kit")), "trace", event_id[:13]]
    shown = subprocess.run(
        [*command, "--dir", str(folder)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    lines = shown.splitlines()
    assert lines[0].endswith("8 spans, 3 services (audit_log, checkout, order_notifications)")
    rows = [re.fullmatch(r"(.*\S)\s{2,}(\S+)\s{2,}(\S+)\s+[\d.]+ ms", x) for x in lines[1:]]
    assert all(rows), lines
    tree = [row.group(1) for row in rows if row]
    assert tree == [
        "send order-dispatched",
        "├─ process order-dispatched--audit_log",
        "│  └─ handle audit_log",
        "└─ process order-dispatched--order_notifications",
        "   └─ handle order_notifications",
        "      └─ send notification-requested",
        "         └─ process notification-requested--audit_log",
        "            └─ handle audit_log",
    ] or tree == [
        "send order-dispatched",
        "├─ process order-dispatched--order_notifications",
        "│  └─ handle order_notifications",
        "│     └─ send notification-requested",
        "│        └─ process notification-requested--audit_log",
        "│           └─ handle audit_log",
        "└─ process order-dispatched--audit_log",
        "   └─ handle audit_log",
    ]  # siblings in the order they started
    assert {(row.group(2), row.group(3)) for row in rows if row} == {
        ("checkout", "ok"),
        ("order_notifications", "handled"),
        ("order_notifications", "ok"),
        ("audit_log", "handled"),
    }
    as_json = subprocess.run(
        [*command, "--dir", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    [trace] = json.loads(as_json)
    services = {s["name"]: s["service"] for s in trace["spans"]}
    assert services["send notification-requested"] == "order_notifications"
    assert services["process notification-requested--audit_log"] == "audit_log"
