"""The local runtime: the whole system on the emulator, each function on its own port.

``pubsub-kit dev`` starts the emulator through ``emulator.sh``, provisions the topology, serves
every consumer with functions-framework, and delivers each subscription's messages to its
function the way GCP push does: the push body with ``deliveryAttempt`` and ``orderingKey``,
2xx acks, anything else nacks so that the subscription's retry backoff and dead-letter policy
apply.

It pulls and POSTs itself instead of using the emulator's push, which gives up on an endpoint
that refused connections and sends neither ``deliveryAttempt`` nor ``orderingKey``. A function
that is down is not a failed delivery here: the message stays leased and is posted again once
the function answers, so a consumer that is down loses nothing and burns no attempts. Messages
are pulled in batches (:mod:`shared.tools.local_pull`) and each function gets as many requests
at once as it declares (``FunctionSettings.concurrency``), over kept-alive connections.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from shared import telemetry
from shared.delivery import RawMessage
from shared.errors import ConfigurationError
from shared.push import to_push_body
from shared.telemetry import TRACE_DIR_VARIABLE
from shared.tools import ports
from shared.tools import project as layout  # `project` is the emulator project's id here
from shared.tools.emulator import emulator
from shared.tools.local_pull import Feed, PullPump
from shared.tools.local_status import RuntimeStatus, status_file
from shared.tools.provision import provision
from shared.topology import Topology
from shared.worker import WorkerSettings, order_gates

log = logging.getLogger("pubsub_kit.dev")

_DEFAULT_WORKER_SETTINGS = WorkerSettings()


@dataclasses.dataclass
class FunctionProcess:
    """One consumer served by functions-framework."""

    name: str
    port: int
    env: dict[str, str]
    functions_dir: Path = dataclasses.field(default_factory=layout.functions_dir)
    process: subprocess.Popen[str] | None = None
    wanted: bool = False  # started, and not stopped on purpose: restart it if it dies

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, on_line: Callable[[str, str], None]) -> None:
        if ports.listening(self.port):
            taken_by = ports.holder(self.port)
            raise ConfigurationError(
                f"port {self.port} for function {self.name} is already in use"
                f"{' by ' + taken_by if taken_by else ''}; stop it or pass another --port-base"
            )
        source = self.functions_dir / self.name / "main.py"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--source",
                str(source),
                "--target",
                self.name,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not the function
        )
        threading.Thread(
            target=_pump_lines, args=(self.name, self.process.stdout, on_line), daemon=True
        ).start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ConfigurationError(
                    f"function {self.name} exited with {self.process.returncode} while starting; "
                    "see its log lines above"
                )
            if ports.listening(self.port):
                return
            time.sleep(0.1)
        raise ConfigurationError(
            f"function {self.name} did not listen on {self.port} in {timeout} s"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM its process group; SIGKILL what is still there after ``timeout`` seconds."""
        self.terminate()
        self.wait_or_kill(time.monotonic() + timeout)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _pump_lines(name: str, stream: IO[str] | None, on_line: Callable[[str, str], None]) -> None:
    if stream is None:
        return
    for line in stream:
        on_line(name, line.rstrip("\n"))


class HttpPusher:
    """Delivers pulled messages to function URLs as GCP push does, one connection per thread."""

    def __init__(self, stopping: threading.Event) -> None:
        self._local = threading.local()
        self._stopping = stopping

    def deliver(self, url: str, subscription_path: str, raw: RawMessage, timeout: float) -> bool:
        """POST ``raw``; True on 2xx.

        While the function refuses connections (not started yet, or restarting) the message is
        not counted as delivered: it stays leased and is posted again. A function that accepted
        the request and then dropped the connection (it crashed on this message) or did not
        answer within ``timeout`` (the ack deadline) failed the attempt, as on GCP, and the
        message is nacked, so a message that kills its function reaches the dead-letter topic
        after the declared attempts instead of looping.
        """
        body = json.dumps(to_push_body(raw, subscription_path)).encode()
        delay = 0.05
        while not self._stopping.is_set():
            reused = self._has_open_connection(url)
            try:
                status = self._post(url, body, timeout)
            except ConnectionRefusedError:
                self._drop_connection(url)
                self._stopping.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            except (ConnectionError, http.client.HTTPException, OSError):  # TimeoutError too
                self._drop_connection(url)
                if reused:
                    continue  # an idle keep-alive connection the server had closed: once more
                return False
            return 200 <= status < 300
        return False  # shutting down: nack, Pub/Sub redelivers it next time

    def _has_open_connection(self, url: str) -> bool:
        conn = getattr(self._local, "conns", {}).get(url)
        return conn is not None and conn.sock is not None

    def _connection(self, url: str) -> _Connection:
        conns: dict[str, _Connection] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        if url not in conns:
            host_port = url.split("//", 1)[1].split("/", 1)[0]
            host, port = host_port.split(":")
            conns[url] = _Connection(host, int(port))
        return conns[url]

    def _drop_connection(self, url: str) -> None:
        conns = getattr(self._local, "conns", {})
        conn = conns.pop(url, None)
        if conn is not None:
            conn.close()

    def _post(self, url: str, body: bytes, timeout: float) -> int:
        return self._connection(url).post(body, timeout)


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs a JSON body to ``/`` and reads the answer.

    What GCP's push sends, and nothing more. ``http.client`` parses every answer's headers with
    the ``email`` package: a third of the pull loop's CPU per message under py-spy, where this
    reads only the status line and the headers that frame the answer (length, chunking,
    ``Connection``).
    """

    _LIMIT = 65536  # bytes: longest status or header line taken

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self._reader: IO[bytes] | None = None
        self._head = (
            f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: "
        ).encode("ascii")

    def post(self, body: bytes, timeout: float) -> int:
        """The answer's status; raises ``OSError`` (``ConnectionRefusedError`` when nothing
        listens) or :class:`http.client.HTTPException` when there is no well-formed answer."""
        if self.sock is None or self._reader is None:
            self.sock = socket.create_connection((self.host, self.port), timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader = self.sock.makefile("rb")
        else:
            self.sock.settimeout(timeout)
        self.sock.sendall(b"%b%d\r\n\r\n%b" % (self._head, len(body), body))
        try:
            status, keep_alive = self._read_answer(self._reader)
        except ValueError:  # a length or a chunk size that is no number
            raise http.client.HTTPException("malformed answer from the function") from None
        if not keep_alive:
            self.close()
        return status

    def _read_answer(self, reader: IO[bytes]) -> tuple[int, bool]:
        status, keep_alive, length, chunked = self._read_head(reader)
        while status < 200:  # an interim answer (100 Continue): the final one follows
            status, keep_alive, length, chunked = self._read_head(reader)
        if status in (204, 304):
            pass  # no body
        elif chunked:
            while size := int(reader.readline(self._LIMIT).split(b";")[0], 16):
                reader.read(size + 2)  # the chunk and its CRLF
            while reader.readline(self._LIMIT) not in (b"\r\n", b"\n", b""):
                pass  # trailers
        elif length is not None:
            if len(reader.read(length)) < length:
                raise http.client.IncompleteRead(b"", length)
        else:
            reader.read()  # no length: the body ends with the connection
            keep_alive = False
        return status, keep_alive

    def _read_head(self, reader: IO[bytes]) -> tuple[int, bool, int | None, bool]:
        """Status, keep-alive, Content-Length and chunking of the next answer."""
        line = reader.readline(self._LIMIT)
        if not line:
            raise http.client.RemoteDisconnected("the function closed the connection unanswered")
        version, _, rest = line.partition(b" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise http.client.BadStatusLine(line.decode("latin-1")) from None
        keep_alive = version == b"HTTP/1.1"
        length: int | None = None
        chunked = False
        while (header := reader.readline(self._LIMIT)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection" and value in (b"close", b"keep-alive"):
                keep_alive = value == b"keep-alive"
        return status, keep_alive, length, chunked

    def close(self) -> None:
        reader, sock, self._reader, self.sock = self._reader, self.sock, None, None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()


class LocalSystem:
    """Everything ``pubsub-kit dev`` runs, startable and stoppable from tests too.

    Args:
        topology: what to provision and serve.
        project: the emulator project (a fresh one isolates a run completely).
        store_url: the store every function shares: ``sqlite:///PATH``, or ``firestore`` to run
            the GCP store on the Firestore emulator (started through emulator.sh).
        port_base: the first function's port; the others follow. 0 picks free ports.
        functions: which consumers to serve (default all).
        functions_dir: where ``<consumer>/main.py`` live (default the project's ``functions/``).
        on_line: receives (function name, log line) for every line a function prints.
        settings: per subscription, messages held at once (``max_messages``, pulled in
            batches of up to that many) and how long a lease is extended; see
            :mod:`shared.tools.local_pull`.
        concurrency: requests in flight per function, for every function; ``None`` (the
            default): each function's declared ``FunctionSettings.concurrency``, as Cloud Run
            gives each instance. The function's ``THREADS`` are as many. At 1 (GCP's default)
            a message that crashes its function takes down no other message with it.
        trace_dir: where the functions record their spans (``pubsub-kit trace`` reads them);
            ``None`` records nothing unless the environment configures OpenTelemetry. Either
            way each function's ``OTEL_SERVICE_NAME`` is its name, as on GCP.
        port_map: a JSON file that keeps each function's offset from ``port_base`` across
            runs (``pubsub-kit dev``: ``.pubsub-kit/ports.json``), so that adding a consumer
            moves no other function; ``None``: consecutive ports in name order.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        project: str,
        store_url: str,
        port_base: int = 8090,
        functions: list[str] | None = None,
        functions_dir: Path | None = None,
        on_line: Callable[[str, str], None] | None = None,
        settings: WorkerSettings = _DEFAULT_WORKER_SETTINGS,
        concurrency: int | None = None,
        trace_dir: Path | None = None,
        port_map: Path | None = None,
    ) -> None:
        self.topology = topology
        self.trace_dir = trace_dir
        self.project = project
        self.store_url = store_url
        # Each function's outcomes and deliveries in flight, for `pubsub-kit status`.
        self.runtime_status = RuntimeStatus(status_file(layout.state_dir(), project), project)
        self.on_line = self.runtime_status.observing(on_line or (lambda name, line: None))
        self.settings = settings
        names = functions or sorted(topology.consumers)
        if port_base == 0:
            numbers = ports.free_ports(len(names))
        elif port_map is not None:
            offsets = ports.stable_offsets(names, port_map)
            numbers = [port_base + offsets[name] for name in names]
        else:
            numbers = list(range(port_base, port_base + len(names)))
        folder = functions_dir or layout.functions_dir()
        self.functions = {
            name: FunctionProcess(name, port, {}, folder)
            for name, port in zip(names, numbers, strict=True)
        }
        self._restarting = threading.Lock()  # a reload and the supervisor never race
        if concurrency is not None and not 1 <= concurrency <= 1000:
            raise ConfigurationError(f"concurrency must be 1-1000 requests, found {concurrency}")
        # Requests in flight per function: its delivery threads and functions-framework's.
        self.concurrency = {
            name: concurrency or topology.consumer(name).function.concurrency
            for name in self.functions
        }
        self._slots = {
            name: threading.BoundedSemaphore(count) for name, count in self.concurrency.items()
        }
        self._stopping = threading.Event()  # the whole system is stopping
        self._not_delivering = threading.Event()  # ends posts still waiting for a function
        self._pusher = HttpPusher(self._not_delivering)
        self._pump: PullPump | None = None
        self._emulators = contextlib.ExitStack()  # stops the emulators this system started
        self._saved_env: dict[str, str | None] = {}  # what start() changed in os.environ
        self.env: dict[str, str] = {}

    def start(self) -> None:
        """Emulator, topology, functions, delivery; in that order. Idempotent per piece."""
        self._stopping.clear()
        self.env = {"PUBSUB_EMULATOR_HOST": self._emulators.enter_context(emulator("pubsub"))}
        if self.store_url.startswith("firestore"):
            # The GCP store, on the Firestore emulator: the same code path as in the cloud.
            host = self._emulators.enter_context(emulator("firestore"))
            self.env["FIRESTORE_EMULATOR_HOST"] = host
            self.env["GOOGLE_CLOUD_PROJECT"] = self.project
        self.env["PUBSUB_PROJECT_ID"] = self.project
        # This process talks to the same emulators (provisioning, delivery); stop() restores.
        self._saved_env = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        provision(self.topology, project=self.project)
        for fn in self.functions.values():
            self.start_function(fn.name)
        self.runtime_status.start(self.functions)
        self.start_delivery()
        threading.Thread(target=self._supervise, name="pubsub-kit-supervisor", daemon=True).start()

    def start_delivery(self) -> None:
        """Pull every served subscription and post its messages to its function (a no-op when
        delivering already). :meth:`start` calls it; after :meth:`stop_delivery` it resumes."""
        if self._pump is not None:
            return
        # Subscriptions of consumers not served in this run keep their messages.
        served = [
            s for s in self.topology.subscriptions.values() if s.consumer.name in self.functions
        ]
        gates = order_gates(self.topology, [s.name for s in served])
        feeds = [
            Feed(
                subscription=sub.name,
                deliver=self._deliverer(sub.name, sub.consumer.name),
                function=sub.consumer.name,
                ack_deadline=sub.consumer.ack_deadline,
                ordered=sub.consumer.ordered,
                gate=gates.get(sub.name),
            )
            for sub in served
        ]
        self._not_delivering.clear()
        self._pump = PullPump(self.project, feeds, self.concurrency, self.settings)
        self._pump.start()

    def stop_delivery(self, timeout: float = 15.0) -> None:
        """Stop pulling, as if the runtime were down; the functions keep running.

        Messages then wait in their subscriptions; what was pulled and not answered yet is
        nacked (a post waiting for a function that is down ends at once), so it comes back
        after the subscription's backoff. ``timeout`` bounds the wait for posts in progress.
        """
        self._not_delivering.set()
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.stop(timeout=timeout)

    def _supervise(self, interval: float = 0.5) -> None:
        """Start again a function whose process died, as Cloud Run starts a new instance.

        A message that kills its function (a crash, an out-of-memory kill) fails its attempt
        and comes back with backoff; without a new process every message after it would wait.
        """
        while not self._stopping.wait(interval):
            for fn in self.functions.values():
                with self._restarting:
                    if fn.wanted and fn.process is not None and fn.process.poll() is not None:
                        self.on_line(
                            fn.name, f"exited with code {fn.process.returncode}; starting it again"
                        )
                        with contextlib.suppress(ConfigurationError):  # tried again next round
                            self.start_function(fn.name)

    def function_env(self, name: str) -> dict[str, str]:
        found = layout.find_root()
        root = str(found) if found is not None else None
        env = dict(os.environ)
        env.update(self.env)
        env.update(
            {
                "PUBSUB_KIT_STORE": self.store_url,
                "PUBSUB_KIT_SOURCE": f"/services/{name}",
                # The project's own packages (its topology, its events) import as in tests.
                "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])),
                "PYTHONUNBUFFERED": "1",
                "THREADS": str(self.concurrency[name]),  # functions-framework's request threads
                "OTEL_SERVICE_NAME": name,
            }
        )
        if self.trace_dir is not None:
            env[TRACE_DIR_VARIABLE] = str(self.trace_dir)
        env.pop("K_SERVICE", None)
        return env

    def start_function(self, name: str) -> None:
        fn = self.functions[name]
        if fn.process is not None and fn.process.poll() is None:
            return
        fn.wanted = True
        fn.env = self.function_env(name)
        fn.start(self.on_line)
        fn.wait_ready()

    def restart_function(self, name: str) -> bool:
        """Stop ``name`` and start it again (its code changed); its messages wait meanwhile.

        Returns:
            Whether it is running again. One that does not start (a syntax error, say) is left
            stopped, with a line saying so, until the next change.
        """
        with self._restarting:
            self.functions[name].stop()
            try:
                self.start_function(name)
            except ConfigurationError as exc:
                self.functions[name].wanted = False
                self.functions[name].stop()
                self.on_line(name, f"{exc}; it starts again on the next change")
                return False
            return True

    def stop_function(self, name: str) -> None:
        """Stop one function on purpose (it is not restarted); its messages wait for it."""
        self.functions[name].wanted = False
        self.functions[name].stop()

    def deliver(self, subscription: str, raw: RawMessage) -> bool:
        """Post ``raw`` to the function of ``subscription`` as the pump does; True when acked."""
        return self._deliverer(
            subscription, self.topology.subscription(subscription).consumer.name
        )(raw)

    def _deliverer(self, subscription: str, consumer: str) -> Callable[[RawMessage], bool]:
        path = f"projects/{self.project}/subscriptions/{subscription}"

        url = self.functions[consumer].url
        slots = self._slots[consumer]
        # GCP push waits for an answer up to the subscription's ack deadline.
        timeout = float(self.topology.consumer(consumer).ack_deadline)

        def deliver(raw: RawMessage) -> bool:
            with self.runtime_status.delivering(consumer, raw), slots:
                return self._pusher.deliver(url, path, raw, timeout)

        return deliver

    def stop(self) -> None:
        """Stop delivery, the functions, and the emulator if this system started it."""
        self._stopping.set()
        self.stop_delivery()
        for fn in self.functions.values():  # all at once: each may take seconds to exit
            fn.wanted = False
            fn.terminate()
        deadline = time.monotonic() + 10
        for fn in self.functions.values():
            fn.wait_or_kill(deadline)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        self.runtime_status.stop()
        self._emulators.close()

    def __enter__(self) -> LocalSystem:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def record_traces(service: str, folder: Path | None = None) -> Path:
    """Record this process's spans (as ``service``) in ``folder``, emptied of an earlier run's.

    ``folder`` defaults to the project's ``.pubsub-kit/traces``.

    ``pubsub-kit dev`` and ``demo`` call it, and pass ``folder`` to the functions, so that
    ``pubsub-kit trace`` sees every hop of this run, the events the command publishes included.
    """
    folder = folder or layout.trace_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink(missing_ok=True)
    os.environ[TRACE_DIR_VARIABLE] = str(folder)
    os.environ["OTEL_SERVICE_NAME"] = service
    telemetry.reset()  # decide again, with the variables just set
    return folder


@contextlib.contextmanager
def running(topology: Topology, **kwargs: Any) -> Iterator[LocalSystem]:
    system = LocalSystem(topology, **kwargs)
    try:
        system.start()
        yield system
    finally:
        system.stop()
