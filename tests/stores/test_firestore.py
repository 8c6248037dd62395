"""What only the Firestore store promises: its configuration, its cold start, and the documents
that the deployment's TTL policies and indexes rely on. The shared contract is in
``test_store_contract.py``."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.stores import open_store
from shared.stores.base import DONE_RETENTION, AuditEntry, Store
from shared.stores.firestore import FirestoreStore, _doc_id
from tests.stores._support import START, StoreSpec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_project(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_PROJECT_ID", "GCP_PROJECT"):
        monkeypatch.delenv(variable, raising=False)


def test_without_a_project_the_store_says_how_to_configure_one(no_project: None) -> None:
    with pytest.raises(
        ConfigurationError, match=r"set PUBSUB_PROJECT_ID .* or GOOGLE_CLOUD_PROJECT"
    ):
        FirestoreStore()


def test_project_comes_from_the_argument_then_the_environment(
    no_project: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The precedence of shared.config, the same for the publisher and the logs.
    monkeypatch.setenv("GCP_PROJECT", "from-gcp")
    assert FirestoreStore().project == "from-gcp"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-google")
    assert FirestoreStore().project == "from-google"
    monkeypatch.setenv("PUBSUB_PROJECT_ID", "from-pubsub")
    assert FirestoreStore().project == "from-pubsub"
    assert FirestoreStore(project="given").project == "given"


def test_open_store_names_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    store = open_store("firestore://audit-db")
    assert isinstance(store, FirestoreStore) and store.database == "audit-db"
    assert open_store("firestore").database is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefix", ["", "a/b", "spaces no", "x" * 101])
def test_a_prefix_that_cannot_name_a_collection_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix must be"):
        FirestoreStore(project="p", prefix=prefix)


def test_opening_the_store_does_not_import_the_firestore_client() -> None:
    # Cold starts: a function that never touches its store must not pay for the client library.
    code = (
        "import sys; from shared.stores import open_store; open_store('firestore'); "
        "print('google.cloud.firestore' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "GOOGLE_CLOUD_PROJECT": "p"},
    )  # fmt: skip
    assert run.stdout.strip() == "False"


def test_a_forked_child_opens_its_own_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # clients connect lazily: no I/O
    store = FirestoreStore(project="p")
    parent = store._client.get()
    assert store._client.get() is parent
    monkeypatch.setattr("os.getpid", lambda: -1)  # as seen from a child after fork()
    assert store._client.get() is not parent


def test_a_given_client_is_used_and_left_open() -> None:
    class Client:
        project = "from-client"
        closed = False

        def close(self) -> None:
            self.closed = True

    fake = Client()
    client: Any = fake  # stands in for a google.cloud.firestore.Client
    store = FirestoreStore(client=client)
    assert store.project == "from-client" and store._client.get() is client
    store.close()
    assert not fake.closed


def test_a_subject_too_long_to_query_is_refused_before_any_io(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = FirestoreStore(project="p")
    monkeypatch.setattr(store._client, "get", lambda: pytest.fail("the store reached its database"))
    with pytest.raises(ValueError, match="subject must be at most 1500 bytes"):
        store.query_audit(subject="é" * 751)


@pytest.mark.parametrize(
    "key", ["a/b", "a%2Fb", ".", "..", "__name__", "__x__", "ü" * 1000, "x" * 1000, "#sha256:0"]
)
def test_document_ids_are_valid_and_distinct(key: str) -> None:
    # Firestore's rules for ids: no "/", not "." or "..", not __.*__, at most 1500 bytes.
    encoded = _doc_id(key)
    assert "/" not in encoded and encoded not in {".", ".."}
    assert not (encoded.startswith("__") and encoded.endswith("__"))
    assert 0 < len(encoded.encode()) <= 1500
    others = {"a/b", "a%2Fb", ".", "%2E", "__x__", "%5F_x__", "#sha256:0", "ü" * 999, "x" * 999}
    assert encoded not in {_doc_id(other) for other in others - {key}}
    assert _doc_id("a:b") != _doc_id("a", "b")


# -- the documents, as TTL policies and indexes see them -----------------------------------------


def raw(spec: StoreSpec, collection: str) -> list[dict[str, Any]]:
    from google.cloud import firestore

    client = firestore.Client(project=spec.project)
    try:
        # A streamed snapshot always exists, so to_dict() is never None here.
        return [
            d.to_dict() or {} for d in client.collection(f"{spec.prefix}_{collection}").stream()
        ]
    finally:
        client.close()


@pytest.mark.firestore
@pytest.mark.parametrize("spec", ["firestore"], indirect=True)
def test_done_claims_and_applied_tokens_expire_after_the_retention(
    spec: StoreSpec, store: Store
) -> None:
    store.claim("k", 60)
    [claim] = raw(spec, "claims")
    assert claim["expire_at"] == datetime.fromtimestamp(START + 60, UTC)  # the lease's end
    store.complete("k")
    store.increment("likes", "post/1", "count", once="e1")
    retained = datetime.fromtimestamp(START + DONE_RETENTION, UTC)
    assert [d["expire_at"] for d in raw(spec, "claims") + raw(spec, "applied")] == [retained] * 2


@pytest.mark.firestore
@pytest.mark.parametrize("spec", ["firestore"], indirect=True)
def test_audit_entries_are_documents_with_timestamps_and_a_data_map(
    spec: StoreSpec, store: Store
) -> None:
    time = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    store.record_audit(
        AuditEntry(
            "e1", "t", "s", time, "order/1", "alice", None, {"a": {"b": [1]}}, time + timedelta(1)
        )
    )
    [document] = raw(spec, "audit")
    assert document["time"] == time and isinstance(document["time"], datetime)
    assert document["data"] == {"a": {"b": [1]}}
    assert (document["subject"], document["actor"], document["event_id"]) == (
        "order/1",
        "alice",
        "e1",
    )
