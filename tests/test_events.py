"""Event models: versioned types, the registry's errors, redaction and JSON Schema."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Annotated, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from shared import REDACTED, Event, EventRegistry, Sensitive, TopologyError
from shared.errors import EventValidationError, UnknownEventTypeError
from shared.events import SensitiveKeys, safe_path
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


VALID_CARD = {"number": "4111", "brand": "visa"}


class CardBook(Event):
    """A model inside every container a declared field can sit in."""

    event_type: ClassVar[str] = "card_book.changed.v1"
    by_owner: dict[str, Card] = Field(default_factory=dict)
    lists_by_owner: dict[str, list[Card]] = Field(default_factory=dict)
    owners: list[dict[str, Card]] = Field(default_factory=list)
    backup: Card | None = None
    described: list[Annotated[Card | None, Field(description="a card or a gap")]] = Field(
        default_factory=list
    )
    labelled: tuple[str, Card] | None = None
    spares: tuple[Card, ...] = ()
    primary: Card | None = Field(default=None, alias="primaryCard")
    fallback: Card | None = Field(default=None, validation_alias="fallbackCard")
    by_pin: dict[int, Card] = Field(default_factory=dict)
    book: RootModel[dict[str, Card]] | None = None


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"by_owner": {CANARY: {"brand": "visa"}}}, ["by_owner[key 1].number"]),
        (
            {"lists_by_owner": {"a": [], CANARY: [VALID_CARD, {"brand": "visa"}]}},
            ["lists_by_owner[key 2][1].number"],
        ),
        ({"owners": [{}, {CANARY: {"number": "4111"}}]}, ["owners[1][key 1].brand"]),
        ({"backup": {"brand": "visa"}}, ["backup.number"]),
        (
            {"described": [VALID_CARD, None, {"number": 4111, "brand": "visa"}]},
            ["described[2].number"],
        ),
        ({"labelled": [CANARY, {"brand": "visa"}]}, ["labelled[1].number"]),
        ({"spares": [VALID_CARD, VALID_CARD, {"brand": "visa"}]}, ["spares[2].number"]),
        ({"primaryCard": {"brand": "visa"}}, ["primaryCard.number"]),
        ({"fallbackCard": {"brand": "visa"}}, ["fallbackCard.number"]),
        ({"book": {"root": {"brand": "visa"}}}, ["book[key 1].number"]),  # not its "root" field
    ],
)
def test_declared_fields_keep_their_names_inside_any_container(data, fields) -> None:
    """Mappings, lists, tuples, ``X | None``, ``Annotated``, ``RootModel`` and aliases, nested."""
    registry = EventRegistry([CardBook])
    for payload in (data, json.dumps(data)):
        with pytest.raises(EventValidationError) as raised:
            registry.parse("card_book.changed.v1", payload)
        assert raised.value.fields == fields
        assert CANARY not in str(raised.value)


def test_an_int_key_of_a_mapping_is_named_by_position_and_not_read_as_a_list_index() -> None:
    registry = EventRegistry([CardBook])
    pin = 4155550100  # a mapping handed to parse() can have int keys, which JSON cannot
    with pytest.raises(EventValidationError) as raised:
        registry.parse("card_book.changed.v1", {"by_pin": {pin: {"brand": "visa"}}})
    assert raised.value.fields == ["by_pin[key 1].number"]
    with pytest.raises(EventValidationError) as wrong_type:  # dict[str, Card] refuses the int
        registry.parse("card_book.changed.v1", {"by_owner": {"ann": VALID_CARD, pin: VALID_CARD}})
    assert wrong_type.value.fields[0].startswith("by_owner[key 2]")
    assert str(pin) not in str(raised.value) + str(wrong_type.value)


@pytest.mark.parametrize("payload", [{"changes": {}}, None])
def test_a_key_the_payload_does_not_hold_is_named_by_a_question_mark(payload) -> None:
    path = safe_path(UserUpdated, ("changes", CANARY, "new"), payload)
    assert path == "changes[key ?].new"


@pytest.mark.parametrize(
    ("data", "why"), [(b"[1]", "Input should be an object"), (b"nope", "Invalid JSON")]
)
def test_data_that_is_not_a_json_object_is_named_data(data, why) -> None:
    with pytest.raises(EventValidationError) as raised:
        EventRegistry([PostLiked]).parse("post.liked.v1", data)
    assert raised.value.fields == [""]
    assert f"(<data>: {why}" in str(raised.value)


def test_sensitive_fields_of_models_in_sets_and_deques_are_redacted() -> None:
    class Token(BaseModel):
        model_config = ConfigDict(frozen=True)  # hashable, so it can sit in a set

        secret: Annotated[str, Sensitive]
        scope: str

    class TokensIssued(Event):
        event_type: ClassVar[str] = "tokens.issued.v1"
        tokens: set[Token]
        revoked: frozenset[Token]
        queued: deque[Token]

    event = TokensIssued(
        tokens={Token(secret=CANARY, scope="read")},
        revoked=frozenset({Token(secret=CANARY + "2", scope="write")}),
        queued=deque([Token(secret=CANARY + "3", scope="admin")]),
    )
    assert event.redacted() == {
        "tokens": [{"secret": REDACTED, "scope": "read"}],
        "revoked": [{"secret": REDACTED, "scope": "write"}],
        "queued": [{"secret": REDACTED, "scope": "admin"}],
    }


def test_a_field_with_only_a_serialization_alias_appears_under_it_when_redacted() -> None:
    class Moved(Event):
        event_type: ClassVar[str] = "parcel.moved.v1"
        parcel_id: str = Field(serialization_alias="parcelId")
        secret: Annotated[str, Sensitive] = Field(serialization_alias="pin")

    assert Moved(parcel_id="p1", secret=CANARY).redacted() == {"parcelId": "p1", "pin": REDACTED}


def test_sensitive_keys_may_be_declared_in_any_case() -> None:
    class Contacted(Event):
        event_type: ClassVar[str] = "customer.contacted.v1"
        via: Annotated[dict[str, str], SensitiveKeys("Email", "PHONE")]

    event = Contacted(via={"email": CANARY, "Phone": "+1 555 0100", "city": "Oslo"})
    assert event.redacted() == {"via": {"email": REDACTED, "Phone": REDACTED, "city": "Oslo"}}


def test_inside_a_union_every_name_is_a_position() -> None:
    """pydantic's loc names the member it tried (``dict[str,float]``): a name ``safe_path`` does
    not tell apart from a producer's key, so everything inside is named by position."""

    class Measured(Event):
        event_type: ClassVar[str] = "sensor.measured.v1"
        reading: dict[str, float] | float

    with pytest.raises(EventValidationError) as raised:
        EventRegistry([Measured]).parse("sensor.measured.v1", {"reading": {CANARY: "high"}})
    assert raised.value.fields == ["reading[field ?][field ?]", "reading[field ?]"]
    assert CANARY not in str(raised.value)


def test_naming_the_fields_of_an_error_leaves_the_data_as_it_was() -> None:
    reading = defaultdict(str, {CANARY: "high"})  # [] on it would add the key it looks up

    class Measured(Event):
        event_type: ClassVar[str] = "sensor.measured.v1"
        reading: dict[str, float] | float

    with pytest.raises(EventValidationError):
        EventRegistry([Measured]).parse("sensor.measured.v1", {"reading": reading})
    assert reading == {CANARY: "high"}
