"""Event models: versioned types, the registry's errors, redaction and JSON Schema."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, ClassVar

import pytest
from pydantic import ValidationError

from shared import REDACTED, Event, EventRegistry, Sensitive, TopologyError
from shared.errors import EventValidationError, UnknownEventTypeError
from shared.system.events import PostLiked, UserUpdated

CANARY = "canary-7f3a@example.com"


def user_updated() -> UserUpdated:
    return UserUpdated(
        user_id="u1",
        changed_by="admin",
        changes={"email": {"old": "old-" + CANARY, "new": CANARY}, "name": {"old": "A", "new": "B"}},
        email=CANARY,
    )


def test_event_type_must_be_versioned() -> None:
    with pytest.raises(TopologyError, match="ending in a version"):

        class Unversioned(Event):
            event_type: ClassVar[str] = "post.liked"


def test_subject_field_must_name_a_field() -> None:
    with pytest.raises(TopologyError, match="subject_field names 'nope'"):

        class Bad(Event):
            event_type: ClassVar[str] = "bad.thing.v1"
            subject_field: ClassVar[str | None] = "nope"
            value: int


def test_registry_refuses_two_models_for_one_type() -> None:
    class Other(Event):
        event_type: ClassVar[str] = "post.liked.v1"

    with pytest.raises(TopologyError, match="declared twice"):
        EventRegistry([PostLiked, Other])


def test_unknown_type_names_the_type_and_the_known_ones() -> None:
    registry = EventRegistry([PostLiked])
    with pytest.raises(UnknownEventTypeError) as info:
        registry.parse("post.unliked.v1", b"{}")
    assert info.value.event_type == "post.unliked.v1"
    assert "post.unliked.v1" in str(info.value) and "post.liked.v1" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_invalid_data_names_type_and_field_but_not_the_value() -> None:
    registry = EventRegistry([UserUpdated])
    data = {"user_id": "u1", "changed_by": "admin", "changes": {}, "email": 12345, "extra": CANARY}
    with pytest.raises(EventValidationError) as info:
        registry.parse("user.updated.v1", data)
    assert info.value.event_type == "user.updated.v1"
    assert set(info.value.fields) == {"email", "extra"}
    assert CANARY not in str(info.value) and "12345" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_redacted_replaces_sensitive_fields_and_sensitive_keys() -> None:
    view = user_updated().redacted()
    assert view["email"] == REDACTED
    assert view["changes"]["email"] == REDACTED
    assert view["changes"]["name"] == {"old": "A", "new": "B"}
    assert CANARY not in repr(view)


def test_redacted_keeps_none_as_none() -> None:
    event = UserUpdated(user_id="u1", changed_by="u1", changes={})
    assert event.redacted()["email"] is None


def test_nested_sensitive_fields_are_redacted() -> None:
    from pydantic import BaseModel

    class Card(BaseModel):
        number: Annotated[str, Sensitive]
        brand: str

    class Paid(Event):
        event_type: ClassVar[str] = "payment.made.v1"
        card: Card
        cards: list[Card] = []

    event = Paid(card=Card(number="4111", brand="visa"), cards=[Card(number="5500", brand="mc")])
    assert event.redacted() == {
        "card": {"number": REDACTED, "brand": "visa"},
        "cards": [{"number": REDACTED, "brand": "mc"}],
    }


def test_events_are_immutable_and_refuse_unknown_fields() -> None:
    event = PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=datetime.now(timezone.utc))
    with pytest.raises(ValidationError, match="frozen"):
        event.post_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=datetime.now(timezone.utc),
                  typo=1)  # type: ignore[call-arg]


def test_json_schema_marks_sensitive_data_and_names_the_type() -> None:
    schema = UserUpdated.json_schema()
    assert schema["x-event-type"] == "user.updated.v1"
    assert schema["properties"]["email"]["x-sensitive"] is True
    assert schema["properties"]["changes"]["x-sensitive-keys"] == ["address", "email", "phone"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"user_id", "changed_by", "changes"}


def test_subject_and_actor_come_from_the_declared_fields() -> None:
    event = user_updated()
    assert (event.subject, event.actor) == ("u1", "admin")
