"""The local runtime's HTTP delivery, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from shared.delivery import RawMessage
from shared.tools.dev import HttpPusher

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
        pusher._connection(url).sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed it
        assert pusher.deliver(url, SUB, RAW, 5) is True
        assert len(handler.bodies) == 2
    finally:
        server.shutdown()
