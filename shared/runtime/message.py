"""The message as it travels through the pipeline: raw at first, typed once decoded."""

from __future__ import annotations

import dataclasses

from shared.delivery import Delivery, RawMessage
from shared.events import Event
from shared.wire import Envelope


@dataclasses.dataclass(frozen=True)
class Inflight:
    """One message on its way through the steps of one consumer.

    ``event`` and ``envelope`` are set by the decode step; steps after it read them through
    :attr:`decoded`, which fails loudly if a pipeline was composed in the wrong order.
    """

    raw: RawMessage
    consumer: str
    event: Event | None = None
    envelope: Envelope | None = None

    @property
    def decoded(self) -> tuple[Event, Envelope]:
        if self.event is None or self.envelope is None:
            raise RuntimeError("this step must come after the decode step")
        return self.event, self.envelope

    @property
    def delivery(self) -> Delivery:
        return Delivery.of(self.raw, self.decoded[1])

    @property
    def event_key(self) -> str:
        """What identifies the event for this consumer's idempotency: ``<consumer>/<identity>``.

        The identity is the envelope's source and id (:attr:`shared.wire.Envelope.identity`).
        """
        return claim_key(self.consumer, self.decoded[1])


def claim_key(consumer: str, envelope: Envelope) -> str:
    """The idempotency key of ``envelope``'s event for ``consumer`` (to pre-claim in tests, say)."""
    return f"{consumer}/{envelope.identity}"
