"""Step: turn the raw message into a typed event and its envelope."""

from __future__ import annotations

import dataclasses

from shared import wire
from shared.errors import EventError
from shared.events import EventRegistry
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next


class Decode:
    """Decode by the topology's registry; a message that cannot be decoded is rejected.

    Rejected means dead-lettered with the reason (not JSON, not a CloudEvent, unknown type,
    data that does not fit the model): retrying would fail the same way forever.
    """

    def __init__(self, registry: EventRegistry) -> None:
        self.registry = registry

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        try:
            raw = message.raw
            event, envelope = wire.decode(
                raw.data, raw.attributes, self.registry, publish_time=raw.publish_time
            )
        except EventError as exc:  # its message names fields and types, never values
            return Result(Outcome.REJECTED, str(exc))
        except Exception as exc:  # noqa: BLE001 - decoding is deterministic: retrying cannot help
            # A failure the codec did not foresee (a validator that raises, a limit of a library)
            # would fail the same way on every attempt: dead-letter it, naming only its type.
            return Result(Outcome.REJECTED, f"message could not be decoded: {type(exc).__name__}")
        return call_next(dataclasses.replace(message, event=event, envelope=envelope))
