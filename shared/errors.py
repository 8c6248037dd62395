"""The toolkit's exceptions: one root, named leaves that carry their data as attributes.

Two of them, :class:`RetryableError` and :class:`PermanentError`, are a handler's way to choose
what happens to its message; the ack contract they belong to is the table in
:mod:`shared.runtime.pipeline`.

Messages never include field values: an error about an event may travel to logs, and an event
can carry sensitive data.
"""

from __future__ import annotations


class ToolkitError(Exception):
    """Root of every error this toolkit raises."""


class EventError(ToolkitError):
    """A message could not be turned into a typed event, or an event into a message."""


class UnknownEventTypeError(EventError, LookupError):
    """No model is registered for an event type.

    Attributes:
        event_type: the ``ce-type`` that was looked up (``None`` when the message had none).
    """

    def __init__(self, event_type: str | None, known: list[str] | None = None) -> None:
        self.event_type = event_type
        if event_type is None:
            text = "message has no ce-type attribute, so its event type is unknown"
        else:
            text = f"unknown event type {event_type!r}"
        if known:
            text += f"; registered types: {', '.join(sorted(known))}"
        super().__init__(text)


class EventValidationError(EventError, ValueError):
    """Event data does not fit its model.

    Attributes:
        event_type: the event type whose model rejected the data.
        fields: dotted paths of the offending fields, e.g. ``["changes.email.new"]``.
    """

    def __init__(self, event_type: str, problems: list[tuple[str, str]]) -> None:
        self.event_type = event_type
        self.fields = [path for path, _ in problems]
        # Only the field path and pydantic's sentence: never the value, which may be sensitive.
        detail = "; ".join(f"{path or '<data>'}: {why}" for path, why in problems)
        super().__init__(f"{event_type}: data does not fit the model ({detail})")


class MalformedMessageError(EventError, ValueError):
    """A message is not a CloudEvent this toolkit can read (bad JSON, missing attributes).

    Attributes:
        reason: what was wrong, in one sentence.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TopologyError(ToolkitError, ValueError):
    """A topology declaration is invalid; raised when it is declared, before any I/O."""


class PublishError(ToolkitError):
    """Publishing an event failed.

    Attributes:
        topic: the topic name.
        event_id: the event's ``ce-id``.
        reason: why, in a sentence.
        cause: the client library's exception, when there was one.
    """

    def __init__(self, topic: str, event_id: str, cause: BaseException | str) -> None:
        self.topic = topic
        self.event_id = event_id
        self.cause = None if isinstance(cause, str) else cause
        self.reason = cause if isinstance(cause, str) else str(cause) or type(cause).__name__
        super().__init__(f"publishing event {event_id} to topic {topic!r} failed: {self.reason}")


class ConfigurationError(ToolkitError, RuntimeError):
    """The environment lacks something the toolkit needs (a project id, an emulator host)."""


class HandlerError(ToolkitError):
    """Base of the errors a handler raises to choose what happens to its message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RetryableError(HandlerError):
    """A transient failure: nack, so the message is redelivered after the retry backoff."""


class PermanentError(HandlerError):
    """The message can never succeed: dead-letter it now, with ``reason`` attached."""
