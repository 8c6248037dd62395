"""Step: turn the raw message into a typed event and its envelope."""

from __future__ import annotations

import dataclasses
import logging

from shared import wire
from shared.errors import EventError
from shared.events import EventRegistry
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.step import Next

log = logging.getLogger("pubsub_kit.consumer")


class Decode:
    """Decode by the topology's registry; a message that cannot be decoded is rejected.

    Rejected means dead-lettered with the reason (not JSON, not a CloudEvent, unknown type,
    data that does not fit the model): retrying would fail the same way forever. Fields the
    model does not declare are not a reason: a tolerant reader sets them aside (a debug line
    counts them; their names and values are not logged).
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
        if event.unknown_fields:
            log.debug(
                f"set aside {len(event.unknown_fields)} field(s) the model of {envelope.type} "
                "does not declare (sent by a newer producer?)",
                extra={"fields": {"unknown_fields": len(event.unknown_fields)}},
            )
        return call_next(dataclasses.replace(message, event=event, envelope=envelope))
