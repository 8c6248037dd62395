"""Pub/Sub calls shared by ``tail`` and ``status``: errors as sentences, and counting a
subscription's messages by peeking at them.

Every call here has a deadline and no retry of its own: a command must answer within seconds
(``require_pubsub`` has already said the emulator or GCP is there; what fails after that is said
as it is, not retried for minutes by the client library).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from shared.errors import ToolkitError

CALL_TIMEOUT = 10.0  # seconds for one administrative call (create, delete, get)
PULL_BATCH = 1000  # the most messages one pull returns
ACK_ID_BATCH = 1000  # ack ids per acknowledge / modify-ack-deadline call


@contextlib.contextmanager
def answered(project: str) -> Iterator[None]:
    """Turn what Pub/Sub answers instead of a result into one sentence (a ToolkitError).

    ``NotFound`` is left to the caller, which knows what was not found.
    """
    from google.api_core import exceptions

    try:
        yield
    except exceptions.NotFound:
        raise
    except exceptions.PermissionDenied as exc:
        raise ToolkitError(
            f"Pub/Sub refused access in project {project!r} ({exc.message}); check --project "
            "and the account gcloud auth application-default login set"
        ) from None
    except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable, exceptions.RetryError):
        raise ToolkitError(
            f"Pub/Sub stopped answering for project {project!r}; is the emulator still "
            "running (./emulator.sh status), or the network up?"
        ) from None
    except exceptions.GoogleAPICallError as exc:
        raise ToolkitError(f"Pub/Sub refused the call: {exc.message}") from None


@dataclasses.dataclass(frozen=True)
class Backlog:
    """How many messages wait in a subscription, and since when.

    ``count`` is ``None`` when it was not measured (``note`` says why); ``more`` says the count
    is a lower bound (a cap was reached).
    """

    count: int | None
    oldest: datetime | None = None  # publish time of the oldest message counted
    more: bool = False
    note: str | None = None

    def age(self, now: datetime) -> float | None:
        """Seconds since the oldest message was published."""
        return None if self.oldest is None else max((now - self.oldest).total_seconds(), 0.0)

    def as_json(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "count": self.count,
            "at_least": self.more,
            "oldest_age_seconds": None if age is None else round(age, 3),
            "note": self.note,
        }


def peek_backlog(
    subscriber: Any, path: str, *, cap: int = 10_000, wait: bool = False, timeout: float = 5.0
) -> Backlog:
    """Count the messages of subscription ``path`` by pulling them without acknowledging.

    Pulled messages are held until the count is done (so no pull returns one twice) and then
    given back at once (ack deadline 0). Each pull is a delivery: on a subscription with a
    dead-letter policy it spends one of the message's attempts, so callers peek only where that
    costs nothing (dead-letter subscriptions) or where the user asked for it.

    Args:
        wait: let the first pull wait for messages (GCP answers an immediate pull with nothing
            more often than not); the emulator answers an immediate pull with what it has.
        cap: stop counting there; the backlog then says ``more``.
    """
    from google.api_core import exceptions

    held: list[str] = []
    oldest: datetime | None = None
    try:
        while len(held) < cap:
            try:
                response = subscriber.pull(
                    request={
                        "subscription": path,
                        "max_messages": min(PULL_BATCH, cap - len(held)),
                        "return_immediately": not (wait and not held),
                    },
                    timeout=timeout,
                    retry=None,
                )
            except exceptions.DeadlineExceeded:
                break
            if not response.received_messages:
                break
            for received in response.received_messages:
                held.append(received.ack_id)
                published = received.message.publish_time
                if oldest is None or published < oldest:
                    oldest = published
    finally:
        give_back(subscriber, path, held)
    return Backlog(len(held), oldest, more=len(held) >= cap)


def give_back(subscriber: Any, path: str, ack_ids: Sequence[str]) -> None:
    """Make held messages available again at once (ack deadline 0)."""
    set_deadline(subscriber, path, ack_ids, 0)


def set_deadline(subscriber: Any, path: str, ack_ids: Sequence[str], seconds: int) -> None:
    """Extend (or, with 0, end) the lease of held messages, in batches Pub/Sub accepts."""
    for start in range(0, len(ack_ids), ACK_ID_BATCH):
        subscriber.modify_ack_deadline(
            request={
                "subscription": path,
                "ack_ids": list(ack_ids[start : start + ACK_ID_BATCH]),
                "ack_deadline_seconds": seconds,
            },
            timeout=CALL_TIMEOUT,
        )


def acknowledge(subscriber: Any, path: str, ack_ids: Sequence[str]) -> None:
    for start in range(0, len(ack_ids), ACK_ID_BATCH):
        subscriber.acknowledge(
            request={"subscription": path, "ack_ids": list(ack_ids[start : start + ACK_ID_BATCH])},
            timeout=CALL_TIMEOUT,
        )
