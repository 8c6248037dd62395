"""Step: drop what the consumer's subscription filter does not want."""

from __future__ import annotations

from shared.filters import Predicate
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next


class Filter:
    """Ack, without running anything further, a message the filter rejects.

    GCP never delivers a filtered-out message, but the emulator accepts filters and ignores
    them; applying the filter here makes both behave alike.
    """

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        if not self.predicate(message.raw.attributes):
            return Result(Outcome.FILTERED)
        return call_next(message)
