"""The GCP store: Firestore (native mode), shared by every instance of every function.

A function instance's disk is gone with the instance, so on GCP the claims, the audit log and
the counters live in four collections named after ``prefix`` (default ``pubsubkit``):

- ``{prefix}_claims``: one document per claim key (``state``, ``expire_at``);
- ``{prefix}_audit``: one document per event id (``time`` and ``recorded_at`` as timestamps,
  ``data`` as a map);
- ``{prefix}_counters``: one document per ``(collection, key)``, its counters in the ``counts`` map;
- ``{prefix}_applied``: one document per applied ``once`` token.

Every check-then-write runs in a Firestore transaction, so two instances racing for one claim
cannot both win and a counter moves at most once per token. Writes whose only check is "does
this document exist yet" (recording an audit entry) use a create precondition instead, which
the server enforces atomically in one round trip.

Document ids are the keys percent-encoded (``urllib.parse.quote(key, safe="")``), so ``/`` and
unicode are safe and ids stay readable; ids that would be longer than Firestore allows are a
SHA-256 digest instead (the key itself is kept in a field).

**Retention.** Claims and applied tokens carry an ``expire_at`` timestamp: the lease's end for
a live claim, and :data:`~shared.stores.base.DONE_RETENTION` after completion (or application)
for done claims and applied tokens. Nothing deletes them by itself: enable a TTL policy on
``expire_at`` for the ``{prefix}_claims`` and ``{prefix}_applied`` collection groups
(``gcloud firestore fields ttls update expire_at --collection-group=pubsubkit_claims
--enable-ttl``, likewise for ``pubsubkit_applied``). Deleting an expired document changes no
answer: an expired lease is taken over anyway, and a redelivery after the retention window
cannot happen because Pub/Sub keeps a message at most 7 days.

**Indexes.** :meth:`FirestoreStore.query_audit` orders by ``time`` then ``event_id``, which
needs composite indexes on ``{prefix}_audit`` in real Firestore (the emulator needs none):

- ``time`` ASC, ``event_id`` ASC (time range only, or no filter);
- ``subject`` ASC, ``time`` ASC, ``event_id`` ASC;
- ``actor`` ASC, ``time`` ASC, ``event_id`` ASC;
- ``subject`` ASC, ``actor`` ASC, ``time`` ASC, ``event_id`` ASC (both filters).

A query that lacks its index fails with ``FailedPrecondition`` and a link that creates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.errors import ConfigurationError
from shared.stores.base import DONE_RETENTION, AuditEntry, ClaimState, Store, check_key

if TYPE_CHECKING:
    from google.cloud.firestore import Client, Transaction

_MAX_ID_BYTES = 1500  # Firestore's limit on a document id
_MAX_ATTEMPTS = 20  # per transaction; contention aborts are retried, keeping their place in line
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_RESERVED_ID = re.compile(r"__.*__|\.{1,2}", re.DOTALL)
_INT64 = range(-(2**63), 2**63)


class FirestoreStore(Store):
    """A :class:`Store` in Firestore.

    Args:
        database: the Firestore database id; ``None`` for ``(default)``.
        project: the GCP project; else ``GOOGLE_CLOUD_PROJECT``, else ``PUBSUB_PROJECT_ID``.
        prefix: the collections' name prefix, so several deployments (or test runs) can share
            a database without seeing each other's state.
        client: a ready ``google.cloud.firestore.Client`` (tests, custom credentials); by default
            one is created on first use, and again in a forked child process.
        clock: seconds since the epoch; injectable so lease expiry can be tested exactly.

    Raises:
        ConfigurationError: no project was given and none is set in the environment.
        ValueError: ``prefix`` is not a valid collection-name prefix.

    Example::

        store = FirestoreStore(project="my-project")
        if store.claim(f"billing:{event.id}", lease=60) is ClaimState.ACQUIRED:
            ...
    """

    def __init__(
        self,
        *,
        database: str | None = None,
        project: str | None = None,
        prefix: str = "pubsubkit",
        client: Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError(
                "prefix must be 1 to 100 letters, digits, '_', '.' or '-' "
                f"(it starts Firestore collection names), got {prefix!r}"
            )
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("PUBSUB_PROJECT_ID")
        if not project and client is None:
            raise ConfigurationError(
                "FirestoreStore needs a GCP project: pass project=..., or set GOOGLE_CLOUD_PROJECT "
                "(or PUBSUB_PROJECT_ID) in the environment"
            )
        self.project = project or client.project  # type: ignore[union-attr]
        self.database = database
        self.prefix = prefix
        self._clock = clock
        self._client_obj = client
        self._client_pid = os.getpid() if client is not None else None
        self._own_client = client is None
        self._lock = threading.Lock()

    def _client(self) -> Client:
        # A gRPC channel does not survive fork(): a child process opens its own client.
        if self._client_obj is None or (self._own_client and self._client_pid != os.getpid()):
            with self._lock:
                if self._client_obj is None or (self._own_client and self._client_pid != os.getpid()):
                    from google.cloud import firestore  # deferred: cold starts that never need it skip it

                    self._client_obj = firestore.Client(project=self.project, database=self.database)
                    self._client_pid = os.getpid()
                    self._own_client = True
        return self._client_obj

    def _doc(self, collection: str, *parts: str) -> Any:
        return self._client().collection(f"{self.prefix}_{collection}").document(_doc_id(*parts))

    def _transaction(self, body: Callable[..., Any], *args: Any) -> Any:
        from google.cloud import firestore

        # One decorator per call: a ``_Transactional`` keeps the transaction id it retries with
        # on itself, so sharing one between threads would mix up their transactions.
        run = firestore.transactional(body)
        return run(self._client().transaction(max_attempts=_MAX_ATTEMPTS), *args)

    # -- idempotency -----------------------------------------------------------------------
    def claim(self, key: str, lease: float) -> ClaimState:
        check_key("claim key", key)
        ref = self._doc("claims", key)
        now = self._clock()

        def body(transaction: Transaction) -> ClaimState:
            snapshot = ref.get(transaction=transaction)
            if snapshot.exists:
                state, expire_at = snapshot.get("state"), _from_timestamp(snapshot.get("expire_at"))
                if expire_at > _at(now):
                    return ClaimState.DONE if state == "done" else ClaimState.BUSY
            transaction.set(ref, {"key": key, "state": "claimed", "expire_at": _at(now + lease)})
            return ClaimState.ACQUIRED

        return self._transaction(body)  # type: ignore[no-any-return]

    def complete(self, key: str) -> None:
        check_key("claim key", key)
        # A blind write, like SQLite's INSERT OR REPLACE: completing is right whoever holds it.
        done = {"key": key, "state": "done", "expire_at": _at(self._clock() + DONE_RETENTION)}
        self._doc("claims", key).set(done)

    def release(self, key: str) -> None:
        check_key("claim key", key)
        ref = self._doc("claims", key)

        def body(transaction: Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            if snapshot.exists and snapshot.get("state") == "claimed":
                transaction.delete(ref)

        self._transaction(body)

    # -- audit log ------------------------------------------------------------------------
    def record_audit(self, entry: AuditEntry) -> bool:
        check_key("event id", entry.event_id)
        from google.api_core.exceptions import AlreadyExists

        document: dict[str, Any] = {
            "event_id": entry.event_id,
            "event_type": entry.event_type,
            "source": entry.source,
            "time": _utc(entry.time),
            "subject": entry.subject,
            "actor": entry.actor,
            "correlation_id": entry.correlation_id,
            "recorded_at": _utc(entry.recorded_at),
        }
        if _fits_a_map(entry.data):
            document["data"] = entry.data
        else:
            # Arrays of arrays, ``__reserved__`` keys or integers beyond 64 bits have no
            # Firestore form; such data is kept as its JSON text instead.
            document["data_json"] = json.dumps(entry.data, sort_keys=True)
        try:
            self._doc("audit", entry.event_id).create(document)
        except AlreadyExists:
            return False
        return True

    def query_audit(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        if limit == 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = self._client().collection(f"{self.prefix}_audit")
        for field, op, value in (
            ("subject", "==", subject),
            ("actor", "==", actor),
            ("time", ">=", None if since is None else _utc(since)),
            ("time", "<", None if until is None else _utc(until)),
        ):
            if value is not None:
                query = query.where(filter=FieldFilter(field, op, value))
        query = query.order_by("time").order_by("event_id").limit(limit)
        return [_entry(snapshot.to_dict()) for snapshot in query.stream()]

    # -- idempotent effects ---------------------------------------------------------------
    def increment(self, collection: str, key: str, field: str, amount: int = 1, *, once: str) -> bool:
        check_key("once token", once)
        check_key("counter collection", collection)
        check_key("counter key", key)
        check_key("counter field", field)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError(f"amount must be an integer, got {type(amount).__name__}")
        from google.cloud import firestore

        applied = self._doc("applied", collection, once)
        counter = self._doc("counters", collection, key)
        now = self._clock()

        def body(transaction: Transaction) -> bool:
            if applied.get(transaction=transaction).exists:
                return False
            transaction.create(
                applied,
                {"collection": collection, "token": once, "expire_at": _at(now + DONE_RETENTION)},
            )
            # A server-side increment: other tokens may add to this counter concurrently
            # without contending for it; the token document alone decides "once".
            transaction.set(
                counter,
                {"collection": collection, "key": key, "counts": {field: firestore.Increment(amount)}},
                merge=True,
            )
            return True

        return self._transaction(body)  # type: ignore[no-any-return]

    def counters(self, collection: str, key: str) -> dict[str, int]:
        check_key("counter collection", collection)
        check_key("counter key", key)
        snapshot = self._doc("counters", collection, key).get()
        counts = (snapshot.to_dict() or {}).get("counts") or {}
        return dict(sorted(counts.items()))

    def close(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        if client is not None and self._own_client:
            client.close()


def _doc_id(*parts: str) -> str:
    """A valid, unambiguous document id for ``parts``: readable when short, hashed when not."""
    # quote(safe="") leaves only [A-Za-z0-9_.~-] unescaped, so ":" cannot occur inside a part.
    encoded = ":".join(quote(part, safe="") for part in parts)
    if _RESERVED_ID.fullmatch(encoded):
        # ".", ".." and "__x__" are reserved ids: escape the first character (still unquotable).
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if len(encoded) > _MAX_ID_BYTES:  # ASCII after quoting: characters are bytes
        # "#" is always escaped by quote(), so a digest id never equals a readable one.
        encoded = "#sha256:" + hashlib.sha256(encoded.encode()).hexdigest()
    return encoded


def _fits_a_map(value: Any, *, in_array: bool = False) -> bool:
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and k and not _RESERVED_ID.fullmatch(k) and _fits_a_map(v)
            for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return not in_array and all(_fits_a_map(v, in_array=True) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value in _INT64
    return True


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _utc(value: datetime) -> datetime:
    # Naive datetimes are UTC, as in the SQLite store.
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _from_timestamp(value: datetime) -> datetime:
    # Firestore answers with DatetimeWithNanoseconds; hand back the plain datetime that was
    # stored (microseconds are all a datetime holds, and all that was written).
    value = value.astimezone(timezone.utc)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, tzinfo=timezone.utc,
    )  # fmt: skip


def _entry(document: dict[str, Any]) -> AuditEntry:
    if "data_json" in document:
        data = json.loads(document["data_json"])
    else:
        data = document.get("data") or {}
    return AuditEntry(
        event_id=document["event_id"],
        event_type=document["event_type"],
        source=document["source"],
        time=_from_timestamp(document["time"]),
        subject=document.get("subject"),
        actor=document.get("actor"),
        correlation_id=document.get("correlation_id"),
        data=data,
        recorded_at=_from_timestamp(document["recorded_at"]),
    )
