"""Event models: versioned types, the registry's errors, redaction and JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, ClassVar

import pytest
from pydantic import BaseModel, Field, ValidationError

from shared import REDACTED, Event, EventRegistry, Sensitive, TopologyError
from shared.errors import EventValidationError, UnknownEventTypeError
from shared.events import SensitiveKeys
from shared.system.events import FieldChange, PostLiked, UserUpdated

CANARY = "canary-7f3a@example.com"


def user_updated() -> UserUpdated:
    return UserUpdated(
        user_id="u1",
        changed_by="admin",
        changes={
            "email": FieldChange(old="old-" + CANARY, new=CANARY),
            "name": FieldChange(old="A", new="B"),
        },
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
    assert set(info.value.fields) == {"email", "[field 5]"}  # "extra" is the producer's word
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
        cards: list[Card] = Field(default_factory=list)

    event = Paid(card=Card(number="4111", brand="visa"), cards=[Card(number="5500", brand="mc")])
    assert event.redacted() == {
        "card": {"number": REDACTED, "brand": "visa"},
        "cards": [{"number": REDACTED, "brand": "mc"}],
    }


def test_events_are_immutable_and_refuse_unknown_fields() -> None:
    event = PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=datetime.now(UTC))
    with pytest.raises(ValidationError, match="frozen"):
        event.post_id = "other"
    with pytest.raises(ValidationError, match="extra"):
        PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=datetime.now(UTC), typo=1)  # type: ignore[call-arg]


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


def test_the_redacted_view_is_json_ready() -> None:
    liked = PostLiked(
        post_id="p", liker_id="u", author_id="a", liked_at=datetime(2026, 1, 31, 12, tzinfo=UTC)
    )
    assert liked.redacted() == {
        "post_id": "p",
        "liker_id": "u",
        "author_id": "a",
        "liked_at": "2026-01-31T12:00:00Z",
    }


class Card(BaseModel):
    number: Annotated[str, Sensitive]
    brand: str


class WalletUpdated(Event):
    """Sensitive data at every depth a model can hold it."""

    event_type: ClassVar[str] = "wallet.updated.v1"
    cards_by_owner: dict[str, Card]
    limits: dict[str, int]
    seen_at: list[datetime]
    labels: dict[str, dict[str, str]]
    rows: list[dict[str, str]]
    contact: Annotated[dict[str, str], SensitiveKeys("email"), SensitiveKeys("phone")]


def test_sensitive_values_are_redacted_at_any_depth_and_the_rest_kept_as_json() -> None:
    event = WalletUpdated(
        cards_by_owner={"ann": Card(number="4111" + CANARY, brand="visa")},
        limits={"daily": 500},
        seen_at=[datetime(2026, 1, 31, 12, tzinfo=UTC)],
        labels={"tier": {"name": "gold"}},
        rows=[{"k": "v"}],
        contact={"email": CANARY, "phone": "+1 555 0100", "city": "Oslo"},
    )
    assert event.redacted() == {
        "cards_by_owner": {"ann": {"number": REDACTED, "brand": "visa"}},
        "limits": {"daily": 500},
        "seen_at": ["2026-01-31T12:00:00Z"],
        "labels": {"tier": {"name": "gold"}},
        "rows": [{"k": "v"}],
        "contact": {"email": REDACTED, "phone": REDACTED, "city": "Oslo"},
    }


def test_a_field_left_out_of_serialization_stays_out_and_the_fields_after_it_stay_in() -> None:
    class Noted(Event):
        event_type: ClassVar[str] = "note.added.v1"
        internal: str = Field(default="scratch", exclude=True)
        text: str

    assert Noted(text="hello").redacted() == {"text": "hello"}


def test_sensitive_fields_lists_the_marked_top_level_fields() -> None:
    assert UserUpdated.sensitive_fields() == ["email"]
    assert PostLiked.sensitive_fields() == []


def test_the_markers_read_as_written_in_a_models_repr() -> None:
    assert repr(Sensitive) == "Sensitive"
    assert repr(SensitiveKeys("phone", "email")) == "SensitiveKeys(email, phone)"


def test_actor_field_must_name_a_field_and_the_error_lists_them() -> None:
    with pytest.raises(TopologyError) as info:

        class Renamed(Event):
            event_type: ClassVar[str] = "user.renamed.v1"
            actor_field: ClassVar[str | None] = "who"
            user_id: str
            name: str

    assert str(info.value) == (
        "Renamed.actor_field names 'who', which is not one of its fields (user_id, name)"
    )


class Family(Event):
    """An abstract base: it has no event_type of its own."""


class NotAnEvent:
    event_type = "not.an_event.v1"


A_LIKE = PostLiked(
    post_id="p", liker_id="u", author_id="a", liked_at=datetime(2026, 1, 31, tzinfo=UTC)
)


@pytest.mark.parametrize("model", [Family, NotAnEvent, A_LIKE])
def test_the_registry_takes_only_concrete_event_classes(model) -> None:
    with pytest.raises(TopologyError) as info:
        EventRegistry([model])
    assert str(info.value) == f"{model!r} is not an Event subclass with an event_type"


def test_registering_the_same_model_twice_is_harmless() -> None:
    registry = EventRegistry([PostLiked, PostLiked])
    assert len(registry) == 1
    assert "post.liked.v1" in registry and "post.unliked.v1" not in registry


@pytest.mark.parametrize(
    "data",
    [
        b'{"post_id": "p", "liker_id": "u", "author_id": "a", "liked_at": "2026-01-31T00:00:00Z"}',
        '{"post_id": "p", "liker_id": "u", "author_id": "a", "liked_at": "2026-01-31T00:00:00Z"}',
    ],
)
def test_the_registry_parses_json_bytes_and_text(data) -> None:
    event = EventRegistry([PostLiked]).parse("post.liked.v1", data)
    assert isinstance(event, PostLiked) and event.post_id == "p"


def test_a_nested_field_that_does_not_fit_is_named_by_its_path() -> None:
    registry = EventRegistry([UserUpdated])
    data = {"user_id": "u1", "changed_by": "a", "changes": {"email": {"new": CANARY, "typo": 1}}}
    with pytest.raises(EventValidationError) as info:
        registry.parse("user.updated.v1", data)
    assert info.value.fields == ["changes[key 1][field 2]"]
    assert CANARY not in str(info.value)


def test_sensitive_keys_match_whatever_their_case_and_at_any_depth() -> None:
    event = UserUpdated(
        user_id="u1",
        changed_by="u1",
        changes={
            "Email": FieldChange(old=None, new=CANARY),
            "profile": FieldChange(new={"contact": {"EMAIL": CANARY, "city": "Oslo"}}),
            "name": FieldChange(old="A", new="B"),
        },
    )
    view = event.redacted()
    assert CANARY not in str(view)
    assert view["changes"]["Email"] == REDACTED
    assert view["changes"]["profile"] == {
        "old": None,
        "new": {"contact": {"EMAIL": REDACTED, "city": "Oslo"}},
    }
    assert view["changes"]["name"] == {"old": "A", "new": "B"}


def test_aliased_fields_appear_in_the_redacted_view_under_their_wire_name() -> None:
    class Renamed(Event):
        event_type: ClassVar[str] = "account.renamed.v1"
        subject_field: ClassVar[str | None] = "account_id"

        account_id: str = Field(alias="accountId")
        new_name: str = Field(alias="newName")
        secret: Annotated[str, Sensitive] = Field(alias="secretCode")

    event = Renamed.model_validate({"accountId": "a1", "newName": "N", "secretCode": CANARY})
    assert event.redacted() == {"accountId": "a1", "newName": "N", "secretCode": REDACTED}
    assert event.subject == "a1"


def test_an_optional_subject_that_is_none_sends_no_subject() -> None:
    class Maybe(Event):
        event_type: ClassVar[str] = "thing.happened.v1"
        subject_field: ClassVar[str | None] = "thing_id"
        actor_field: ClassVar[str | None] = "by"

        thing_id: str | None = None
        by: str | None = None

    event = Maybe()
    assert (event.subject, event.actor) == (None, None)
    from shared import wire

    _, attributes = wire.encode(event, wire.new_envelope(event, source="/t"))
    assert "ce-subject" not in attributes


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        # the key of an entry is the sensitive value itself
        ({"changes": {"email": {CANARY: 1}}}, ["changes[key 1][field 1]"]),
        ({"changes": {"name": {"new": "B"}, CANARY: "x"}}, ["changes[key 2]"]),
        ({"changes": {}, CANARY: 1}, ["[field 4]"]),
    ],
)
def test_validation_errors_name_user_supplied_keys_by_position_only(data, fields) -> None:
    registry = EventRegistry([UserUpdated])
    with pytest.raises(EventValidationError) as raised:
        registry.parse("user.updated.v1", {"user_id": "u1", "changed_by": "u1", **data})
    assert raised.value.fields == fields
    assert CANARY not in str(raised.value)
    with pytest.raises(EventValidationError) as from_json:  # the same from the wire's bytes
        registry.parse("user.updated.v1", json.dumps({"user_id": "u1", "changed_by": "u1", **data}))
    assert from_json.value.fields == fields


def test_validation_errors_keep_declared_names_and_list_indexes() -> None:
    class Basket(Event):
        event_type: ClassVar[str] = "basket.filled.v1"
        items: list[FieldChange]
        owner_id: str = Field(alias="ownerId")

    with pytest.raises(EventValidationError) as raised:
        EventRegistry([Basket]).parse("basket.filled.v1", {"items": [{}, {"x": 1}]})
    assert raised.value.fields == ["items[1][field 1]", "ownerId"]
