"""The store interface: idempotency claims, the audit log, and idempotent counters.

Functions are stateless and run as many instances, so anything that must survive a message or be
seen by every instance lives in a store: :class:`~shared.stores.sqlite.SqliteStore` locally and in
tests, :class:`~shared.stores.firestore.FirestoreStore` on GCP. Both pass the same contract suite
(``tests/stores/``).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from datetime import datetime
from typing import Any

DONE_RETENTION = 8 * 24 * 3600  # seconds; longer than Pub/Sub keeps a message (7 days)


class ClaimState(enum.Enum):
    """The answer to :meth:`Store.claim`."""

    ACQUIRED = "acquired"
    """The caller owns the work until it completes, releases, or the lease runs out."""
    DONE = "done"
    """The work was completed before: a duplicate delivery; acknowledge it and do nothing."""
    BUSY = "busy"
    """Another instance holds a live lease right now; retry later (its lease may expire)."""


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One event in the audit log. ``data`` is the event's *redacted* data, never the raw one."""

    event_id: str
    event_type: str
    source: str
    time: datetime
    subject: str | None
    actor: str | None
    correlation_id: str | None
    data: dict[str, Any]
    recorded_at: datetime


class Store(abc.ABC):
    """State shared by every instance of a consumer."""

    # -- idempotency -----------------------------------------------------------------------
    @abc.abstractmethod
    def claim(self, key: str, lease: float) -> ClaimState:
        """Try to take the work named ``key`` for ``lease`` seconds.

        A claim whose holder died is taken over once its lease has run out, so a crash between
        starting and finishing the work delays a retry; it never blocks it forever.
        """

    @abc.abstractmethod
    def complete(self, key: str) -> None:
        """Mark ``key`` done: later claims answer :attr:`ClaimState.DONE`."""

    @abc.abstractmethod
    def release(self, key: str) -> None:
        """Give up a claim without completing it, so a retry can take it at once."""

    # -- audit log ------------------------------------------------------------------------
    @abc.abstractmethod
    def record_audit(self, entry: AuditEntry) -> bool:
        """Store ``entry`` once per event (its source and id); ``False`` if it was already there.

        Two producers may reuse an id: their events are two entries.
        """

    @abc.abstractmethod
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
        """Entries matching every given criterion, oldest event first (events of one instant
        by event id), or newest first with ``newest_first``; ``limit`` keeps the first ones in
        that order, so ``newest_first=True, limit=20`` is the latest 20.

        ``since`` is inclusive and ``until`` exclusive, both on the event's time;
        ``event_type`` is a versioned type, e.g. ``"user.updated.v1"``.
        """

    # -- idempotent effects ---------------------------------------------------------------
    @abc.abstractmethod
    def increment(
        self, collection: str, key: str, field: str, amount: int = 1, *, once: str
    ) -> bool:
        """Add ``amount`` to a counter, at most once per ``once`` token, atomically.

        Pass the event id (scoped by consumer) as ``once``: a redelivered event, even one whose
        first attempt died after the write, does not count twice. Returns ``False`` when the
        token was already applied.
        """

    @abc.abstractmethod
    def counters(self, collection: str, key: str) -> dict[str, int]:
        """Every counter of ``key`` in ``collection`` (empty when none)."""

    def close(self) -> None:  # noqa: B027 - a store without connections has nothing to close
        """Release connections. The store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_key(kind: str, value: str) -> str:
    """Refuse empty or oversized keys before any I/O."""
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise ValueError(f"{kind} must be a non-empty string of at most 1000 characters")
    return value
