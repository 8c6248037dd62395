"""Read the three shapes in which a Pub/Sub message reaches a function over HTTP.

1. A push subscription's body (GCP, the emulator, and ``pubsub-kit dev``)::

       {"message": {"data", "attributes", "messageId", "publishTime", "orderingKey"},
        "subscription": "projects/P/subscriptions/S", "deliveryAttempt": 2}

2. An Eventarc CloudEvent in binary mode: ``ce-*`` headers, the same body as (1) without
   ``deliveryAttempt``.
3. An Eventarc CloudEvent in structured mode (``application/cloudevents+json``): the body of (1)
   under ``data``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.delivery import RawMessage
from shared.errors import MalformedMessageError

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


def parse_request(headers: Mapping[str, str], body: bytes) -> RawMessage:
    """The Pub/Sub message carried by an HTTP request in any of the three shapes.

    Raises:
        MalformedMessageError: the request carries no Pub/Sub message (answered with 400).
    """
    headers = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        payload = json.loads(body or b"null")
    except (ValueError, RecursionError):  # not UTF-8, not JSON, absurdly nested or long numbers
        raise MalformedMessageError(
            "request body is not JSON; expected a Pub/Sub push body"
        ) from None
    if not isinstance(payload, dict):
        raise MalformedMessageError("request body must be a JSON object with a 'message'")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    source: object = None
    if content_type == "application/cloudevents+json":
        _check_cloudevent_type(payload.get("type"))
        source = payload.get("source")
        payload = payload.get("data")
        if not isinstance(payload, dict):
            raise MalformedMessageError("structured CloudEvent has no object 'data'")
    elif "ce-type" in headers:
        _check_cloudevent_type(headers["ce-type"])
        source = headers.get("ce-source")
    return from_push_body(payload, topic=topic_of(source))


def topic_of(source: object) -> str | None:
    """The topic an Eventarc CloudEvent names in its source.

    ``//pubsub.googleapis.com/projects/P/topics/T`` gives ``T``. Behind an Eventarc trigger the
    push comes from a subscription Eventarc names itself, so the source is what says which of
    the topology's subscriptions (``<T>--<consumer>``) the message belongs to.
    """
    if not isinstance(source, str) or "/topics/" not in source:
        return None
    return source.rsplit("/topics/", 1)[1] or None


def _check_cloudevent_type(event_type: object) -> None:
    if event_type != PUBSUB_EVENT_TYPE:
        raise MalformedMessageError(
            f"CloudEvent type {event_type!r} is not a Pub/Sub message; "
            f"expected {PUBSUB_EVENT_TYPE!r}"
        )


def from_push_body(payload: Mapping[str, Any], topic: str | None = None) -> RawMessage:
    """The message of a push subscription's body; ``topic`` when the transport says it."""
    message = payload.get("message")
    if not isinstance(message, dict):
        raise MalformedMessageError("push body has no 'message' object")
    message_id = message.get("messageId") or message.get("message_id")
    if not message_id:
        raise MalformedMessageError("push message has no messageId")
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):  # TypeError: data is not a string at all
        raise MalformedMessageError("push message data is not base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedMessageError("push message attributes must be an object")
    attempt = payload.get("deliveryAttempt")
    subscription = payload.get("subscription")
    return RawMessage(
        data=data,
        attributes={str(k): str(v) for k, v in attributes.items()},
        message_id=str(message_id),
        publish_time=_time(message.get("publishTime") or message.get("publish_time")),
        ordering_key=message.get("orderingKey") or None,
        attempt=_count(attempt),
        subscription=str(subscription).rsplit("/", 1)[-1] if subscription else None,
        topic=topic,
    )


def _count(value: object) -> int | None:
    """A delivery attempt as Pub/Sub writes it (a number, or its decimal digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def to_push_body(raw: RawMessage, subscription_path: str) -> dict[str, Any]:
    """The body GCP's push would POST for ``raw`` (used by the local runtime and tests)."""
    message: dict[str, Any] = {
        "data": base64.b64encode(raw.data).decode("ascii"),
        "attributes": dict(raw.attributes),
        "messageId": raw.message_id,
        "message_id": raw.message_id,
    }
    if raw.publish_time is not None:
        stamp = raw.publish_time.isoformat().replace("+00:00", "Z")
        message["publishTime"] = message["publish_time"] = stamp
    if raw.ordering_key:
        message["orderingKey"] = raw.ordering_key
    body: dict[str, Any] = {"message": message, "subscription": subscription_path}
    if raw.attempt is not None:
        body["deliveryAttempt"] = raw.attempt
    return body


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # GCP sends up to nanoseconds; datetime takes microseconds. Only the digits right after the
    # point are the fraction: those of the offset that follows are not.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Pub/Sub's times are UTC; a time compared with an aware clock must never be naive.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
