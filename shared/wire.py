"""The wire format, in one place: CloudEvents over Pub/Sub, binary content mode.

Public, because producers and consumers in other languages, tests and tools all need the same
names: the attribute constants below, :class:`Envelope`, :func:`encode` and :func:`decode`.

Message data is the JSON of the event's data; the envelope travels as attributes
(CloudEvents Pub/Sub protocol binding): ``ce-specversion``, ``ce-id``, ``ce-type``,
``ce-source``, ``ce-time``, ``ce-subject`` (when the event has one), ``ce-datacontenttype``,
and the extensions ``ce-correlationid``, ``ce-traceparent`` and ``ce-tracestate``
(the CloudEvents distributed-tracing extension). Any producer in any language that writes these
attributes and JSON data is a valid producer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from shared._random import uuid4
from shared.errors import MalformedMessageError
from shared.events import Event, EventRegistry

SPECVERSION = "1.0"
MAX_IDENTITY_LENGTH = 400  # characters of Envelope.identity; store keys take up to 1000
MAX_DEPTH = 64  # levels of nested objects and arrays in message data; deeper is refused
CONTENT_TYPE = "application/json"

ATTR_PREFIX = "ce-"
ATTR_ID = "ce-id"
ATTR_TYPE = "ce-type"
ATTR_SOURCE = "ce-source"
ATTR_TIME = "ce-time"
ATTR_SUBJECT = "ce-subject"
ATTR_SPECVERSION = "ce-specversion"
ATTR_CONTENT_TYPE = "ce-datacontenttype"
ATTR_CORRELATION = "ce-correlationid"
ATTR_TRACEPARENT = "ce-traceparent"
ATTR_TRACESTATE = "ce-tracestate"

# Set by the toolkit when it dead-letters a message itself; the emulator and GCP add their own
# CloudPubSubDeadLetterSource* attributes when *they* dead-letter after max attempts.
ATTR_DLQ_REASON = "pubsubkit-dlq-reason"
ATTR_DLQ_CONSUMER = "pubsubkit-dlq-consumer"
ATTR_DLQ_SUBSCRIPTION = "pubsubkit-dlq-subscription"
ATTR_DLQ_MESSAGE_ID = "pubsubkit-dlq-message-id"
ATTR_DLQ_ATTEMPT = "pubsubkit-dlq-attempt"


@dataclasses.dataclass(frozen=True)
class Envelope:
    """The CloudEvents context of one event: everything but its data."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None = None
    correlation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    specversion: str = SPECVERSION
    datacontenttype: str = CONTENT_TYPE

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id carried in ``traceparent``, if any."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None

    @property
    def identity(self) -> str:
        """What identifies this event, as CloudEvents says: its ``source`` and ``id`` together.

        Two producers may both number their events from 1; their events are still distinct.
        Both parts are percent-encoded (so ``/`` separates them unambiguously) and the whole is
        a SHA-256 when it would pass :data:`MAX_IDENTITY_LENGTH`, so it always fits a store key.
        """
        text = f"{quote(self.source, safe='')}/{quote(self.id, safe='')}"
        if len(text) <= MAX_IDENTITY_LENGTH:
            return text
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def new_envelope(
    event: Event,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    correlation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> Envelope:
    event_id = event_id or uuid4()
    return Envelope(
        id=event_id,
        type=event.event_type,
        source=source,
        time=time or datetime.now(UTC),
        subject=event.subject,
        # A new chain of events starts its correlation at its first event.
        correlation_id=correlation_id or event_id,
        traceparent=traceparent,
        tracestate=tracestate,
    )


def encode(event: Event, envelope: Envelope) -> tuple[bytes, dict[str, str]]:
    """Serialize ``event`` to message data and attributes."""
    data = event.model_dump_json(by_alias=True).encode("utf-8")
    attributes = {
        ATTR_SPECVERSION: envelope.specversion,
        ATTR_ID: envelope.id,
        ATTR_TYPE: envelope.type,
        ATTR_SOURCE: envelope.source,
        ATTR_TIME: _format_time(envelope.time),
        ATTR_CONTENT_TYPE: envelope.datacontenttype,
    }
    if envelope.subject:
        attributes[ATTR_SUBJECT] = envelope.subject
    if envelope.correlation_id:
        attributes[ATTR_CORRELATION] = envelope.correlation_id
    if envelope.traceparent:
        attributes[ATTR_TRACEPARENT] = envelope.traceparent
    if envelope.tracestate:
        attributes[ATTR_TRACESTATE] = envelope.tracestate
    return data, attributes


def decode_envelope(
    attributes: Mapping[str, str], *, publish_time: datetime | None = None
) -> Envelope:
    """Read the CloudEvents context from message attributes.

    Tolerant of other producers where the spec allows: ``ce-specversion`` ``1`` reads as 1.0,
    ``ce-time`` in any RFC 3339 form. An event without ``ce-time`` is dated by
    ``publish_time`` (when Pub/Sub accepted it), so ``max_event_age`` still holds for it; only
    without either is it dated now.

    Raises:
        MalformedMessageError: a required attribute is missing or unreadable.
    """
    missing = [a for a in (ATTR_ID, ATTR_TYPE, ATTR_SOURCE) if not attributes.get(a)]
    if missing:
        raise MalformedMessageError(
            f"message is not a CloudEvent: missing attribute(s) {', '.join(missing)}"
        )
    specversion = attributes.get(ATTR_SPECVERSION, SPECVERSION)
    if specversion.split(".")[0] != "1" or not specversion.replace(".", "").isdigit():
        raise MalformedMessageError(
            f"unsupported CloudEvents specversion {specversion!r}; expected {SPECVERSION!r}"
        )
    content_type = attributes.get(ATTR_CONTENT_TYPE, CONTENT_TYPE)
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise MalformedMessageError(
            f"unsupported ce-datacontenttype {content_type!r}; expected {CONTENT_TYPE!r}"
        )
    raw_time = attributes.get(ATTR_TIME)
    try:
        time = _parse_time(raw_time) if raw_time else publish_time or datetime.now(UTC)
    except (ValueError, OverflowError):
        raise MalformedMessageError(
            "ce-time is not an RFC 3339 timestamp in years 1-9999 UTC "
            "(expected e.g. 2026-01-31T12:00:00Z)"
        ) from None
    return Envelope(
        id=attributes[ATTR_ID],
        type=attributes[ATTR_TYPE],
        source=attributes[ATTR_SOURCE],
        time=time,
        subject=attributes.get(ATTR_SUBJECT),
        correlation_id=attributes.get(ATTR_CORRELATION),
        traceparent=attributes.get(ATTR_TRACEPARENT),
        tracestate=attributes.get(ATTR_TRACESTATE),
        datacontenttype=content_type,
    )


def decode(
    data: bytes,
    attributes: Mapping[str, str],
    registry: EventRegistry,
    *,
    publish_time: datetime | None = None,
) -> tuple[Event, Envelope]:
    """Turn message data and attributes into a typed event and its envelope.

    ``publish_time`` dates an event that has no ``ce-time`` (see :func:`decode_envelope`).

    Raises:
        MalformedMessageError: not a CloudEvent, or data that is not JSON, not an object, or
            nested deeper than :data:`MAX_DEPTH`.
        UnknownEventTypeError: ``ce-type`` is not in ``registry``.
        EventValidationError: the data does not fit the model (fields it does not declare are
            set aside, not refused: see :meth:`EventRegistry.read`).
    """
    envelope = decode_envelope(attributes, publish_time=publish_time)
    event_type = registry.model_for(envelope.type).event_type  # unknown type before the body
    payload = _json(data, event_type)
    if not isinstance(payload, dict):
        raise MalformedMessageError(
            f"{event_type}: message data must be a JSON object, found {type(payload).__name__}"
        )
    if _depth(payload) > MAX_DEPTH:
        raise MalformedMessageError(
            f"{event_type}: message data is nested deeper than {MAX_DEPTH} levels"
        )
    return registry.read(envelope.type, payload), envelope


def _json(data: bytes, event_type: str) -> object:
    """``data`` parsed, or a reason that says what is wrong with it."""
    try:
        return json.loads(data)
    except ValueError as exc:
        if isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
            raise MalformedMessageError(f"{event_type}: message data is not JSON") from None
        # Python refuses to read integers of more than 4,300 digits (a guard against DoS).
        raise MalformedMessageError(
            f"{event_type}: message data holds a number with more digits than can be read"
        ) from None
    except RecursionError:
        raise MalformedMessageError(
            f"{event_type}: message data is nested deeper than {MAX_DEPTH} levels"
        ) from None


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    # RFC 3339 lets the "T" and "Z" be lower case; fromisoformat takes neither in lower case.
    parsed = datetime.fromisoformat(value.upper())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)  # OverflowError at the ends of the calendar
