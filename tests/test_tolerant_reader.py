"""Strict writer, tolerant reader: fields a newer producer added are set aside, never refused,
and their values never reach what the toolkit shows (logs, the audit store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared import REDACTED, EventValidationError, Outcome, wire
from shared.system.events import PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.testing import HandlerHarness

REGISTRY = TOPOLOGY.registry
CANARY = "canary-7f3a@example.com"
LIKE = {"post_id": "p1", "liker_id": "u1", "author_id": "u2", "liked_at": "2026-01-31T12:00:00Z"}


def test_a_field_this_model_does_not_declare_is_set_aside_not_refused():
    event = REGISTRY.read("post.liked.v1", {**LIKE, "reaction": "love"})
    assert isinstance(event, PostLiked)
    assert event.post_id == "p1"
    assert event.unknown_fields == (("reaction",),)
    assert "reaction" not in event.model_dump()


def test_a_reader_shows_an_unknown_field_by_name_with_its_value_redacted():
    event = REGISTRY.read("post.liked.v1", {**LIKE, "gift_note": CANARY})
    assert event.redacted()["gift_note"] == REDACTED
    assert CANARY not in json.dumps(event.redacted())


def test_unknown_fields_are_set_aside_at_any_depth():
    data = {
        "user_id": "u1",
        "changed_by": "u1",
        "changes": {
            "display_name": {"old": "a", "new": "b", "reason": CANARY},
            "email": {"old": CANARY, "new": CANARY, "verified_by": CANARY},
        },
    }
    event = REGISTRY.read("user.updated.v1", data)
    assert isinstance(event, UserUpdated)
    assert set(event.unknown_fields) == {
        ("changes", "display_name", "reason"),
        ("changes", "email", "verified_by"),
    }
    shown = event.redacted()
    assert shown["changes"]["display_name"] == {"old": "a", "new": "b", "reason": REDACTED}
    assert shown["changes"]["email"] == REDACTED  # a sensitive key's entry stays one value
    assert CANARY not in json.dumps(shown)


def test_an_unknown_field_whose_name_looks_like_data_is_shown_by_position():
    event = REGISTRY.read("post.liked.v1", {**LIKE, CANARY: 1})
    assert event.unknown_fields == (("[field 5]",),)
    assert event.redacted()["[field 5]"] == REDACTED
    assert CANARY not in json.dumps(event.redacted())


def test_the_reader_is_as_strict_as_ever_about_what_the_model_declares():
    with pytest.raises(EventValidationError) as error:
        REGISTRY.read("post.liked.v1", {"post_id": "p1", "reaction": "love"})
    message = str(error.value)
    assert "liker_id" in message and "reaction" not in message  # the real problem only
    with pytest.raises(EventValidationError):
        REGISTRY.read("post.liked.v1", {**LIKE, "post_id": ""})


def test_writers_stay_strict():
    with pytest.raises(ValidationError):
        PostLiked.model_validate({**LIKE, "reaction": "love"})
    with pytest.raises(EventValidationError, match=r"\[field 5\]"):
        REGISTRY.parse("post.liked.v1", {**LIKE, "reaction": "love"})


def test_the_readers_own_data_is_not_changed():
    data = {**LIKE, "reaction": "love"}
    REGISTRY.read("post.liked.v1", data)
    assert data["reaction"] == "love"


def test_a_message_with_a_newer_producers_field_is_handled_not_dead_lettered():
    seen: list[Any] = []
    harness = HandlerHarness(TOPOLOGY, "audit_log", lambda event: seen.append(event.redacted()))
    attributes = {
        wire.ATTR_SPECVERSION: "1.0",
        wire.ATTR_ID: "e-newer",
        wire.ATTR_SOURCE: "/node/likes",
        wire.ATTR_TYPE: "post.liked.v1",
        wire.ATTR_TIME: "2026-01-31T13:00:00+01:00",
        wire.ATTR_CONTENT_TYPE: "application/json",
        "ce-partitionkey": "p1",  # attributes nobody here reads are fine too
    }
    data = json.dumps({**LIKE, "reaction": "love"}).encode()
    result = harness.deliver_raw(data, attributes)
    assert result.outcome is Outcome.HANDLED, result
    assert seen == [{**LIKE, "reaction": REDACTED}]
    assert harness.dead_letters == []


names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(lambda n: n not in LIKE)


@given(extra=st.dictionaries(names, st.just(CANARY) | st.integers() | st.lists(st.just(CANARY))))
def test_any_added_fields_leave_the_declared_ones_intact_and_show_no_value(extra):
    event = REGISTRY.read("post.liked.v1", {**LIKE, **extra})
    expected = PostLiked(
        post_id="p1", liker_id="u1", author_id="u2", liked_at=datetime(2026, 1, 31, 12, tzinfo=UTC)
    )
    assert event.model_dump() == expected.model_dump()
    assert sorted(event.unknown_fields) == sorted((name,) for name in extra)
    assert CANARY not in json.dumps(event.redacted())
