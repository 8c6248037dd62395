"""The wire format: CloudEvents Pub/Sub binding, binary mode; golden files pin it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from shared import Event, EventRegistry, wire
from shared.errors import (
    EventValidationError,
    MalformedMessageError,
    UnknownEventTypeError,
)
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY

GOLDEN = Path(__file__).parent / "golden"
LIKED_AT = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def make_event() -> PostLiked:
    return PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=LIKED_AT)


def test_encode_writes_the_binary_mode_attributes() -> None:
    event = make_event()
    envelope = wire.new_envelope(
        event,
        source="/services/test",
        event_id="evt-1",
        time=LIKED_AT,
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
        (
            b"{}",
            {"ce-id": "1", "ce-source": "/s", "ce-type": "x.y.v1"},
            UnknownEventTypeError,
            "x.y.v1",
        ),
        (
            b"{nope",
            {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"},
            MalformedMessageError,
            "not JSON",
        ),
        (
            b"[1]",
            {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"},
            MalformedMessageError,
            "JSON object",
        ),
        (
            b'{"post_id": "p"}',
            {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"},
            EventValidationError,
            "liker_id",
        ),
        (
            b"{}",
            {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1", "ce-specversion": "0.3"},
            MalformedMessageError,
            "specversion",
        ),
        (
            b"{}",
            {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1", "ce-time": "yesterday"},
            MalformedMessageError,
            "RFC 3339",
        ),
    ],
)
def test_undecodable_messages_raise_named_errors(data, attributes, error, text) -> None:
    with pytest.raises(error, match=text):
        wire.decode(data, attributes, TOPOLOGY.registry)


def test_a_producer_in_another_language_is_understood() -> None:
    """Attributes and JSON written by hand (as a Go or Node producer would) decode."""
    golden = json.loads((GOLDEN / "post_liked_message.json").read_text())
    attributes = dict(golden["attributes"], **{"ce-time": "2026-01-31T12:00:00Z"})
    event, envelope = wire.decode(
        json.dumps(golden["data"]).encode(), attributes, TOPOLOGY.registry
    )
    assert event == make_event()
    assert envelope.trace_id == "0af7651916cd43dd8448eb211c80319c"


# -- time: always UTC on the wire, whatever the producer or the machine uses --------------------

LIKED = {"ce-id": "1", "ce-source": "/s", "ce-type": "post.liked.v1"}
LIKED_DATA = json.dumps(
    {"post_id": "p1", "liker_id": "u1", "author_id": "u2", "liked_at": "2026-01-31T12:00:00Z"}
).encode()


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine whose local time is five hours behind UTC, as a developer's laptop may be."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("machine_in_new_york")
@pytest.mark.parametrize(
    "when",
    [
        LIKED_AT,
        datetime(2026, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 1, 31, 12, 0),  # no zone: taken as UTC, never as the machine's time
    ],
)
def test_ce_time_is_written_in_utc_whatever_zone_it_was_given_in(when) -> None:
    envelope = wire.new_envelope(make_event(), source="/s", time=when)
    _, attributes = wire.encode(make_event(), envelope)
    assert attributes["ce-time"] == "2026-01-31T12:00:00.000000Z"


@pytest.mark.parametrize(
    "ce_time",
    [
        "2026-01-31T12:00:00Z",
        "2026-01-31T14:00:00+02:00",  # an offset keeps the instant
        "2026-01-31T12:00:00",  # no zone: UTC
        "2026-01-31T12:00:00.000000999Z",  # nanoseconds, as Go's RFC3339Nano writes
        "2026-01-31t12:00:00z",  # RFC 3339 allows lower case
    ],
)
def test_ce_time_is_read_as_an_instant_in_any_rfc_3339_form(ce_time) -> None:
    _, envelope = wire.decode(LIKED_DATA, {**LIKED, "ce-time": ce_time}, TOPOLOGY.registry)
    assert envelope.time == LIKED_AT
    assert envelope.time.utcoffset() is not None


@pytest.mark.usefixtures("machine_in_new_york")
def test_ce_time_is_read_in_utc_whatever_zone_the_machine_is_in() -> None:
    """A handler that takes the event's date or hour gets the same answer on every machine."""
    attributes = {**LIKED, "ce-time": "2026-01-31T14:00:00+02:00"}
    _, envelope = wire.decode(LIKED_DATA, attributes, TOPOLOGY.registry)
    assert envelope.time.isoformat() == "2026-01-31T12:00:00+00:00"


def test_a_message_without_ce_time_is_stamped_with_its_arrival_in_utc() -> None:
    before = datetime.now(UTC)
    _, envelope = wire.decode(LIKED_DATA, LIKED, TOPOLOGY.registry)
    assert before <= envelope.time <= datetime.now(UTC)


def test_an_unreadable_ce_time_says_what_was_expected() -> None:
    with pytest.raises(MalformedMessageError) as info:
        wire.decode(LIKED_DATA, {**LIKED, "ce-time": "31/01/2026"}, TOPOLOGY.registry)
    assert str(info.value) == (
        "ce-time is not an RFC 3339 timestamp in years 1-9999 UTC "
        "(expected e.g. 2026-01-31T12:00:00Z)"
    )


def test_a_message_without_ce_time_is_dated_by_its_publish_time_when_known() -> None:
    """Otherwise an old event without ce-time would always look new to max_event_age."""
    published = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    _, envelope = wire.decode(LIKED_DATA, LIKED, TOPOLOGY.registry, publish_time=published)
    assert envelope.time == published
    stamped = {**LIKED, "ce-time": "2026-01-31T12:00:00Z"}  # ce-time, when there, wins
    _, envelope = wire.decode(LIKED_DATA, stamped, TOPOLOGY.registry, publish_time=published)
    assert envelope.time == LIKED_AT


@pytest.mark.parametrize("ce_time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_ce_time_outside_the_calendar_in_utc_is_malformed_not_a_crash(ce_time) -> None:
    with pytest.raises(MalformedMessageError, match="years 1-9999 UTC"):
        wire.decode(LIKED_DATA, {**LIKED, "ce-time": ce_time}, TOPOLOGY.registry)


@pytest.mark.parametrize("specversion", ["1.0", "1"])
def test_specversion_1_is_read_as_1_0(specversion) -> None:
    _, envelope = wire.decode(
        LIKED_DATA, {**LIKED, "ce-specversion": specversion}, TOPOLOGY.registry
    )
    assert envelope.specversion == "1.0"


@pytest.mark.parametrize("specversion", ["2.0", "0.3", "1.x", "", "v1"])
def test_other_specversions_are_refused(specversion) -> None:
    with pytest.raises(MalformedMessageError, match="unsupported CloudEvents specversion"):
        wire.decode(LIKED_DATA, {**LIKED, "ce-specversion": specversion}, TOPOLOGY.registry)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[" * 1500 + b"]" * 1500, "nested deeper than 64 levels"),  # past the decoder's depth
        (b'{"post_id": ' + b"9" * 5000 + b"}", "a number with more digits than can be read"),
        (b'{"a": ' + b'{"a": ' * 100 + b"1" + b"}" * 101, "nested deeper than 64 levels"),
    ],
)
def test_data_no_decoder_can_take_is_malformed_with_a_reason(data, reason) -> None:
    with pytest.raises(MalformedMessageError, match=reason):
        wire.decode(data, LIKED, TOPOLOGY.registry)


def user_updated_nested(depth: int) -> bytes:
    """A user.updated.v1 whose data nests ``depth`` levels (a change's new value is a list)."""
    value: object = "v"
    for _ in range(depth - 3):  # the data object, changes and the change itself are 3 levels
        value = [value]
    data = {"user_id": "u1", "changed_by": "u1", "changes": {"name": {"new": value}}}
    return json.dumps(data).encode()


def test_data_nested_as_deep_as_allowed_is_read_and_one_level_more_is_not() -> None:
    """A change value nested 300 deep passed validation and then failed model_dump forever."""
    attributes = {**LIKED, "ce-type": "user.updated.v1"}
    event, _ = wire.decode(user_updated_nested(wire.MAX_DEPTH), attributes, TOPOLOGY.registry)
    assert event.event_type == "user.updated.v1"
    with pytest.raises(MalformedMessageError, match="nested deeper than 64 levels"):
        wire.decode(user_updated_nested(wire.MAX_DEPTH + 1), attributes, TOPOLOGY.registry)


# -- the rest of the envelope ---------------------------------------------------------------------


def test_every_new_event_gets_an_id_of_its_own() -> None:
    first = wire.new_envelope(make_event(), source="/s")
    second = wire.new_envelope(make_event(), source="/s")
    assert first.id != second.id
    assert str(uuid.UUID(first.id)) == first.id


def test_the_trace_state_travels_with_the_trace() -> None:
    envelope = wire.new_envelope(
        make_event(),
        source="/s",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate="vendor=abc,other=1",
    )
    assert envelope.tracestate == "vendor=abc,other=1"
    data, attributes = wire.encode(make_event(), envelope)
    assert attributes["ce-tracestate"] == "vendor=abc,other=1"
    assert wire.decode(data, attributes, TOPOLOGY.registry)[1] == envelope


def test_a_json_content_type_with_parameters_is_accepted_and_kept() -> None:
    attributes = {**LIKED, "ce-datacontenttype": "application/json; charset=utf-8"}
    _, envelope = wire.decode(LIKED_DATA, attributes, TOPOLOGY.registry)
    assert envelope.datacontenttype == "application/json; charset=utf-8"


def test_a_content_type_other_than_json_is_refused_naming_both() -> None:
    with pytest.raises(MalformedMessageError) as info:
        wire.decode(LIKED_DATA, {**LIKED, "ce-datacontenttype": "text/plain"}, TOPOLOGY.registry)
    assert str(info.value) == (
        "unsupported ce-datacontenttype 'text/plain'; expected 'application/json'"
    )


def test_a_message_missing_several_attributes_names_them_all() -> None:
    with pytest.raises(MalformedMessageError) as info:
        wire.decode(LIKED_DATA, {"ce-type": "post.liked.v1"}, TOPOLOGY.registry)
    assert str(info.value) == "message is not a CloudEvent: missing attribute(s) ce-id, ce-source"


def test_data_that_is_json_but_not_an_object_says_what_it_found() -> None:
    with pytest.raises(MalformedMessageError) as info:
        wire.decode(b'["p1"]', LIKED, TOPOLOGY.registry)
    assert str(info.value) == "post.liked.v1: message data must be a JSON object, found list"


class Renamed(Event):
    """An event whose wire names differ from its Python names."""

    event_type: ClassVar[str] = "test.renamed.v1"
    post_id: str = Field(alias="postId")


def test_aliased_fields_travel_under_their_alias() -> None:
    event = Renamed(postId="p1")
    data, attributes = wire.encode(event, wire.new_envelope(event, source="/s"))
    assert json.loads(data) == {"postId": "p1"}
    assert wire.decode(data, attributes, EventRegistry([Renamed]))[0] == event
