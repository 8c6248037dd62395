"""Fixtures shared by the suite: the real emulators, started through emulator.sh, and hermetic names.

Emulator tests are marked ``emulator`` (``firestore`` for the Firestore emulator). When
``PUBSUB_EMULATOR_HOST`` is already set the running emulator is used; otherwise the session
starts one with ``./emulator.sh start`` and stops it at the end. Every test gets its own
emulator project (a Prefixer name), so runs and tests never see each other's topics.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_utils.prefixer import Prefixer

from shared.dev import parse_exports

REPO = Path(__file__).resolve().parent.parent
EMULATOR = REPO / "emulator.sh"
PREFIXER = Prefixer("pubsub-kit", "tests", separator="-")


def _start(which: str) -> tuple[dict[str, str], bool]:
    already = subprocess.run(["bash", str(EMULATOR), "status", which], capture_output=True).returncode == 0
    done = subprocess.run(
        ["bash", str(EMULATOR), "start", which], capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        pytest.fail(f"emulator.sh start {which} failed:\n{done.stderr}", pytrace=False)
    return parse_exports(done.stdout), not already


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """The Pub/Sub emulator's host:port; started through emulator.sh when none is configured."""
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        yield os.environ["PUBSUB_EMULATOR_HOST"]
        return
    env, started = _start("pubsub")
    os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"]
    try:
        yield env["PUBSUB_EMULATOR_HOST"]
    finally:
        if started:
            subprocess.run(["bash", str(EMULATOR), "stop", "pubsub"], capture_output=True)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """The Firestore emulator's host:port; started through emulator.sh when none is configured."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        yield os.environ["FIRESTORE_EMULATOR_HOST"]
        return
    env, started = _start("firestore")
    # In os.environ, not only in a client: spawned processes (race tests, functions) inherit it.
    os.environ["FIRESTORE_EMULATOR_HOST"] = env["FIRESTORE_EMULATOR_HOST"]
    try:
        yield env["FIRESTORE_EMULATOR_HOST"]
    finally:
        del os.environ["FIRESTORE_EMULATOR_HOST"]
        if started:
            subprocess.run(["bash", str(EMULATOR), "stop", "firestore"], capture_output=True)


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
        try:
            subscriber.delete_subscription(request={"subscription": sub.name})
        except exceptions.NotFound:
            pass
    for topic in publisher.list_topics(request={"project": f"projects/{project}"}):
        try:
            publisher.delete_topic(request={"topic": topic.name})
        except exceptions.NotFound:
            pass


@pytest.fixture
def pull_all(pubsub_emulator: str) -> Callable[..., list]:
    """Pull and ack every message of a subscription until it stays empty for ``quiet`` seconds."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()

    def pull(project: str, subscription: str, *, expect: int | None = None, timeout: float = 30.0,
             quiet: float = 1.0) -> list:
        import time

        from google.api_core import exceptions

        path = f"projects/{project}/subscriptions/{subscription}"
        received: dict[str, object] = {}
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if expect is not None and len(received) >= expect and time.monotonic() - last_new >= quiet:
                break
            if expect is None and time.monotonic() - last_new >= quiet:
                break
            try:
                response = subscriber.pull(
                    request={"subscription": path, "max_messages": 1000}, timeout=5
                )
            except exceptions.DeadlineExceeded:
                continue
            if response.received_messages:
                subscriber.acknowledge(
                    request={"subscription": path,
                             "ack_ids": [m.ack_id for m in response.received_messages]}
                )
                for m in response.received_messages:
                    if m.message.message_id not in received:
                        received[m.message.message_id] = m.message
                        last_new = time.monotonic()
        return list(received.values())

    return pull


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.05,
               what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
