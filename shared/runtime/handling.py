"""The last step: run the handler and turn how it ended into an outcome (the ack contract)."""

from __future__ import annotations

import logging

from shared.errors import PermanentError, RetryableError
from shared.observability import describe_exception
from shared.runtime.handlers import Handler, takes_delivery
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result

log = logging.getLogger("pubsub_kit.consumer")


class Run:
    """Call ``handler(event)`` or ``handler(event, delivery)``.

    Returning is handled; :class:`PermanentError` is rejected (dead-lettered with its reason);
    :class:`RetryableError` and any other exception are retried.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.wants_delivery = takes_delivery(handler)

    def __call__(self, message: Inflight) -> Result:
        event = message.decoded[0]
        try:
            if self.wants_delivery:
                self.handler(event, message.delivery)
            else:
                self.handler(event)
        except PermanentError as exc:
            return Result(Outcome.REJECTED, f"{type(exc).__name__}: {exc.reason}")
        except RetryableError as exc:
            return Result(Outcome.RETRY, exc.reason)
        except Exception as exc:  # noqa: BLE001 - the contract: unexpected errors are retried
            # No exc_info: a handler that renders tracebacks would print the exception's
            # message, which may quote event data. Type and location only.
            error = describe_exception(exc)
            log.error("handler raised", extra={"fields": {"error": error}})
            return Result(Outcome.RETRY, error["type"])
        return Result(Outcome.HANDLED)
