"""The .proto contracts: protoc compiles them, and their canonical JSON is our wire JSON.

Every checked-in file under docs/contracts/proto is compiled with the protoc of grpcio-tools
(no network) and imported; events serialized by our models (``wire.encode``) parse into the
generated classes with unknown fields refused, print back field for field, and decode again
(``wire.decode``) into the same event.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from shared import wire
from shared.errors import EventValidationError, ToolkitError
from shared.events import Event, EventRegistry, Sensitive, SensitiveKeys
from shared.system.events import (
    FieldChange,
    NotificationRequested,
    OrderDispatched,
    PostLiked,
    UserUpdated,
)
from shared.system.topology import TOPOLOGY
from shared.tools.cli import main
from shared.tools.protobuf import (
    PROTO_DIR,
    UnsupportedShapeError,
    checked_in,
    file_name,
    proto_file,
    render,
)
from shared.topology import Topic, Topology
from tests.conftest import REPO

CONTRACTS = REPO / "docs" / "contracts"
WELL_KNOWN_TYPES = Path(str(files("grpc_tools") / "_proto"))  # google/protobuf/*.proto
WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


def protoc(source: Path, names: list[str], out: Path) -> None:
    """Compile ``names`` (under ``source``) to Python modules and a descriptor set in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={source}",
            f"--proto_path={WELL_KNOWN_TYPES}",
            f"--python_out={out}",
            f"--descriptor_set_out={out / 'descriptors.pb'}",
            *names,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def import_generated(out: Path, proto_name: str) -> ModuleType:
    name = proto_name.removesuffix(".proto") + "_pb2"
    spec = importlib.util.spec_from_file_location(name, out / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_models(models: list[type[Event]], workdir: Path) -> dict[str, type[Message]]:
    """Event type -> generated message class, for models that are not checked in.

    Each file goes into the process-wide descriptor pool, so a model is compiled once a session.
    """
    source = workdir / "proto"
    source.mkdir(parents=True)
    for model in models:
        (source / file_name(model.event_type)).write_text(proto_file(model))
    names = [file_name(m.event_type) for m in models]
    protoc(source, names, workdir / "out")
    return {
        model.event_type: getattr(import_generated(workdir / "out", name), model.__name__)
        for model, name in zip(models, names, strict=True)
    }


@pytest.fixture(scope="session")
def checked_in_classes(tmp_path_factory) -> dict[str, type[Message]]:
    """Event type -> the message class protoc generated from its checked-in .proto file."""
    folder = CONTRACTS / PROTO_DIR
    out = tmp_path_factory.mktemp("protoc")
    names = sorted(path.name for path in folder.glob("*.proto"))
    protoc(folder, names, out)
    classes = {}
    for model in TOPOLOGY.registry:
        module = import_generated(out, file_name(model.event_type))
        classes[model.event_type] = getattr(module, model.__name__)
    return classes


def assert_same(ours: Any, theirs: Any, path: str = "$") -> None:
    """Our JSON value and protobuf's are the same, field for field.

    The two allowed differences: a field that is null in ours may be absent in theirs, and an
    int64 prints as a string (``5`` -> ``"5"``); a number in a ``Value`` may print as a double.
    """
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), path
        for key in ours.keys() | theirs.keys():
            if key not in theirs and ours[key] is None:
                continue  # null and absent are the same value
            assert key in ours and key in theirs, f"{path}.{key}: only one side has it"
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(ours, list):
        assert isinstance(theirs, list) and len(ours) == len(theirs), path
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(mine, other, f"{path}[{index}]")
    elif isinstance(ours, bool) or ours is None:
        assert theirs is ours, f"{path}: {ours!r} became {theirs!r}"
    elif isinstance(ours, int) and isinstance(theirs, str):
        assert theirs == str(ours), f"{path}: int64 {ours} printed as {theirs!r}"
    elif isinstance(ours, int | float):
        assert isinstance(theirs, int | float) and not isinstance(theirs, bool), path
        assert theirs == ours, f"{path}: {ours!r} became {theirs!r}"
    else:
        assert type(theirs) is type(ours) and theirs == ours, f"{path}: {ours!r} != {theirs!r}"


def assert_round_trip(event: Event, message_class: type[Message]) -> None:
    """Ours -> protobuf (unknown fields refused) -> JSON equal to ours -> ours, the same event."""
    envelope = wire.Envelope(id="1", type=event.event_type, source="/tests", time=WHEN)
    data, attributes = wire.encode(event, envelope)
    message = json_format.Parse(data, message_class(), ignore_unknown_fields=False)
    printed = json_format.MessageToJson(
        message, always_print_fields_with_no_presence=True, ensure_ascii=False
    )
    assert_same(json.loads(data), json.loads(printed))
    assert_same(
        json.loads(data),
        json_format.MessageToDict(message, always_print_fields_with_no_presence=True),
    )
    registry = EventRegistry([type(event)])
    decoded, _ = wire.decode(printed.encode(), attributes, registry)
    assert decoded == event
    assert type(event).model_validate_json(printed) == event
    # The binary form too: what a Go or Java service would keep or pass on.
    assert message_class.FromString(message.SerializeToString()) == message


# -- Instances drawn from an event's JSON schema (so a new event type is covered unchanged) ----

JSON_SAFE_INTEGERS = st.integers(-(2**53), 2**53)  # a Value holds a double
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | JSON_SAFE_INTEGERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
OFFSETS = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """JSON data that fits ``schema``: the shapes the generator maps, with their constraints."""
    if "$ref" in schema:
        key = schema["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: from_schema(defs[key], defs))
    if "anyOf" in schema:
        return st.one_of([from_schema(member, defs) for member in schema["anyOf"]])
    if "enum" in schema or "const" in schema:
        return st.sampled_from(schema.get("enum", [schema.get("const")]))
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, defs)
    if kind == "array":
        items = from_schema(schema.get("items", {}), defs)
        size = {"min_size": schema.get("minItems", 0), "max_size": schema.get("maxItems", 4)}
        return st.lists(items, unique=schema.get("uniqueItems", False), **size)
    return _scalar(schema)


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "properties" in schema:
        required = set(schema.get("required", ()))
        properties = {k: from_schema(v, defs) for k, v in schema["properties"].items()}
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    values = schema.get("additionalProperties", True)
    value = ANY_JSON if values is True else from_schema(values, defs)
    return st.dictionaries(st.text(max_size=8), value, max_size=4)


def _scalar(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind, fmt = schema.get("type"), schema.get("format")
    if kind is None:
        return ANY_JSON
    if kind == "string" and fmt == "date-time":
        return st.datetimes(timezones=OFFSETS).map(datetime.isoformat)
    if kind == "string" and fmt == "date":
        return st.dates().map(date.isoformat)
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 24))
    if kind == "integer":
        low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "null":
        return st.none()
    assert kind == "boolean", schema
    return st.booleans()


def instances(model: type[Event]) -> st.SearchStrategy[Event]:
    schema = model.json_schema()
    return from_schema(schema, schema.get("$defs", {})).map(model.model_validate)


# -- The example topology -------------------------------------------------------------------


def test_every_event_type_has_a_proto_file_protoc_compiles(checked_in_classes) -> None:
    for model in TOPOLOGY.registry:
        descriptor = checked_in_classes[model.event_type].DESCRIPTOR
        assert descriptor.full_name == f"pubsubkit.events.{model.event_type}.{model.__name__}"
        wire_names = list(model.json_schema()["properties"])
        assert [f.json_name for f in descriptor.fields] == wire_names


def test_checked_in_protos_match_the_models() -> None:
    current = checked_in(CONTRACTS)
    for name, text in render(TOPOLOGY, current).items():
        assert current.get(name) == text, f"docs/contracts/{name} is stale: run `pubsub-kit schema`"


LONGEST_ID = "i" * 128
EXAMPLES: list[Event] = [
    PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=WHEN),
    PostLiked(
        post_id=LONGEST_ID,
        liker_id='ünïcødé ✓ 😀 "quoted" \\ back\nslash',
        author_id="作者",
        liked_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),
    ),
    PostLiked(post_id="p", liker_id="u", author_id="a", liked_at=datetime(2024, 1, 1)),  # naive
    UserUpdated(user_id="u", changed_by="admin", changes={}),
    UserUpdated(
        user_id="u",
        changed_by="admin",
        email="alice@example.com",
        changes={
            "email": FieldChange(old="alice@example.com", new="a@example.org"),
            "prefs": FieldChange(
                old={"theme": "dark", "tags": [1, 2.5, True, None, "x"], "nested": {"a": {}}},
                new=None,
            ),
            "age": FieldChange(old=41, new=-0.5),
            "flag": FieldChange(old=False, new=True),
            "": FieldChange(),
            "ключ": FieldChange(old=[], new={}),
        },
    ),
    OrderDispatched(order_id="o", customer_id="c", carrier="royal-mail", dispatched_at=WHEN),
    OrderDispatched(order_id="o", customer_id="c", carrier="c" * 64, dispatched_at=WHEN),
    *[
        NotificationRequested(customer_id="c", channel=channel, template="t" * 64)
        for channel in ("email", "sms", "push")
    ],
    NotificationRequested(customer_id="c", channel="sms", template="t", order_id=LONGEST_ID),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event_type)
def test_examples_round_trip_through_the_generated_classes(event, checked_in_classes) -> None:
    assert_round_trip(event, checked_in_classes[event.event_type])


@pytest.mark.parametrize("model", list(TOPOLOGY.registry), ids=lambda m: m.event_type)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_event_round_trips_through_the_generated_classes(
    model, data, checked_in_classes
) -> None:
    assert_round_trip(data.draw(instances(model)), checked_in_classes[model.event_type])


def test_an_unknown_field_is_refused_by_the_strict_parse_and_dropped_by_the_tolerant_one(
    checked_in_classes,
) -> None:
    data = {"post_id": "p", "liker_id": "u", "author_id": "a", "liked_at": "2024-01-01T00:00:00Z"}
    message_class = checked_in_classes["post.liked.v1"]
    newer = json.dumps({**data, "reaction": "love"})
    with pytest.raises(json_format.ParseError, match="reaction"):
        json_format.Parse(newer, message_class(), ignore_unknown_fields=False)
    message = json_format.Parse(newer, message_class(), ignore_unknown_fields=True)
    assert json_format.MessageToDict(message) == data


# -- Every supported shape, on a model made for it -------------------------------------------


class Carrier(enum.Enum):
    ROYAL_MAIL = "royal-mail"
    DHL = "dhl"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Leaf(BaseModel):
    """A nested model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    weight: float = 1.0


class Tree(BaseModel):
    """A recursive model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    children: list[Tree] = []


class EveryShape(Event):
    """Every field shape the .proto generator supports."""

    event_type: ClassVar[str] = "test.every_shape.v1"

    text: Annotated[str, Field(min_length=1, max_length=8, description="Some text.")]
    trace_id: Annotated[str, Field(alias="x-trace-id")]
    flag: bool
    ratio: float
    small: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
    big: int
    at: datetime
    day: date
    channel: Literal["email", "sms"]
    carrier: Carrier
    priority: Priority
    anything: Any
    maybe_anything: Any | None = None
    tags: list[str]
    numbers: set[int]
    values: list[Any]
    leaves: list[Leaf]
    counts: dict[str, int]
    leaf_by_name: dict[str, Leaf]
    attributes: dict[str, Any]
    leaf: Leaf
    tree: Tree
    maybe_leaf: Leaf | None = None
    maybe_text: str | None = None
    maybe_number: int | None = None
    maybe_choice: Literal["a", None] = None
    secret: Annotated[str | None, Sensitive] = None
    profile: Annotated[dict[str, Any], SensitiveKeys("email")] = Field(default_factory=dict)
    retries: int = 3


@pytest.fixture(scope="session")
def every_shape_class(tmp_path_factory) -> type[Message]:
    classes = compile_models([EveryShape], tmp_path_factory.mktemp("every-shape"))
    return classes[EveryShape.event_type]


def test_every_supported_shape_maps_to_proto3(every_shape_class) -> None:
    text = proto_file(EveryShape)
    for line in (
        "package pubsubkit.events.test.every_shape.v1;",
        'import "google/protobuf/struct.proto";',
        '  string x_trace_id = 2 [json_name = "x-trace-id"];',
        "  int32 small = 5",
        "  int64 big = 6",
        "  string at = 7",
        '  // required; one of: "royal-mail", "dhl"',
        "  int32 priority = 11",
        "  .google.protobuf.Value anything = 12",
        "  .google.protobuf.Value maybe_anything = 13",
        "  repeated string tags = 14",
        "  repeated int64 numbers = 15",
        "  repeated .google.protobuf.Value values = 16",
        "  repeated Leaf leaves = 17",
        "  map<string, int64> counts = 18",
        "  map<string, Leaf> leaf_by_name = 19",
        "  map<string, .google.protobuf.Value> attributes = 20",
        "  Leaf leaf = 21",
        "  Tree tree = 22",
        "  optional Leaf maybe_leaf = 23",
        "  optional string maybe_text = 24",
        "  optional int64 maybe_number = 25",
        "  optional string maybe_choice = 26",
        "  // sensitive: never log\n  optional string secret = 27",
        "  // default 3; int64",
        "message Leaf {",
        "  repeated Tree children = 2",
    ):
        assert line in text, line
    assert "// Some text.\n  // required; length 1 to 8\n  string text = 1" in text
    assert proto_file(EveryShape) == text, "the output is deterministic"


EVERY_SHAPE = EveryShape.model_validate(
    {
        "text": "ü",
        "x-trace-id": "t",
        "flag": False,
        "ratio": -1.5e300,
        "small": -(2**31),
        "big": 2**63 - 1,
        "at": "2024-02-29T23:59:59.5+14:00",
        "day": "2024-02-29",
        "channel": "sms",
        "carrier": "royal-mail",
        "priority": 2,
        "anything": [None, {"k": [1, "two", 3.5, False]}],
        "tags": ["", "ß"],
        "numbers": [-(2**63), 0],
        "values": [None, {}, []],
        "leaves": [{"label": "l"}],
        "counts": {"": 0, "n": -1},
        "leaf_by_name": {"a": {"label": "a", "weight": 0.0}},
        "attributes": {"null": None, "list": [1]},
        "leaf": {"label": ""},
        "tree": {"name": "root", "children": [{"name": "kid", "children": [{"name": "g"}]}]},
        "maybe_leaf": {"label": "m"},
        "maybe_text": "",
        "maybe_number": 0,
        "maybe_choice": "a",
        "secret": "s3cret",
        "profile": {"email": "x@example.com"},
    }
)


def test_a_model_with_every_shape_round_trips(every_shape_class) -> None:
    assert_round_trip(EVERY_SHAPE, every_shape_class)
    defaults = EVERY_SHAPE.model_copy(
        update={name: None for name in ("maybe_leaf", "maybe_text", "maybe_number", "secret")}
    )
    assert_round_trip(defaults, every_shape_class)


def test_producers_must_print_fields_without_presence(every_shape_class) -> None:
    """proto3 JSON leaves out false, 0, "" and empty lists unless told: our model refuses that."""
    data, _ = wire.encode(EVERY_SHAPE, wire.Envelope("1", EveryShape.event_type, "/tests", WHEN))
    message = json_format.Parse(data, every_shape_class())
    lean = json_format.MessageToJson(message)
    assert '"flag"' not in lean
    with pytest.raises(EventValidationError, match="flag: Field required"):
        EventRegistry([EveryShape]).parse(EveryShape.event_type, lean)
    full = json_format.MessageToJson(message, always_print_fields_with_no_presence=True)
    assert EventRegistry([EveryShape]).parse(EveryShape.event_type, full) == EVERY_SHAPE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=instances(EveryShape))
def test_any_instance_of_every_shape_round_trips(event, every_shape_class) -> None:
    assert_round_trip(event, every_shape_class)


# -- Shapes proto3 cannot carry ----------------------------------------------------------------


class Cat(BaseModel):
    meow: str


class Dog(BaseModel):
    woof: str


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


def bad_event(annotation: Any) -> type[Event]:
    return type(
        "Bad",
        (Event,),
        {"__annotations__": {"pet": annotation}, "event_type": "test.bad.v1"},
    )


@pytest.mark.parametrize(
    ("annotation", "field", "why"),
    [
        (Cat | Dog, "pet", "a union of several types"),
        (int | str, "pet", "a union of several types"),
        (list[list[int]], "pet", "a list of lists"),
        (list[str] | None, "pet", "an optional list or map"),
        (dict[str, int] | None, "pet", "an optional list or map"),
        (list[str | None], "pet", "items may be null"),
        (dict[str, list[int]], "pet", "a map of lists"),
        (dict[str, int | None], "pet", "a map of lists, maps or optional values"),
        (tuple[int, str], "pet", "fixed-size tuple"),
        (Loose, "Loose", "accepts extra fields"),
        (Literal["a", 1], "pet", "several JSON types"),
    ],
)
def test_an_unsupported_shape_names_the_event_type_and_the_field(annotation, field, why):
    model = bad_event(annotation)
    with pytest.raises(UnsupportedShapeError, match=re.escape(why)) as caught:
        proto_file(model)
    assert caught.value.event_type == "test.bad.v1" and caught.value.field == field
    assert str(caught.value).startswith(f"test.bad.v1: field {field!r} has no proto3 equivalent")


def test_field_names_protoc_would_confuse_are_refused() -> None:
    model = type(
        "Clash",
        (Event,),
        {"__annotations__": {"a_b": str, "aB": str}, "event_type": "test.clash.v1"},
    )
    with pytest.raises(UnsupportedShapeError, match="clashes with that of 'a_b'"):
        proto_file(model)


def test_an_event_type_that_starts_like_google_still_finds_the_well_known_types(tmp_path):
    model = type(
        "Thing", (Event,), {"__annotations__": {"v": Any}, "event_type": "google.thing.v1"}
    )
    (tmp_path / "thing.proto").write_text(proto_file(model))
    protoc(tmp_path, ["thing.proto"], tmp_path / "out")  # ".google.protobuf.Value", not relative


# -- Field numbers across changes to a model ---------------------------------------------------


def evolving(fields: dict[str, Any]) -> type[Event]:
    return type(
        "Evolving",
        (Event,),
        {"__annotations__": fields, "event_type": "test.evolving.v1", "__module__": __name__},
    )


def numbers_of(text: str) -> dict[str, int]:
    return {
        m["name"]: int(m["number"])
        for m in re.finditer(r"^  \S.* (?P<name>\w+) = (?P<number>\d+) \[", text, re.MULTILINE)
    }


def test_regenerating_keeps_numbers_and_reserves_those_of_removed_fields(tmp_path) -> None:
    first = proto_file(evolving({"a": str, "b": str, "c": str, "d": int}))
    assert numbers_of(first) == {"a": 1, "b": 2, "c": 3, "d": 4}

    # b removed, d now a string (a new number: int64 and string differ on the binary wire)
    later = evolving({"e": bool, "a": str, "c": str, "d": str})
    second = proto_file(later, previous=first)
    assert numbers_of(second) == {"e": 5, "a": 1, "c": 3, "d": 6}
    assert '  reserved 2, 4;\n  reserved "b";\n' in second
    assert proto_file(later, previous=second) == second, "regenerating again changes nothing"
    fewer = proto_file(evolving({"a": str, "c": str}), previous=second)
    assert '  reserved 2, 4, 5, 6;\n  reserved "b", "d", "e";\n' in fewer

    # b comes back: a fresh number, its old one stays reserved, its name is free again
    third = proto_file(evolving({"a": str, "b": str, "c": str, "d": str}), previous=second)
    assert numbers_of(third) == {"a": 1, "b": 7, "c": 3, "d": 6}
    assert "  reserved 2, 4, 5;\n  message" not in third and "reserved 2, 4, 5;" in third
    assert '"b";' not in third

    for index, text in enumerate((first, second, third)):
        (tmp_path / f"evolving_{index}.proto").write_text(
            text.replace("test.evolving.v1;", f"test.evolving{index}.v1;")
        )
        protoc(tmp_path, [f"evolving_{index}.proto"], tmp_path / f"out{index}")


def test_a_field_keeps_its_number_when_only_the_spelling_of_its_type_changed() -> None:
    model = evolving({"a": str, "v": Any})
    relative = proto_file(model).replace(".google.protobuf.Value", "google.protobuf.Value")
    assert numbers_of(proto_file(model, previous=relative)) == {"a": 1, "v": 2}


def test_two_event_types_with_one_file_name_are_refused() -> None:
    first = type("First", (Event,), {"__annotations__": {"a": str}, "event_type": "a.b_c.v1"})
    second = type("Second", (Event,), {"__annotations__": {"a": str}, "event_type": "a_b.c.v1"})
    topology = Topology([Topic("things", events=[first, second])])
    with pytest.raises(ToolkitError, match=r"a.b_c.v1 and a_b.c.v1 .* proto/a_b_c_v1.proto"):
        render(topology)


def test_a_new_file_numbers_fields_in_declaration_order() -> None:
    assert numbers_of(proto_file(evolving({"z": str, "y": str, "x": str}))) == {
        "z": 1,
        "y": 2,
        "x": 3,
    }


# -- The command ---------------------------------------------------------------------------------


def test_schema_writes_the_protos_and_check_finds_a_stale_one(tmp_path, capsys) -> None:
    assert main(["schema", "--output-dir", str(tmp_path)]) == 0
    written = sorted(p.name for p in (tmp_path / PROTO_DIR).iterdir())
    assert written == sorted(file_name(t) for t in TOPOLOGY.registry.types)
    assert main(["schema", "--output-dir", str(tmp_path), "--check"]) == 0

    # A field's number is taken from the file (that is how numbers stay stable); the rest is not.
    stale = tmp_path / PROTO_DIR / file_name("post.liked.v1")
    stale.write_text(stale.read_text().replace("liker_id = 2", "liker_id = 9"))
    assert main(["schema", "--output-dir", str(tmp_path), "--check"]) == 0
    stale.write_text(stale.read_text().replace("// required", "// optional"))
    missing = tmp_path / PROTO_DIR / file_name("order.dispatched.v1")
    missing.unlink()
    capsys.readouterr()
    assert main(["schema", "--output-dir", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert f"differs: {stale}" in out and f"differs: {missing}" in out
