"""What happened to one message, and so what every runner answers for it."""

from __future__ import annotations

import dataclasses
import enum
import logging
from http import HTTPStatus


class Outcome(enum.Enum):
    """The end of one message's trip through the pipeline.

    Each member carries what the runners need, so none of them maps names: ``ack`` (the pull
    worker acks or nacks), ``http_status`` (the function's answer to a push; Pub/Sub acks 102,
    200, 201, 202 and 204 and retries anything else) and ``severity`` (of the log line).
    """

    ack: bool
    http_status: HTTPStatus
    severity: int

    def __new__(cls, label: str, ack: bool, http_status: HTTPStatus, severity: int) -> Outcome:
        member = object.__new__(cls)
        member._value_ = label
        member.ack = ack
        member.http_status = http_status
        member.severity = severity
        return member

    HANDLED = ("handled", True, HTTPStatus.NO_CONTENT, logging.INFO)
    """The handler returned: ack."""
    DUPLICATE = ("duplicate", True, HTTPStatus.NO_CONTENT, logging.INFO)
    """The event was handled before (idempotency): ack without running the handler."""
    FILTERED = ("filtered", True, HTTPStatus.NO_CONTENT, logging.INFO)
    """The consumer's filter does not want it: ack without running the handler."""
    DEAD_LETTERED = ("dead_lettered", True, HTTPStatus.NO_CONTENT, logging.ERROR)
    """It can never succeed and is now on the dead-letter topic with its reason: ack."""
    BUSY = ("busy", False, HTTPStatus.SERVICE_UNAVAILABLE, logging.INFO)
    """Another instance is handling the same event right now: nack; it comes back later."""
    RETRY = ("retry", False, HTTPStatus.INTERNAL_SERVER_ERROR, logging.WARNING)
    """A transient failure (``RetryableError`` or an unexpected exception): nack, with backoff."""
    REJECTED = ("rejected", False, HTTPStatus.INTERNAL_SERVER_ERROR, logging.ERROR)
    """It can never succeed and must be dead-lettered; the dead-letter step settles it."""
    DEAD_LETTER_FAILED = (
        "dead_letter_failed",
        False,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        logging.ERROR,
    )
    """It should be dead-lettered, but that failed: nack, never ack what went nowhere."""


@dataclasses.dataclass(frozen=True)
class Result:
    """An :class:`Outcome` and, for everything but the plain ones, why."""

    outcome: Outcome
    reason: str | None = None

    @property
    def status(self) -> str:
        """The outcome's name as it appears in logs: ``"handled"``, ``"dead_lettered"``, ..."""
        return self.outcome.value  # type: ignore[no-any-return]

    @property
    def ack(self) -> bool:
        """Whether the message is done with (acknowledge it) or must come back (nack)."""
        return self.outcome.ack
