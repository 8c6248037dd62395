"""The three runners of the ack contract behind one interface, and the ``runner`` fixture.

Each runner delivers one message to the probe consumer (:mod:`tests.contract.probe`) and reports
an :class:`Observed`: its answer as that runner expresses it, how many times the handler had run
for the event when the answer was given (counted in the SQLite file every runner shares), and
what reached the dead-letter topic, with the reason.

- ``harness``: :class:`shared.testing.HandlerHarness`, in memory; the answer is the
  :class:`~shared.runtime.Outcome` itself; dead letters are ``harness.dead_letters``.
- ``worker``: :class:`shared.PullWorker` streaming from the real emulator; the answer is what the
  emulator did next: ``"nacked"`` when it redelivered the message with a higher delivery attempt,
  ``"acked"`` when it did not within :data:`QUIET`; dead letters are pulled from
  ``<subscription>--dlq``.
- ``http``: the probe function file, served by functions-framework on 127.0.0.1 by a real HTTP
  server and sent GCP push bodies; the answer is the status code; dead letters as for the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal, NamedTuple, NoReturn, Protocol

import pytest

from shared import wire
from shared.delivery import RawMessage
from shared.errors import PublishError
from shared.push import to_push_body
from shared.runtime import Outcome, Pipeline, Result
from shared.stores.sqlite import SqliteStore
from shared.testing import DeadLetterRecord, HandlerHarness
from shared.tools.provision import provision
from shared.worker import PullWorker
from tests.conftest import REPO
from tests.contract.probe import CONSUMER, SUBSCRIPTION, TOPOLOGY, handler, handler_runs

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

FUNCTION_SOURCE = REPO / "tests" / "test_functions" / "contract_probe" / "main.py"
DEAD_LETTER_SUBSCRIPTION = f"{SUBSCRIPTION}--dlq"

FIRST_DELIVERY_TIMEOUT = 20.0  # seconds from publish until the worker has answered
QUIET = 1.5  # seconds without a redelivery that count as acked (a nack comes back in ~0.1 s)
DEAD_LETTER_SETTLE = 0.5  # seconds the dead-letter subscription must stay empty to be drained

Settled = Literal["acked", "nacked"]
Answer = Outcome | Settled | int
"""How a runner expresses an outcome: the outcome, what the emulator did, or an HTTP status."""


class Expected(NamedTuple):
    """One row of the ack contract: an outcome, and how the worker and HTTP must answer it.

    Stated apart from :class:`Outcome`'s own ``ack`` and ``http_status``, so that a change to
    those shows up as a broken contract rather than as a new expectation.
    """

    outcome: Outcome
    ack: bool
    http_status: int


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message on the dead-letter topic, as any runner sees it."""

    subscription: str | None
    reason: str | None
    event_id: str | None
    data: bytes

    @classmethod
    def of_record(cls, record: DeadLetterRecord) -> DeadLetter:
        return cls(
            record.subscription,
            record.reason,
            record.message.attributes.get(wire.ATTR_ID),
            record.message.data,
        )

    @classmethod
    def of_attributes(cls, attributes: Mapping[str, str], data: bytes) -> DeadLetter:
        return cls(
            attributes.get(wire.ATTR_DLQ_SUBSCRIPTION),
            attributes.get(wire.ATTR_DLQ_REASON),
            attributes.get(wire.ATTR_ID),
            data,
        )


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one delivery came to, as seen by one runner."""

    answer: Answer
    handler_runs: int
    dead_letters: list[DeadLetter]


class Runner(Protocol):
    """Delivers messages to the probe consumer and observes the result."""

    def deliver(self, data: bytes, attributes: Mapping[str, str]) -> Observed:
        """Deliver one message (first attempt) and observe what it came to."""
        ...

    def answer_for(self, expected: Expected) -> Answer:
        """How this runner expresses the ``expected`` row of the contract."""
        ...

    def break_dead_lettering(self) -> None:
        """Make every later dead-letter publish fail."""
        ...


# -- harness ---------------------------------------------------------------------------------


class FailingSink:
    """A dead-letter sink whose Pub/Sub is gone: every send fails as the real one would."""

    def send(self, raw: RawMessage, subscription: str, reason: str) -> str:
        raise PublishError(f"{subscription}--dlq", raw.message_id, "404 Topic not found")


class HarnessRunner:
    """:class:`HandlerHarness`: the production pipeline in memory, on the shared store."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.harness = HandlerHarness(TOPOLOGY, CONSUMER, handler(lambda: store), store=store)

    def deliver(self, data: bytes, attributes: Mapping[str, str]) -> Observed:
        before = len(self.harness.dead_letters)
        result = self.harness.deliver_raw(data, attributes)
        return Observed(
            result.outcome,
            handler_runs(self.store, attributes[wire.ATTR_ID]),
            [DeadLetter.of_record(r) for r in self.harness.dead_letters[before:]],
        )

    def answer_for(self, expected: Expected) -> Answer:
        return expected.outcome

    def break_dead_lettering(self) -> None:
        store = self.store
        self.harness = HandlerHarness(
            TOPOLOGY, CONSUMER, handler(lambda: store), store=store, dead_letter_sink=FailingSink()
        )


# -- the emulator side, shared by the worker and the HTTP runner -------------------------------


class EmulatorProbe:
    """The probe topology provisioned in one emulator project, and what tests do to it."""

    def __init__(self, project: str) -> None:
        from google.cloud import pubsub_v1

        self.project = project
        self.publisher: PublisherClient = pubsub_v1.PublisherClient()
        self.subscriber: SubscriberClient = pubsub_v1.SubscriberClient()
        provision(TOPOLOGY, project=project, publisher=self.publisher, subscriber=self.subscriber)

    def path(self, kind: Literal["topics", "subscriptions"], name: str) -> str:
        return f"projects/{self.project}/{kind}/{name}"

    def publish(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish to the probe topic as any producer would; the message id."""
        topic = TOPOLOGY.subscription(SUBSCRIPTION).topic.name
        future = self.publisher.publish(self.path("topics", topic), data, **attributes)
        return str(future.result(timeout=30))

    def drain_dead_letters(self, settle: float = DEAD_LETTER_SETTLE) -> list[DeadLetter]:
        """Pull and ack the dead-letter subscription until it stays empty for ``settle`` s."""
        path = self.path("subscriptions", DEAD_LETTER_SUBSCRIPTION)
        letters: dict[str, DeadLetter] = {}
        deadline = time.monotonic() + 30
        last_new = time.monotonic()
        while time.monotonic() - last_new < settle and time.monotonic() < deadline:
            response = self.subscriber.pull(
                request={"subscription": path, "max_messages": 100, "return_immediately": True},
                timeout=10,
            )
            received = response.received_messages
            if not received:
                time.sleep(0.05)  # poll interval; bounded by the deadline above
                continue
            self.subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [m.ack_id for m in received]}
            )
            for m in received:
                letters[m.message.message_id] = DeadLetter.of_attributes(
                    m.message.attributes, bytes(m.message.data)
                )
            last_new = time.monotonic()
        return list(letters.values())

    def delete_dead_letter_topic(self) -> None:
        topic = TOPOLOGY.subscription(SUBSCRIPTION).dead_letter_topic
        self.publisher.delete_topic(request={"topic": self.path("topics", topic)})

    def close(self) -> None:
        self.publisher.stop()
        self.subscriber.close()


# -- worker ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Delivered:
    """One delivery the emulator made to the worker, and the handler runs when it was answered."""

    message_id: str
    attempt: int | None
    result: Result
    handler_runs: int


class DeliveryLog:
    """Stands in for the worker's pipeline: runs it and records each delivery the emulator made."""

    def __init__(self, pipeline: Pipeline, runs: Callable[[RawMessage], int]) -> None:
        self.pipeline = pipeline
        self.runs = runs
        self.delivered: list[Delivered] = []
        self._changed = threading.Condition()

    def process(self, raw: RawMessage) -> Result:
        result = self.pipeline.process(raw)
        # Read before the worker acks or nacks, so a redelivery cannot have run yet.
        runs = self.runs(raw)
        with self._changed:
            self.delivered.append(Delivered(raw.message_id, raw.attempt, result, runs))
            self._changed.notify_all()
        return result

    def wait(self, message_id: str, count: int, timeout: float) -> list[Delivered]:
        """The deliveries of ``message_id`` once there are ``count``, or all after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [d for d in self.delivered if d.message_id == message_id]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._changed.wait(remaining)


class WorkerRunner:
    """:class:`PullWorker` on the real emulator; acked or nacked is read off the redeliveries."""

    def __init__(self, emulator: EmulatorProbe, store: SqliteStore) -> None:
        self.emulator = emulator
        self.store = store
        self.worker = PullWorker(
            TOPOLOGY, CONSUMER, handler(lambda: store), store=store, project=emulator.project
        )
        self.log = DeliveryLog(self.worker.pipeline, self._runs)
        # The worker calls self.pipeline.process for each message: observe every delivery there.
        self.worker.pipeline = self.log  # type: ignore[assignment]
        self.worker.start()

    def _runs(self, raw: RawMessage) -> int:
        return handler_runs(self.store, raw.attributes.get(wire.ATTR_ID, ""))

    def deliver(self, data: bytes, attributes: Mapping[str, str]) -> Observed:
        message_id = self.emulator.publish(data, attributes)
        found = self.log.wait(message_id, 1, FIRST_DELIVERY_TIMEOUT)
        if not found:
            _never(message_id)
        first, again = found[0], self.log.wait(message_id, 2, QUIET)[1:]
        if again and not (first.attempt or 0) < (again[0].attempt or 0):
            pytest.fail(
                f"message {message_id} was redelivered without a higher delivery attempt: "
                f"{first.attempt} then {again[0].attempt}",
                pytrace=False,
            )
        return Observed(
            "nacked" if again else "acked",
            first.handler_runs,
            self.emulator.drain_dead_letters(),
        )

    def answer_for(self, expected: Expected) -> Answer:
        return "acked" if expected.ack else "nacked"

    def break_dead_lettering(self) -> None:
        self.emulator.delete_dead_letter_topic()

    def close(self) -> None:
        self.worker.stop(timeout=30)


def _never(message_id: str) -> NoReturn:
    pytest.fail(
        f"the worker did not answer message {message_id} within {FIRST_DELIVERY_TIMEOUT} s",
        pytrace=False,
    )


# -- http ------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_function(source: Path, target: str) -> Iterator[tuple[int, ModuleType]]:
    """Serve ``target`` of ``source`` as functions-framework does, on a free 127.0.0.1 port.

    Yields the port and the function's module (functions-framework loads the file as a module
    named after it; the test closes what the module opened).
    """
    from functions_framework import create_app
    from werkzeug.serving import make_server

    app = create_app(target=target, source=str(source))
    module = sys.modules[source.stem]
    assert module.__file__ == str(source), "functions-framework loaded another module"
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=target, daemon=True
    )
    thread.start()
    try:
        yield server.server_port, module
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class HttpRunner:
    """The probe function over real HTTP, sent the push bodies GCP sends."""

    def __init__(self, emulator: EmulatorProbe, store: SqliteStore, port: int) -> None:
        self.emulator = emulator
        self.store = store
        self.port = port

    def deliver(self, data: bytes, attributes: Mapping[str, str]) -> Observed:
        raw = RawMessage(
            data=data,
            attributes=dict(attributes),
            message_id=uuid.uuid4().hex,
            publish_time=datetime.now(UTC),
            attempt=1,
            subscription=SUBSCRIPTION,
        )
        status = self.post(to_push_body(raw, self.emulator.path("subscriptions", SUBSCRIPTION)))
        return Observed(
            status,
            handler_runs(self.store, attributes[wire.ATTR_ID]),
            self.emulator.drain_dead_letters(),
        )

    def post(self, body: Mapping[str, object]) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", "/", json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def answer_for(self, expected: Expected) -> Answer:
        return expected.http_status

    def break_dead_lettering(self) -> None:
        self.emulator.delete_dead_letter_topic()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """The SQLite file every runner counts handler runs and claims in."""
    opened = SqliteStore(tmp_path / "state.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def emulator_probe(project: str) -> Iterator[EmulatorProbe]:
    probe = EmulatorProbe(project)
    try:
        yield probe
    finally:
        probe.close()


def _harness(request: pytest.FixtureRequest, store: SqliteStore) -> Iterator[Runner]:
    yield HarnessRunner(store)


def _worker(request: pytest.FixtureRequest, store: SqliteStore) -> Iterator[Runner]:
    runner = WorkerRunner(request.getfixturevalue("emulator_probe"), store)
    try:
        yield runner
    finally:
        runner.close()


def _http(request: pytest.FixtureRequest, store: SqliteStore) -> Iterator[Runner]:
    emulator_probe: EmulatorProbe = request.getfixturevalue("emulator_probe")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("PUBSUB_KIT_STORE", f"sqlite:///{store.path}")  # read by the function
    monkeypatch.delenv("K_SERVICE", raising=False)
    with serve_function(FUNCTION_SOURCE, CONSUMER) as (port, module):
        try:
            yield HttpRunner(emulator_probe, store, port)
        finally:
            module.app.close()


RUNNERS: dict[str, Callable[[pytest.FixtureRequest, SqliteStore], Iterator[Runner]]] = {
    "harness": _harness,
    "worker": _worker,
    "http": _http,
}


@pytest.fixture(
    params=[
        pytest.param("harness"),
        pytest.param("worker", marks=pytest.mark.emulator),
        pytest.param("http", marks=[pytest.mark.emulator, pytest.mark.e2e]),
    ]
)
def runner(request: pytest.FixtureRequest, store: SqliteStore) -> Iterator[Runner]:
    """Each contract case runs on the harness, the pull worker and the function over HTTP."""
    yield from RUNNERS[request.param](request, store)
