"""Step: an older version of an event becomes the version the handler is written for."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from shared.errors import PermanentError
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next
from shared.upcasting import Upcaster, upcast


class Upcast:
    """Run the topology's upcasters on an event whose type the handler does not take.

    ``post.liked.v1`` reaches a handler of ``PostLikedV2`` as a ``PostLikedV2``; the envelope
    still says what was published. An upcaster that fails is a permanent failure: the message
    is dead-lettered with the reason, and replayed once the upcaster is fixed.
    """

    def __init__(self, accepts: Collection[str], upcasters: Mapping[str, Upcaster]) -> None:
        self.accepts = frozenset(accepts)
        self.upcasters = upcasters

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        event = message.decoded[0]
        if event.event_type in self.accepts:
            return call_next(message)
        try:
            newer = upcast(event, self.accepts, self.upcasters)
        except PermanentError as exc:
            return Result(Outcome.REJECTED, exc.reason)
        return call_next(dataclasses.replace(message, event=newer))
