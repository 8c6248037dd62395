"""The decode step: wire format in, typed event and envelope out; the unreadable is rejected."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pydantic import field_validator

from shared import wire
from shared.events import Event, EventRegistry
from shared.runtime import Outcome
from shared.runtime.decoding import Decode
from shared.system.events import PostLiked
from tests.runtime._support import CANARY, TWO_TOPICS, Rest, encoded, inflight, like, raw

DECODE = Decode(TWO_TOPICS.registry)
LIKED = {"ce-id": "e1", "ce-source": "/t", "ce-type": "post.liked.v1"}


def test_the_next_step_gets_the_typed_event_and_its_envelope():
    rest = Rest()
    message = inflight(encoded(like("p9"), event_id="e9", correlation_id="c1"))
    assert DECODE(message, rest).outcome is Outcome.HANDLED
    [passed] = rest.seen
    event, envelope = passed.decoded
    assert isinstance(event, PostLiked) and event.post_id == "p9"
    assert (envelope.id, envelope.correlation_id) == ("e9", "c1")
    assert passed.raw is message.raw


@pytest.mark.parametrize(
    ("data", "attributes", "reason"),
    [
        (b"{nope", LIKED, "post.liked.v1: message data is not JSON"),
        (b"{}", {**LIKED, "ce-type": "post.unliked.v1"}, "unknown event type 'post.unliked.v1'"),
        (b"{}", {"ce-type": "post.liked.v1"}, "message is not a CloudEvent: missing attribute"),
        (
            json.dumps({"post_id": "p1", "liker_id": CANARY}).encode(),
            LIKED,
            "post.liked.v1: data does not fit the model (author_id",
        ),
    ],
)
def test_what_cannot_be_decoded_is_rejected_with_the_reason_and_goes_no_further(
    data, attributes, reason
):
    rest = Rest()
    result = DECODE(inflight(raw(data, attributes)), rest)
    assert result.outcome is Outcome.REJECTED
    assert (result.reason or "").startswith(reason)
    assert CANARY not in (result.reason or "")
    assert not rest.called


def test_an_event_without_ce_time_is_dated_when_pubsub_accepted_it():
    """Dated by its arrival instead, an old event would always look new to max_event_age."""
    sent = encoded(like())
    undated = {k: v for k, v in sent.attributes.items() if k != wire.ATTR_TIME}
    published = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    message = dataclasses.replace(raw(sent.data, undated), publish_time=published)
    rest = Rest()
    assert DECODE(inflight(message), rest).outcome is Outcome.HANDLED
    [passed] = rest.seen
    assert passed.decoded[1].time == published


class Priced(Event):
    """An event whose validator looks its value up and fails as pydantic does not foresee."""

    event_type: ClassVar[str] = "sku.priced.v1"
    sku: str

    @field_validator("sku")
    @classmethod
    def priced(cls, sku: str) -> str:
        raise LookupError(f"no price for {sku}")


def test_a_failure_the_codec_did_not_foresee_is_rejected_naming_only_its_type():
    """Retrying would fail the same way: dead-lettered, with no value in the reason."""
    attributes = {"ce-id": "e1", "ce-source": "/t", "ce-type": Priced.event_type}
    message = raw(json.dumps({"sku": CANARY}).encode(), attributes)
    rest = Rest()
    result = Decode(EventRegistry([Priced]))(inflight(message), rest)
    assert (result.outcome, result.reason) == (
        Outcome.REJECTED,
        "message could not be decoded: LookupError",
    )
    assert not rest.called


def test_fields_a_newer_producer_added_are_set_aside_and_counted_not_named(caplog):
    message = encoded(like())
    data = json.loads(message.data) | {"reaction": CANARY}
    rest = Rest()
    with caplog.at_level(logging.DEBUG, logger="pubsub_kit.consumer"):
        result = DECODE(inflight(raw(json.dumps(data).encode(), message.attributes)), rest)
    assert result.outcome is Outcome.HANDLED
    [passed] = rest.seen
    assert passed.decoded[0].unknown_fields == (("reaction",),)
    [record] = caplog.records
    assert record.fields == {"unknown_fields": 1}
    assert CANARY not in record.getMessage() and "reaction" not in record.getMessage()
