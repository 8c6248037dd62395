"""The backends the store contract runs against: SQLite in a temporary file, and Firestore in the
real emulator.

When ``FIRESTORE_EMULATOR_HOST`` is set, that emulator is used; otherwise the session starts one
with ``./emulator.sh start firestore`` and stops it at the end (only if it started it). Each
Firestore test gets its own collection prefix, so tests and runs never see each other's
documents, and its collections are deleted afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_utils.prefixer import Prefixer

from shared.dev import parse_exports
from shared.stores.base import Store
from tests.stores._support import FakeClock, StoreSpec

REPO = Path(__file__).resolve().parents[2]
EMULATOR = REPO / "emulator.sh"
PREFIXER = Prefixer("pubsub-kit", "stores", separator="-")
PROJECT = "pubsub-kit-stores"  # one emulator project; the prefixes keep tests apart
BACKENDS = ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """The Firestore emulator's host:port, started through emulator.sh when none is configured."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        yield os.environ["FIRESTORE_EMULATOR_HOST"]
        return
    script = ["bash", str(EMULATOR)]
    already = subprocess.run([*script, "status", "firestore"], cwd=REPO, capture_output=True).returncode == 0
    try:
        done = subprocess.run(
            [*script, "start", "firestore"], cwd=REPO, capture_output=True, text=True, timeout=180
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"./emulator.sh start firestore did not run: {exc}", pytrace=False)
    host = parse_exports(done.stdout).get("FIRESTORE_EMULATOR_HOST")
    if done.returncode != 0 or not host:
        pytest.fail(
            f"./emulator.sh start firestore failed (exit {done.returncode}):\n{done.stderr}{done.stdout}",
            pytrace=False,
        )
    # In os.environ, not just in the store: the spawned processes of the race tests inherit it.
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        yield host
    finally:
        del os.environ["FIRESTORE_EMULATOR_HOST"]
        if not already:
            subprocess.run([*script, "stop", "firestore"], cwd=REPO, capture_output=True, timeout=60)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSpec]:
    """How to open this test's store, in this process or in another one."""
    if request.param == "sqlite":
        yield StoreSpec("sqlite", path=str(tmp_path / "state.db"))
        return
    request.getfixturevalue("firestore_emulator")
    spec = StoreSpec("firestore", project=PROJECT, prefix=PREFIXER.create_prefix())
    yield spec
    _delete_collections(spec)


@pytest.fixture
def store(spec: StoreSpec, clock: FakeClock) -> Iterator[Store]:
    """A fresh, empty store on this test's backend, its time read from ``clock``."""
    opened = spec.open(clock=clock)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def forbid_io(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, any attempt of ``store`` to reach its database fails the test."""

    def io(*args: object, **kwargs: object) -> None:
        pytest.fail("the store reached its database")

    # The one door to the database in each backend.
    monkeypatch.setattr(store, "_client" if type(store).__name__ == "FirestoreStore" else "_transaction", io)


def _delete_collections(spec: StoreSpec) -> None:
    from google.api_core.exceptions import NotFound
    from google.cloud import firestore

    client = firestore.Client(project=spec.project)
    try:
        for name in ("claims", "audit", "counters", "applied"):
            try:
                client.recursive_delete(client.collection(f"{spec.prefix}_{name}"))
            except NotFound:
                pass
    finally:
        client.close()
