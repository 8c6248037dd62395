"""``pubsub-kit dev`` stops cleanly however it is stopped, and says who holds a port it needs."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared import wire
from shared.delivery import RawMessage
from shared.errors import ConfigurationError
from shared.stores import open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools import ports
from shared.tools.dev import FunctionProcess, LocalSystem
from tests.conftest import REPO

READY = "delivering on project"


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports nothing listens on."""
    for _ in range(50):
        base = ports.free_ports()[0]
        if base + count < 65000 and not any(ports.listening(base + i) for i in range(count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports found")


class Dev:
    """``pubsub-kit dev`` as a user runs it: the console script, in its own process."""

    def __init__(self, project: str, port_base: int, store: str) -> None:
        env = {**os.environ, "PUBSUB_PROJECT_ID": project}
        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.cli", "dev", "--project", project,
             "--port-base", str(port_base)],
            cwd=REPO, env={**env, "PUBSUB_KIT_STORE": store}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        seen: list[str] = []
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    line = self.lines.get(timeout=0.5)
                except queue.Empty:
                    if self.process.poll() is not None:
                        break
                    continue
                seen.append(line)
                if text in line:
                    return
        finally:
            timer.cancel()
        pytest.fail(f"dev never printed {text!r}; it printed:\n{''.join(seen[-30:])}")

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            printed = []
            while not self.lines.empty():
                printed.append(self.lines.get())
            pytest.fail(f"dev did not stop within 90 s; its last lines:\n{''.join(printed[-30:])}")


@pytest.fixture
def dev(project: str, tmp_path) -> Iterator[type[Dev]]:
    started: list[Dev] = []

    def start(port_base: int) -> Dev:
        run = Dev(project, port_base, f"sqlite:///{tmp_path / 'dev.db'}")
        started.append(run)
        return run

    yield start  # type: ignore[misc]
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(30)


@pytest.mark.emulator
@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_dev_stopped_by_a_signal_frees_its_ports_for_the_next_run(dev, sig) -> None:
    base = consecutive_free_ports(len(TOPOLOGY.consumers))
    first = dev(base)
    first.wait_for(READY)
    assert first.stop(sig) == 0
    taken = [base + i for i in range(len(TOPOLOGY.consumers)) if ports.listening(base + i)]
    assert taken == [], f"ports still held after {signal.Signals(sig).name}: {taken}"

    second = dev(base)  # the next run on the same ports starts
    second.wait_for(READY)
    assert second.stop(signal.SIGINT) == 0


def test_a_taken_port_names_the_process_that_holds_it(tmp_path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys\n"
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
         "print(s.getsockname()[1], flush=True); sys.stdin.read()"],  # holds it until killed
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        function = FunctionProcess("timeline_enrichment", port, {}, REPO / "functions")
        with pytest.raises(ConfigurationError) as raised:
            function.start(lambda name, line: None)
        assert f"port {port} for function timeline_enrichment is already in use" in str(
            raised.value
        )
        assert f"by pid {holder.pid} (" in str(raised.value)
    finally:
        holder.kill()
        holder.wait(30)


@pytest.mark.emulator
@pytest.mark.e2e
def test_a_local_system_stopped_and_started_again_delivers(project, tmp_path) -> None:
    """Stopped, a LocalSystem nacked everything it was then given, also after a new start.

    Delivered here by hand, not through the emulator, so the test is about the runtime's state
    after a restart and nothing else (the emulator's leases to earlier pulls cannot delay it).
    """
    url = f"sqlite:///{tmp_path / 'state.db'}"
    system = LocalSystem(TOPOLOGY, project=project, store_url=url, port_base=0,
                         functions=["timeline_enrichment"])  # fmt: skip
    store = open_store(url)
    now = datetime.now(UTC)
    try:
        for round_ in (1, 2):
            system.start()
            like = PostLiked(post_id=f"p{round_}", liker_id="u1", author_id="u2", liked_at=now)
            data, attributes = wire.encode(like, wire.new_envelope(like, source="/t"))
            raw = RawMessage(data, attributes, message_id=f"m{round_}", attempt=1)
            assert system.deliver("post-liked--timeline_enrichment", raw), f"round {round_}"
            assert store.counters("timeline_affinity", "u1") == {"u2": round_}
            system.stop()
    finally:
        system.stop()
        store.close()
