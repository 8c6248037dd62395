"""The GCP store: Firestore (native mode), shared by every instance of every function.

A function instance's disk is gone with the instance, so on GCP the claims, the audit log and
the counters live in four collections named after ``prefix`` (default ``pubsubkit``):

- ``{prefix}_claims``: one document per claim key (``state``, ``expire_at``);
- ``{prefix}_audit``: one document per event id (``time`` and ``recorded_at`` as timestamps,
  ``data`` as a map);
- ``{prefix}_counters``: one document per ``(collection, key)``, its counters in the ``counts``
  map (keyed like document ids; ``fields`` maps those keys back to the counters' names);
- ``{prefix}_applied``: one document per applied ``once`` token.

Every check-then-write is a conditional write that Firestore checks and applies atomically, so
two instances racing for one claim cannot both win and a counter moves at most once per token:

- a first claim, an audit entry and an applied token are *created* (precondition: the document
  does not exist yet); the token's create and the counter's increment are one atomic commit;
- taking over an expired claim, or releasing one, writes only if the claim's update time is
  still the one just read (compare-and-set); the loser re-reads and answers from what it finds.

This is the guarantee of a read-write transaction, with fewer round trips and no locks held
between them. Transactions were tried first: the client retries an aborted commit at once,
without backoff, and an aborted read not at all; and the emulator holds contended locks until a
2 s timeout, so ten instances taking over one expired claim kept timing out there
(``ABORTED: Transaction lock timeout``).

Document ids are the keys percent-encoded (``urllib.parse.quote(key, safe="")``), so ``/`` and
unicode are safe and ids stay readable; ids that would be longer than Firestore allows are a
SHA-256 digest instead (the key itself is kept in a field).

**Retention.** Claims and applied tokens carry an ``expire_at`` timestamp: the lease's end for
a live claim, and :data:`~shared.stores.base.DONE_RETENTION` after completion (or application)
for done claims and applied tokens. Nothing deletes them by itself: a TTL policy on
``expire_at`` does (``infra/`` creates it) for the ``{prefix}_claims`` and
``{prefix}_applied`` collection groups (``gcloud firestore fields ttls update expire_at
--collection-group=pubsubkit_claims --enable-ttl``, likewise for ``pubsubkit_applied``).
Deleting an expired document changes no answer: an expired lease is taken over anyway, and a
redelivery after the retention window cannot happen because Pub/Sub keeps a message at most
7 days.

**Indexes.** :meth:`FirestoreStore.query_audit` orders by ``time`` then ``event_id``, which
needs composite indexes on ``{prefix}_audit`` in real Firestore (the emulator needs none):

- ``time`` ASC, ``event_id`` ASC (time range only, or no filter);
- ``subject`` ASC, ``time`` ASC, ``event_id`` ASC;
- ``actor`` ASC, ``time`` ASC, ``event_id`` ASC;
- ``event_type`` ASC, ``time`` ASC, ``event_id`` ASC;
- ``subject`` ASC, ``actor`` ASC, ``time`` ASC, ``event_id`` ASC (both filters);
- and, for ``newest_first`` (what ``pubsub-kit audit`` asks), the same with ``time`` and
  ``event_id`` DESC.

Firestore merges the single-equality indexes for a query with several equality filters
(subject and type, say), so these cover every combination.

A query that lacks its index fails with ``FailedPrecondition`` and a link that creates it.
Firestore compares at most 1500 bytes of an indexed string, so ``subject`` and ``actor`` longer
than that (in UTF-8) are stored but cannot be queried by: ``query_audit`` refuses them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared import config
from shared._clients import Lazy
from shared.stores.base import DONE_RETENTION, AuditEntry, ClaimState, Store, check_key

if TYPE_CHECKING:
    from google.cloud.firestore import Client

_MAX_ID_BYTES = 1500  # Firestore's limit on a document id
_MAX_COUNTER_BYTES = 1024  # for a counter's key in the counts map; a field path has 1500 bytes
_MAX_INDEXED_BYTES = 1500  # Firestore's limit on a string an equality filter can compare
_ATTEMPTS = 8  # per operation whose write aborts or loses a race, counting the first
_FIRST_BACKOFF = 0.05  # 50 ms at most before the second attempt, doubling each time
_MAX_BACKOFF = 2.0  # 2 s
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
        # An explicit project, else a given client's, else the environment's.
        self.project: str = (
            project or (client.project if client is not None else None) or (config.project_id())
        )
        self.database = database
        self.prefix = prefix
        self._clock = clock
        # A client passed in belongs to the caller, who closes it; one made here is ours.
        self._client: Lazy[Client] = (
            Lazy(lambda: client) if client is not None else Lazy(self._make_client, _close)
        )

    def _make_client(self) -> Client:
        from google.cloud import firestore  # deferred: cold starts that never need it skip it

        return firestore.Client(project=self.project, database=self.database)

    def _doc(self, collection: str, *parts: str) -> Any:
        return (
            self._client.get().collection(f"{self.prefix}_{collection}").document(_doc_id(*parts))
        )

    # -- idempotency -----------------------------------------------------------------------
    def claim(self, key: str, lease: float) -> ClaimState:
        check_key("claim key", key)
        from google.api_core.exceptions import AlreadyExists

        ref = self._doc("claims", key)
        now = self._clock()
        claimed = {"key": key, "state": "claimed", "expire_at": _at(now + lease)}

        def attempt() -> ClaimState:
            try:
                ref.create(claimed)  # the common case: nobody has claimed the key yet
                return ClaimState.ACQUIRED
            except AlreadyExists:
                pass
            snapshot = ref.get()
            if not snapshot.exists:
                raise _Changed(f"claim {key!r} was released meanwhile")
            if _from_timestamp(snapshot.get("expire_at")) > _at(now):
                return ClaimState.DONE if snapshot.get("state") == "done" else ClaimState.BUSY
            # The lease ran out (or the completion's retention did): take it over, unless
            # someone else wrote the claim since it was read.
            self._compare_and_set(ref, snapshot, lambda option: ref.update(claimed, option=option))
            return ClaimState.ACQUIRED

        return _retry(attempt)  # type: ignore[no-any-return]

    def complete(self, key: str) -> None:
        check_key("claim key", key)
        # A blind write, like SQLite's INSERT OR REPLACE: completing is right whoever holds it.
        done = {"key": key, "state": "done", "expire_at": _at(self._clock() + DONE_RETENTION)}
        ref = self._doc("claims", key)
        _retry(lambda: ref.set(done))

    def release(self, key: str) -> None:
        check_key("claim key", key)
        ref = self._doc("claims", key)

        def attempt() -> None:
            snapshot = ref.get()
            if snapshot.exists and snapshot.get("state") == "claimed":  # never undo a completion
                self._compare_and_set(ref, snapshot, lambda option: ref.delete(option=option))

        _retry(attempt)

    def _compare_and_set(self, ref: Any, snapshot: Any, write: Callable[[Any], object]) -> None:
        """``write(option)`` if ``ref`` is unchanged since ``snapshot``; else :class:`_Changed`."""
        from google.api_core.exceptions import FailedPrecondition, NotFound

        try:
            write(self._client.get().write_option(last_update_time=snapshot.update_time))
        except (FailedPrecondition, NotFound) as exc:
            raise _Changed(f"{ref.id!r} changed since it was read") from exc

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
            # Keyed by source and id, as CloudEvents identifies an event.
            self._doc("audit", entry.source, entry.event_id).create(document)
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
        event_type: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        for name, value in (("subject", subject), ("actor", actor)):
            if value is not None and len(value.encode()) > _MAX_INDEXED_BYTES:
                raise ValueError(
                    f"{name} must be at most {_MAX_INDEXED_BYTES} bytes in UTF-8 to be queried in "
                    f"Firestore, got {len(value.encode())} bytes"
                )
        if limit == 0:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = self._client.get().collection(f"{self.prefix}_audit")
        criteria: tuple[tuple[str, str, object], ...] = (
            ("subject", "==", subject),
            ("actor", "==", actor),
            ("event_type", "==", event_type),
            ("time", ">=", None if since is None else _utc(since)),
            ("time", "<", None if until is None else _utc(until)),
        )
        for field, op, bound in criteria:
            if bound is not None:
                query = query.where(filter=FieldFilter(field, op, bound))
        direction = "DESCENDING" if newest_first else "ASCENDING"
        query = query.order_by("time", direction=direction)
        query = query.order_by("event_id", direction=direction).limit(limit)
        return [_entry(snapshot.to_dict()) for snapshot in query.stream()]

    # -- idempotent effects ---------------------------------------------------------------
    def increment(
        self, collection: str, key: str, field: str, amount: int = 1, *, once: str
    ) -> bool:
        check_key("once token", once)
        check_key("counter collection", collection)
        check_key("counter key", key)
        check_key("counter field", field)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError(f"amount must be an integer, got {type(amount).__name__}")
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import firestore

        applied = self._doc("applied", collection, once)
        # Counter names are map keys, which Firestore restricts as it does document ids.
        slot = _doc_id(field, max_bytes=_MAX_COUNTER_BYTES)
        counter = self._doc("counters", collection, key)
        token = {
            "collection": collection,
            "token": once,
            "expire_at": _at(self._clock() + DONE_RETENTION),
        }

        def attempt() -> None:
            # One atomic commit: the token's create precondition is the check, and when it
            # fails nothing is written, so the counter moves exactly when the token is new.
            # The increment is a server-side transform, so tokens adding to one counter at
            # once do not contend for it.
            batch = self._client.get().batch()
            batch.create(applied, token)
            batch.set(
                counter,
                {
                    "collection": collection,
                    "key": key,
                    "counts": {slot: firestore.Increment(amount)},
                    "fields": {slot: field},
                },
                merge=True,
            )
            batch.commit()

        try:
            _retry(attempt)
        except AlreadyExists:
            return False
        return True

    def counters(self, collection: str, key: str) -> dict[str, int]:
        check_key("counter collection", collection)
        check_key("counter key", key)
        snapshot = self._doc("counters", collection, key).get()
        document = snapshot.to_dict() or {}
        counts, fields = document.get("counts") or {}, document.get("fields") or {}
        return dict(sorted((fields[slot], value) for slot, value in counts.items()))

    def close(self) -> None:
        self._client.close()


def _close(client: Client) -> None:
    client.close()


class _Changed(Exception):
    """A compare-and-set lost: the document changed between the read and the write."""


def _retry(attempt: Callable[[], Any]) -> Any:
    """Call ``attempt`` again while it aborts or loses a race, with jittered, doubling waits.

    Raises:
        google.api_core.exceptions.Aborted: still contended after ``_ATTEMPTS`` attempts.
    """
    from google.api_core.exceptions import Aborted

    # Firestore may abort a write that contends for a document; nothing was written then. A
    # lost compare-and-set wrote nothing either, and the next attempt reads what won.
    delay = _FIRST_BACKOFF
    for number in range(1, _ATTEMPTS + 1):
        try:
            return attempt()
        except (Aborted, _Changed) as exc:
            if number == _ATTEMPTS:
                raise Aborted(f"gave up after {_ATTEMPTS} attempts: {exc}") from exc
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, _MAX_BACKOFF)
    raise AssertionError("unreachable")  # pragma: no cover


def _doc_id(*parts: str, max_bytes: int = _MAX_ID_BYTES) -> str:
    """A valid, unambiguous document id (or map key) for ``parts``: readable, or hashed if long."""
    # quote(safe="") leaves only [A-Za-z0-9_.~-] unescaped, so ":" cannot occur inside a part.
    encoded = ":".join(quote(part, safe="") for part in parts)
    if _RESERVED_ID.fullmatch(encoded):
        # ".", ".." and "__x__" are reserved ids: escape the first character (still unquotable).
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if len(encoded) > max_bytes:  # ASCII after quoting: characters are bytes
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
    return datetime.fromtimestamp(seconds, tz=UTC)


def _utc(value: datetime) -> datetime:
    # Naive datetimes are UTC, as in the SQLite store.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_timestamp(value: datetime) -> datetime:
    # Firestore answers with DatetimeWithNanoseconds; hand back the plain datetime that was
    # stored (microseconds are all a datetime holds, and all that was written).
    value = value.astimezone(UTC)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, tzinfo=UTC,
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
