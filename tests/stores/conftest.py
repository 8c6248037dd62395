"""The backends the store contract runs against: SQLite in a temporary file, and Firestore in the
real emulator.

The Firestore emulator comes from the session fixture ``firestore_emulator`` (tests/conftest.py:
the one named by ``FIRESTORE_EMULATOR_HOST``, else started through emulator.sh). Each
Firestore test gets its own collection prefix, so tests and runs never see each other's
documents, and its collections are deleted afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_utils.prefixer import Prefixer

from shared.stores.base import Store
from tests.stores._support import FakeClock, StoreSpec

PREFIXER = Prefixer("pubsub-kit", "stores", separator="-")
PROJECT = "pubsub-kit-stores"  # one emulator project; the prefixes keep tests apart
BACKENDS = ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]


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
    if type(store).__name__ == "FirestoreStore":
        monkeypatch.setattr(store._client, "get", io)  # type: ignore[attr-defined]
    else:
        monkeypatch.setattr(store, "_connection", io)


def _delete_collections(spec: StoreSpec) -> None:
    from google.api_core.exceptions import NotFound
    from google.cloud import firestore

    client = firestore.Client(project=spec.project)
    try:
        for name in ("claims", "audit", "counters", "applied"):
            with contextlib.suppress(NotFound):
                client.recursive_delete(client.collection(f"{spec.prefix}_{name}"))
    finally:
        client.close()
