"""The wire format: CloudEvents Pub/Sub binding, binary mode; golden files pin it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared import wire
from shared.errors import (
    EventValidationError,
    MalformedMessageError,
    UnknownEventTypeError,
)
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY

GOLDEN = Path(__file__).parent / "golden"
LIKED_AT = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


def make_event() -> PostLiked:
    return PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=LIKED_AT)


def test_encode_writes_the_binary_mode_attributes() -> None:
    event = make_event()
    envelope = wire.new_envelope(
        event, source="/services/test", event_id="evt-1", time=LIKED_AT,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    data, attributes = wire.encode(event, envelope)
    golden = json.loads((GOLDEN / "post_liked_message.json").read_text())
    assert json.loads(data) == golden["data"]
    assert attributes == golden["attributes"]


def test_decode_round_trips_event_and_envelope() -> None:
    event = make_event()
    envelope = wire.new_envelope(event, source="/s", correlation_id="corr-1")
    decoded, decoded_envelope = wire.decode(*wire.encode(event, envelope), TOPOLOGY.registry)
    assert decoded == event
    assert decoded_envelope == envelope


def test_a_new_chain_is_correlated_by_its_first_event_id() -> None:
    envelope = wire.new_envelope(make_event(), source="/s", event_id="first")
    assert envelope.correlation_id == "first"


@pytest.mark.parametrize(
    ("data", "attributes", "error", "text"),
    [
        (b"{}", {"ce-type": "post.liked.v1", "ce-source": "/s"}, MalformedMessageError, "ce-id"),
        (b"{}", {"ce-id": "1", "ce-source": "/s", "ce-type": "x.y.v1"}, UnknownEventTypeError, "x.y.v1"),
        (b"{nope", {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"}, MalformedMessageError, "not JSON"),
        (b"[1]", {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"}, MalformedMessageError, "JSON object"),
        (b'{"post_id": "p"}', {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"}, EventValidationError, "liker_id"),
        (b"{}", {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1", "ce-specversion": "0.3"}, MalformedMessageError, "specversion"),
        (b"{}", {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1", "ce-time": "yesterday"}, MalformedMessageError, "RFC 3339"),
    ],
)
def test_undecodable_messages_raise_named_errors(data, attributes, error, text) -> None:
    with pytest.raises(error, match=text):
        wire.decode(data, attributes, TOPOLOGY.registry)


def test_a_producer_in_another_language_is_understood() -> None:
    """Attributes and JSON written by hand (as a Go or Node producer would) decode."""
    golden = json.loads((GOLDEN / "post_liked_message.json").read_text())
    attributes = dict(golden["attributes"], **{"ce-time": "2026-01-31T12:00:00Z"})
    event, envelope = wire.decode(json.dumps(golden["data"]).encode(), attributes, TOPOLOGY.registry)
    assert event == make_event()
    assert envelope.trace_id == "0af7651916cd43dd8448eb211c80319c"
