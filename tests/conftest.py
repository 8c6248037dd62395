"""Fixtures shared by the suite: the real emulators (started through emulator.sh), hermetic names.

Emulator tests are marked ``emulator`` (``firestore`` for the Firestore emulator). When
``PUBSUB_EMULATOR_HOST`` is already set the running emulator is used; otherwise the session
starts one with ``./emulator.sh start`` and stops it at the end. Every test gets its own
emulator project (a Prefixer name), so runs and tests never see each other's topics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_utils.prefixer import Prefixer

from shared.errors import ConfigurationError
from shared.tools.emulator import emulator

if TYPE_CHECKING:
    from google.pubsub_v1 import PubsubMessage

    from shared.tools.dev import LocalSystem
    from shared.topology import Topology

REPO = Path(__file__).resolve().parent.parent
EMULATOR = REPO / "emulator.sh"
PREFIXER = Prefixer("pubsub-kit", "tests", separator="-")


def _session_emulator(which: str) -> Iterator[str]:
    """The configured emulator, else emulator.sh's (started, and stopped at the end, if needed).

    The host goes into os.environ, not only into a client: spawned processes (functions, race
    tests) inherit it.
    """
    try:
        with emulator(which) as host:
            yield host
    except ConfigurationError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """The Pub/Sub emulator's host:port."""
    yield from _session_emulator("pubsub")


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """The Firestore emulator's host:port."""
    yield from _session_emulator("firestore")


@pytest.fixture
def project(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh emulator project for this test, set as PUBSUB_PROJECT_ID; emptied afterwards."""
    name = PREFIXER.create_prefix()
    monkeypatch.setenv("PUBSUB_PROJECT_ID", name)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    yield name
    _delete_everything(name)


def _delete_everything(project: str) -> None:
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()
    for sub in subscriber.list_subscriptions(request={"project": f"projects/{project}"}):
        with contextlib.suppress(exceptions.NotFound):
            subscriber.delete_subscription(request={"subscription": sub.name})
    for topic in publisher.list_topics(request={"project": f"projects/{project}"}):
        with contextlib.suppress(exceptions.NotFound):
            publisher.delete_topic(request={"topic": topic.name})


@pytest.fixture
def pull_all(pubsub_emulator: str) -> Callable[..., list[PubsubMessage]]:
    """Pull and ack every message of a subscription until it stays empty for ``quiet`` seconds.

    With ``expect``, until at least that many arrived and then ``quiet`` seconds passed. Each
    call makes its own client, so it follows the emulator ``PUBSUB_EMULATOR_HOST`` names then
    (a test's private emulator, say). Redeliveries of one message count once.
    """

    def pull(
        project: str,
        subscription: str,
        *,
        expect: int | None = None,
        timeout: float = 30.0,
        quiet: float = 1.0,
    ) -> list[PubsubMessage]:
        import time

        from google.api_core import exceptions
        from google.cloud import pubsub_v1

        path = f"projects/{project}/subscriptions/{subscription}"
        received: dict[str, PubsubMessage] = {}
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        with pubsub_v1.SubscriberClient() as subscriber:
            while time.monotonic() < deadline:
                enough = expect is None or len(received) >= expect
                if enough and time.monotonic() - last_new >= quiet:
                    break
                try:
                    response = subscriber.pull(
                        request={"subscription": path, "max_messages": 1000}, timeout=5
                    )
                except exceptions.DeadlineExceeded:
                    continue
                messages = response.received_messages
                if messages:
                    subscriber.acknowledge(
                        request={"subscription": path, "ack_ids": [m.ack_id for m in messages]}
                    )
                for m in messages:
                    if m.message.message_id not in received:
                        received[m.message.message_id] = m.message
                        last_new = time.monotonic()
        return list(received.values())

    return pull


@pytest.fixture
def local_system(project: str, tmp_path: Path) -> Iterator[Callable[..., LocalSystem]]:
    """Start ``LocalSystem``s (the local runtime) on this test's project, sharing one SQLite
    store, ``tmp_path / "state.db"``; stopped at teardown, the last started first (each start
    saved the environment the one before it set).

    ``local_system(topology, ["consumer"], functions_dir=..., on_line=..., deliver=True)``;
    with ``deliver=False`` only the function processes are started (no emulator, no pump).
    """
    from shared.tools.dev import LocalSystem

    with contextlib.ExitStack() as stack:

        def start(
            topology: Topology,
            functions: Sequence[str],
            *,
            functions_dir: Path = REPO / "functions",
            on_line: Callable[[str, str], None] | None = None,
            deliver: bool = True,
            trace_dir: Path | None = None,
        ) -> LocalSystem:
            local = LocalSystem(
                topology,
                project=project,
                store_url=f"sqlite:///{tmp_path / 'state.db'}",
                port_base=0,
                functions=list(functions),
                functions_dir=functions_dir,
                on_line=on_line,
                trace_dir=trace_dir,
            )
            stack.callback(local.stop)
            if deliver:
                local.start()
            else:
                for name in functions:
                    local.start_function(name)
            return local

        yield start


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
