"""The local runtime's delivery: HTTP posts against real servers on 127.0.0.1, and the pull
loop and ``LocalSystem`` against the emulator."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from shared import Consumer, FunctionSettings, Publisher, RetryPolicy, Topic, Topology
from shared.delivery import RawMessage
from shared.errors import ConfigurationError
from shared.system.events import PostLiked
from shared.tools.dev import HttpPusher, LocalSystem
from shared.tools.local_pull import Feed, PullPump
from shared.tools.provision import provision
from shared.worker import order_gates
from tests.conftest import wait_until
from tests.failure._support import poll

RAW = RawMessage(
    data=b"{}", attributes={"ce-id": "e1"}, message_id="m1", ordering_key="k1", attempt=2
)
SUB = "projects/p/subscriptions/post-liked--timeline_enrichment"


class Recorder(http.server.BaseHTTPRequestHandler):
    # Class attributes: serve() makes a subclass per server, and the test reads them from it.
    bodies: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 204
    hold: ClassVar[threading.Event | None] = None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        hold = type(self).hold
        if hold is not None:
            hold.wait(10)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(port: int = 0, **attrs) -> tuple[http.server.ThreadingHTTPServer, type[Recorder]]:
    handler = type("Handler", (Recorder,), {"bodies": [], **attrs})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_posts_the_push_body_gcp_would_send(stopping) -> None:
    server, handler = serve()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert HttpPusher(stopping).deliver(url, SUB, RAW, timeout=5) is True
    finally:
        server.shutdown()
    [body] = handler.bodies
    assert body["subscription"] == SUB and body["deliveryAttempt"] == 2
    assert body["message"]["orderingKey"] == "k1" and body["message"]["messageId"] == "m1"


def test_a_non_2xx_answer_is_a_nack(stopping) -> None:
    server, _ = serve(status=503)
    try:
        assert (
            HttpPusher(stopping).deliver(
                f"http://127.0.0.1:{server.server_address[1]}/", SUB, RAW, 5
            )
            is False
        )
    finally:
        server.shutdown()


def test_a_function_that_does_not_answer_in_time_fails_the_attempt(stopping) -> None:
    hold = threading.Event()
    server, _ = serve(hold=hold)
    try:
        assert (
            HttpPusher(stopping).deliver(
                f"http://127.0.0.1:{server.server_address[1]}/", SUB, RAW, 0.3
            )
            is False
        )
    finally:
        hold.set()
        server.shutdown()


def test_an_unreachable_function_is_retried_until_it_is_back(stopping) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pusher = HttpPusher(stopping)
    result: list[bool] = []
    worker = threading.Thread(
        target=lambda: result.append(pusher.deliver(f"http://127.0.0.1:{port}/", SUB, RAW, 5))
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "a refused connection must not count as a delivery"
    server, handler = serve(port)
    try:
        worker.join(10)
        assert result == [True] and len(handler.bodies) == 1
    finally:
        server.shutdown()


def test_shutdown_ends_the_wait_with_a_nack(stopping) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result: list[bool] = []
    worker = threading.Thread(
        target=lambda: result.append(
            HttpPusher(stopping).deliver(f"http://127.0.0.1:{port}/", SUB, RAW, 5)
        )
    )
    worker.start()
    stopping.set()
    worker.join(5)
    assert result == [False]


class Crasher(http.server.BaseHTTPRequestHandler):
    """A function process that dies on the message: reads the request, answers nothing."""

    requests: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append(1)
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)  # dropped before any answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_connection_accepted_then_dropped_is_a_failed_attempt_not_a_wait(stopping) -> None:
    """A message that crashes its function must count attempts, so it can be dead-lettered."""
    handler: type[Crasher] = type("Handler", (Crasher,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        answers: list[bool] = []
        worker = threading.Thread(
            target=lambda: answers.append(HttpPusher(stopping).deliver(url, SUB, RAW, 5))
        )
        worker.start()
        worker.join(10)
        assert answers == [False], "the drop must end the attempt with a nack"
        assert len(handler.requests) == 1
    finally:
        server.shutdown()


def test_a_keep_alive_connection_the_function_closed_is_reopened_once(stopping) -> None:
    server, handler = serve(protocol_version="HTTP/1.1")  # keeps connections open
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        pusher = HttpPusher(stopping)
        assert pusher.deliver(url, SUB, RAW, 5) is True
        sock = pusher._connection(url).sock
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed it
        assert pusher.deliver(url, SUB, RAW, 5) is True
        assert len(handler.bodies) == 2
    finally:
        server.shutdown()


# -- framing of the function's answer ------------------------------------------------------------


class Framer(http.server.BaseHTTPRequestHandler):
    """Answers in the framings an HTTP/1.1 server may choose, on a kept-alive connection."""

    protocol_version = "HTTP/1.1"
    answers: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        framing = type(self).answers.pop(0)
        if framing == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        elif framing == "close":  # no length: the body ends with the connection
            self.send_response(202)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"accepted")
            self.close_connection = True
        else:
            self.send_response(500)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"oops")

    def log_message(self, *args: object) -> None:
        pass


def test_every_framing_of_an_answer_is_read_to_its_end(stopping) -> None:
    """A chunked answer keeps the connection for the next post; one without a length ends it."""
    answers = ["chunked", "length", "chunked", "close", "length"]
    handler: type[Framer] = type("Handler", (Framer,), {"answers": list(answers)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        pusher = HttpPusher(stopping)
        acked = [pusher.deliver(url, SUB, RAW, 5) for _ in answers]
    finally:
        server.shutdown()
    assert acked == [True, False, True, True, False]
    assert handler.answers == []  # each post got exactly one answer, none was retried


# -- the pull loop and LocalSystem on the emulator --------------------------------------------


ORDERED = Topology(
    [Topic("post-liked", events=[PostLiked])],
    [
        Consumer(
            "ordered_probe",
            topics=["post-liked"],
            ordered=True,
            uses_store=False,
            ack_deadline=10,
            retry=RetryPolicy(0.5, 1.0),
            function=FunctionSettings(concurrency=4),
        )
    ],
)
ORDERED_SUB = "post-liked--ordered_probe"


def post_id(raw: RawMessage) -> str:
    return str(json.loads(raw.data)["post_id"])


def likes(prefix: str, count: int) -> list[PostLiked]:
    now = datetime.now(UTC)
    return [
        PostLiked(post_id=f"{prefix}-{i}", liker_id="u1", author_id="u2", liked_at=now)
        for i in range(count)
    ]


class Probe:
    """A delivery callback that records what it was given and what ran at the same time."""

    def __init__(self, answer: Callable[[RawMessage], bool] = lambda raw: True) -> None:
        self.answer = answer
        self.calls: list[tuple[str, bool]] = []  # (post id, acked) in call order
        self.overlaps: list[str] = []  # ordering keys found with two messages in delivery
        self._lock = threading.Lock()
        self._keys: set[str] = set()

    def __call__(self, raw: RawMessage) -> bool:
        key = raw.ordering_key or ""
        with self._lock:
            if key in self._keys:
                self.overlaps.append(key)
            self._keys.add(key)
        ok = False
        try:
            ok = self.answer(raw)
        finally:
            with self._lock:
                self._keys.discard(key)
                self.calls.append((post_id(raw), ok))
        return ok

    def acked(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [p for p, ok in self.calls if ok and p.startswith(prefix)]


def ordered_pump(project: str, probe: Probe, workers: int = 4) -> PullPump:
    feed = Feed(
        subscription=ORDERED_SUB,
        deliver=probe,
        function="ordered_probe",
        ack_deadline=10,
        ordered=True,
        gate=order_gates(ORDERED, [ORDERED_SUB])[ORDERED_SUB],
    )
    return PullPump(project, [feed], {"ordered_probe": workers})


@pytest.mark.emulator
def test_the_messages_of_a_key_go_one_at_a_time_in_order_through_a_failure(project) -> None:
    """Four workers, three keys: each key in publish order, its first message nacked once."""
    provision(ORDERED, project=project)
    failed: list[str] = []

    def answer(raw: RawMessage) -> bool:
        # The handler's work, not a wait for a condition: while it runs, a second message of
        # the same key would arrive (and be caught as an overlap) if the runtime allowed it.
        time.sleep(0.05)  # handler work: the interval an overlap would show in
        if post_id(raw) == "a-0" and not failed:
            failed.append("a-0")
            return False  # comes back after the backoff; the rest of "a" must wait for it
        return True

    probe = Probe(answer)
    with Publisher(ORDERED, project=project) as publisher:
        for key in ("a", "b", "c"):
            publisher.publish_all(likes(key, 8), ordering_key=key)
    pump = ordered_pump(project, probe)
    pump.start()
    try:
        wait_until(lambda: len(probe.acked()) >= 24, timeout=60, what="24 acked messages")
    finally:
        pump.stop(timeout=15)
    for key in ("a", "b", "c"):
        assert probe.acked(key) == [f"{key}-{i}" for i in range(8)], key
    assert probe.overlaps == [], "two messages of one key were in delivery at once"
    assert [p for p, _ in probe.calls if p.startswith("a-")][:2] == ["a-0", "a-0"]


@pytest.mark.emulator
def test_a_delivery_that_raises_is_nacked_and_the_others_go_on(project, caplog) -> None:
    provision(ORDERED, project=project)
    raised: list[str] = []

    def answer(raw: RawMessage) -> bool:
        if post_id(raw) == "x-3" and not raised:
            raised.append("x-3")
            raise RuntimeError("the callback crashed")
        return True

    probe = Probe(answer)
    pump = ordered_pump(project, probe)
    pump.start()
    try:
        with Publisher(ORDERED, project=project) as publisher:
            publisher.publish_all(likes("x", 6))  # no ordering key: any order
        wait_until(lambda: len(set(probe.acked())) >= 6, timeout=60, what="6 acked messages")
    finally:
        pump.stop(timeout=15)
    assert sorted(set(probe.acked())) == [f"x-{i}" for i in range(6)]
    assert [p for p, ok in probe.calls if not ok] == ["x-3"]
    assert "delivery callback failed" in caplog.text


@pytest.mark.emulator
def test_a_message_held_past_its_ack_deadline_keeps_its_lease(project) -> None:
    """The lease is extended while a delivery runs: no second delivery meanwhile."""
    provision(ORDERED, project=project)
    release = threading.Event()
    starts: list[str] = []

    def answer(raw: RawMessage) -> bool:
        starts.append(post_id(raw))
        release.wait(30)  # bounded: the test sets it once the ack deadline has passed
        return True

    probe = Probe(answer)
    pump = ordered_pump(project, probe, workers=2)  # a redelivery would find a free worker
    pump.start()
    try:
        with Publisher(ORDERED, project=project) as publisher:
            publisher.publish_all(likes("slow", 1))
        wait_until(lambda: starts == ["slow-0"], timeout=30, what="the delivery")
        # Past the ack deadline (10 s) and the backoff after it, a lost lease shows.
        redelivered = poll(lambda: len(starts) > 1, timeout=14, interval=0.5)
        release.set()
        wait_until(lambda: probe.acked() == ["slow-0"], timeout=15, what="the ack")
    finally:
        release.set()
        pump.stop(timeout=15)
    assert not redelivered, starts
    assert probe.calls == [("slow-0", True)]


# A function that prints, for each request, how many requests it then had in flight (it waits,
# bounded, until as many as its THREADS overlap) and its THREADS.
PROBE_FUNCTION = """
import json
import os
import threading

import functions_framework

_lock = threading.Lock()
_in_flight = 0
_overlap = threading.Event()


@functions_framework.http
def {name}(request):
    global _in_flight
    message = json.loads(request.get_data())["message"]
    with _lock:
        _in_flight += 1
        if _in_flight >= int(os.environ["THREADS"]):
            _overlap.set()
        line = f"probe {{message['messageId']}} {{_in_flight}} {{os.environ['THREADS']}}"
        print(line, flush=True)
    _overlap.wait(10)  # bounded: a runtime that posts one at a time is seen, not hung
    with _lock:
        _in_flight -= 1
    return "", 204
"""


class ProbeLines:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, str]] = {}  # message id -> (in flight, THREADS)

    def __call__(self, function: str, line: str) -> None:
        if line.startswith("probe "):
            _, message_id, in_flight, threads = line.split()
            self.seen[message_id] = (int(in_flight), threads)


def probe_system(tmp_path, project: str, lines: ProbeLines, **kwargs: Any) -> LocalSystem:
    name = "overlap_probe"
    (tmp_path / name).mkdir()
    (tmp_path / name / "main.py").write_text(PROBE_FUNCTION.format(name=name))
    topology = Topology(
        [Topic("post-liked", events=[PostLiked])],
        [
            Consumer(
                name,
                topics=["post-liked"],
                uses_store=False,
                function=FunctionSettings(concurrency=4),
            )
        ],
    )
    return LocalSystem(
        topology,
        project=project,
        store_url=f"sqlite:///{tmp_path / 'state.db'}",
        port_base=0,
        functions_dir=tmp_path,
        on_line=lines,
        **kwargs,
    )


@pytest.mark.emulator
@pytest.mark.e2e
@pytest.mark.parametrize(("override", "expected"), [(None, 4), (2, 2)])
def test_a_function_gets_as_many_requests_at_once_as_it_declares(
    project, tmp_path, override: int | None, expected: int
) -> None:
    """Declared concurrency 4: four requests overlap in the function, which runs 4 THREADS."""
    lines = ProbeLines()
    with probe_system(tmp_path, project, lines, concurrency=override) as system:
        with Publisher(system.topology, project=project) as publisher:
            ids = set(publisher.publish_all(likes("p", 2 * expected)))
        wait_until(lambda: ids <= set(lines.seen), timeout=60, what="every message")
    assert max(n for n, _ in lines.seen.values()) == expected
    assert {threads for _, threads in lines.seen.values()} == {str(expected)}


@pytest.mark.emulator
@pytest.mark.e2e
def test_delivery_stopped_and_started_again_delivers_what_waited(project, tmp_path) -> None:
    """What is published while delivery is stopped waits, and flows once it starts again.

    On the same subscriptions: a pull that ended leaves nothing behind in the emulator (a
    cancelled streaming pull would keep leasing messages to itself).
    """
    lines = ProbeLines()

    def seen(ids: set[str]) -> Callable[[], bool]:
        return lambda: ids <= set(lines.seen)

    def any_seen(ids: set[str]) -> Callable[[], bool]:
        return lambda: bool(ids & set(lines.seen))

    with (
        probe_system(tmp_path, project, lines, concurrency=1) as system,
        Publisher(system.topology, project=project) as publisher,
    ):
        first = set(publisher.publish_all(likes("before", 3)))
        wait_until(seen(first), timeout=60, what="the first messages")
        for round_ in range(2):
            system.stop_delivery()
            waiting = set(publisher.publish_all(likes(f"stopped-{round_}", 20)))
            assert not poll(any_seen(waiting), timeout=1.0), "delivered while stopped"
            system.start_delivery()
            wait_until(seen(waiting), timeout=60, what="the backlog")


def test_a_concurrency_out_of_range_is_refused_before_anything_starts(tmp_path) -> None:
    lines = ProbeLines()
    with pytest.raises(ConfigurationError, match="concurrency must be 1-1000 requests, found 0"):
        probe_system(tmp_path, "p", lines, concurrency=0)
