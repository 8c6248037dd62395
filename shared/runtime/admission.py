"""Steps: refuse event types the handler does not take, and events older than allowed."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime

from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next


class AcceptTypes:
    """Reject (dead-letter) an event whose type the handler does not take.

    A topic may carry several types (``post.liked.v1`` and ``.v2``) while a handler takes some.
    """

    def __init__(self, consumer: str, accepts: Collection[str]) -> None:
        self.consumer = consumer
        self.accepts = frozenset(accepts)

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        event_type = message.decoded[0].event_type  # after upcasting, if any
        if event_type not in self.accepts:
            return Result(
                Outcome.REJECTED,
                f"unsupported event type {event_type!r}; {self.consumer} accepts "
                f"{', '.join(sorted(self.accepts))}",
            )
        return call_next(message)


class MaxAge:
    """Reject (dead-letter) an event older than ``max_age`` seconds, by its ``ce-time``.

    Too old is not dropped: the dead letter keeps it for inspection or a deliberate replay.
    """

    def __init__(
        self,
        consumer: str,
        max_age: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.consumer = consumer
        self.max_age = max_age
        self.clock = clock

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        age = (self.clock() - message.decoded[1].time).total_seconds()
        if age > self.max_age:
            return Result(
                Outcome.REJECTED,
                f"event is {age:.0f} s old; {self.consumer} takes events up to "
                f"{self.max_age:.0f} s old (max_event_age)",
            )
        return call_next(message)
