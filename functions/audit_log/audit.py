"""The audit log: who changed what, when; every event, never a sensitive value."""

from __future__ import annotations

from datetime import UTC, datetime

from shared import Delivery, Event
from shared.stores import AuditEntry, Store


def record(store: Store, event: Event, delivery: Delivery) -> bool:
    """Store ``event`` with its actor, subject, type and time, and its *redacted* data.

    Keyed by event id, so a redelivery stores nothing new. Returns whether it was new.
    """
    envelope = delivery.envelope
    return store.record_audit(
        AuditEntry(
            event_id=envelope.id,
            event_type=envelope.type,
            source=envelope.source,
            time=envelope.time,
            subject=event.subject,
            actor=event.actor,
            correlation_id=envelope.correlation_id,
            data=event.redacted(),
            recorded_at=datetime.now(UTC),
        )
    )
