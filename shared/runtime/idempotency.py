"""Step: run each event at most once per consumer, across instances, by a claim in the store."""

from __future__ import annotations

from collections.abc import Callable

from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next
from shared.stores.base import ClaimState, Store


class Claim:
    """Claim the event before the handler runs; complete the claim only if it was handled.

    ``ClaimState.DONE`` is a duplicate (ack, nothing runs); ``BUSY`` means another instance
    holds a live claim (nack: the message comes back, and by then it is done or the claim has
    expired). Any other answer than handled releases the claim, so a retry, or a replay of a
    dead letter after a fix, can take it at once.

    Args:
        store: called on the first message, so a consumer opens its store only when needed.
        lease: seconds a claim holds before another instance may take it over; longer than the
            handler may run, so a live handler is never taken over.
    """

    def __init__(self, store: Callable[[], Store], lease: float) -> None:
        self.store = store
        self.lease = lease

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        store = self.store()
        key = message.event_key
        state = store.claim(key, self.lease)
        if state is ClaimState.DONE:
            return Result(Outcome.DUPLICATE)
        if state is ClaimState.BUSY:
            return Result(Outcome.BUSY, "another instance is handling this event")
        try:
            result = call_next(message)
        except BaseException:
            store.release(key)  # a step that raised must not hold the event until the lease ends
            raise
        if result.outcome is Outcome.HANDLED:
            store.complete(key)
        else:
            store.release(key)
        return result
