"""Protocol Buffers contracts: one proto3 file per event type, for Go, Java, Node and others.

``pubsub-kit schema`` writes ``docs/contracts/proto/<event type with dots as underscores>.proto``:
``post.liked.v1`` is ``post_liked_v1.proto``, package ``pubsubkit.events.post.liked.v1``, with one
message named after the model class (``PostLiked``) and one sibling message per nested model.
Each file is made so that protobuf's canonical JSON mapping of its message *is* the event's JSON
on the wire (``model_dump_json(by_alias=True)``):

- every field carries ``json_name`` = its wire name (proto3 JSON would camelCase it otherwise);
- datetimes are strings, exactly as sent (``Timestamp`` would renormalize the offset); literals
  and enums are strings (a proto enum name cannot be ``"royal-mail"``); ``Any`` is
  ``google.protobuf.Value``; ``X | None`` is ``optional X``, our ``null`` being proto's absent
  field (the same value);
- ``int`` is ``int32`` when its bounds fit, else ``int64``, which proto3 JSON prints as a string.

Shapes with no such mapping (a union of two types, a list of lists, an optional list) raise
:class:`UnsupportedShapeError`, naming the event type and the field.

Field numbers: a new file numbers fields in declaration order from 1. Regenerating reads the
file already there and keeps every field's number; a new field takes the next unused number; the
number of a removed field (or of one whose type changed) and the name of a removed field become
``reserved``, so code generated from the old and the new file never read one field as another.
Deleting the file starts the numbering afresh: don't, once anyone generated code from it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared import wire
from shared.errors import ToolkitError
from shared.events import Event
from shared.topology import Topology

PROTO_DIR = "proto"
"""The folder of the .proto files, inside the contracts folder."""

PACKAGE_PREFIX = "pubsubkit.events"
"""Each file's package is this, a dot and the event type."""

_VALUE = ".google.protobuf.Value"  # fully qualified: an event type "google.x.v1" cannot shadow it
_STRUCT_PROTO = "google/protobuf/struct.proto"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_PROTOBUF_RESERVED = range(19000, 20000)  # field numbers protobuf keeps for itself
_SCALARS = {"string": "string", "boolean": "bool", "number": "double"}  # JSON type -> proto
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_MESSAGE_LINE = re.compile(r"^message (?P<name>\w+) \{$")
_FIELD_LINE = re.compile(
    r"^  (?P<label>optional |repeated )?(?P<type>map<[^>]*>|[\w.]+) (?P<name>\w+) = (?P<number>\d+)"
)
_RESERVED_LINE = re.compile(r"^  reserved (?P<items>.+);$")


class UnsupportedShapeError(ToolkitError, ValueError):
    """A field's type has no proto3 form whose canonical JSON is the event's JSON.

    Attributes:
        event_type: the event type whose model has the field.
        field: the field's wire name; inside a nested model, ``Model.field``.
    """

    def __init__(self, event_type: str, field: str, why: str) -> None:
        self.event_type = event_type
        self.field = field
        super().__init__(f"{event_type}: field {field!r} has no proto3 equivalent: {why}")


def file_name(event_type: str) -> str:
    """The .proto file of ``event_type``: ``post.liked.v1`` -> ``post_liked_v1.proto``."""
    return event_type.replace(".", "_") + ".proto"


def render(topology: Topology, previous: Mapping[str, str] | None = None) -> dict[str, str]:
    """``proto/<file name>`` -> exact text of the .proto file of every event type.

    Args:
        topology: whose event types to write.
        previous: the files as generated before, by the same keys (see :func:`checked_in`);
            their field numbers are kept.

    Raises:
        UnsupportedShapeError: a field has no proto3 equivalent.
        ToolkitError: two event types would share a file name.
    """
    files: dict[str, str] = {}
    owners: dict[str, str] = {}
    for model in topology.registry:
        key = f"{PROTO_DIR}/{file_name(model.event_type)}"
        if key in owners:
            raise ToolkitError(
                f"event types {owners[key]} and {model.event_type} would both be written to "
                f"{key}; rename one (dots and underscores are the same in a .proto file name)"
            )
        owners[key] = model.event_type
        files[key] = proto_file(model, (previous or {}).get(key))
    return files


def checked_in(output_dir: Path) -> dict[str, str]:
    """The .proto files already under ``output_dir``, by the keys :func:`render` uses."""
    folder = output_dir / PROTO_DIR
    return {f"{PROTO_DIR}/{path.name}": path.read_text() for path in sorted(folder.glob("*.proto"))}


def proto_file(model: type[Event], previous: str | None = None) -> str:
    """The proto3 file of ``model``'s data.

    Args:
        model: the event model.
        previous: this file as generated before, if any: its field numbers are kept.

    Raises:
        UnsupportedShapeError: a field has no proto3 equivalent.
    """
    builder = _Builder(model)
    before = _numbers_in(previous or "")
    lines = _header(model)
    if builder.uses_value:
        lines += [f'import "{_STRUCT_PROTO}";', ""]
    for message in builder.messages:
        lines += _message_lines(message, before.get(message.name))
    return "\n".join(lines[:-1]) + "\n"


@dataclass(frozen=True)
class _Type:
    name: str  # as written in the .proto: "string", "FieldChange", "map<string, int32>"
    repeated: bool = False
    optional: bool = False
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """What must stay the same for a field to keep its number."""
        return _type_key(self.name, repeated=self.repeated)


@dataclass(frozen=True)
class _Field:
    name: str
    wire_name: str
    type: _Type
    comments: tuple[str, ...]


@dataclass(frozen=True)
class _Message:
    name: str
    description: str
    fields: tuple[_Field, ...]


@dataclass
class _Numbers:
    fields: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (number, type key)
    reserved_numbers: set[int] = field(default_factory=set)
    reserved_names: set[str] = field(default_factory=set)


class _Builder:
    """Reads an event's JSON schema into messages; raises on a shape proto3 cannot carry."""

    def __init__(self, model: type[Event]) -> None:
        self.event_type = model.event_type
        schema = model.json_schema()
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.names = {
            key: re.sub(r"\W", "_", key) for key in self.defs if _is_model(self.defs[key])
        }
        root_key = schema.get("$ref", "").removeprefix("#/$defs/")  # a self-referencing model
        if root_key:
            self.names[root_key] = model.__name__
            schema = {**self.defs[root_key], **schema}
        self.uses_value = False
        self._inlining: set[str] = set()
        self.messages = [self._message(model.__name__, schema, where="")]
        for key in sorted(self.names.keys() - {root_key}):
            name = self.names[key]
            if name in {m.name for m in self.messages}:
                raise UnsupportedShapeError(
                    self.event_type, key, f"its message name {name} is taken; rename the model"
                )
            self.messages.append(self._message(name, self.defs[key], where=f"{name}."))

    def _error(self, where: str, why: str) -> UnsupportedShapeError:
        return UnsupportedShapeError(self.event_type, where, why)

    def _message(self, name: str, schema: dict[str, Any], where: str) -> _Message:
        if schema.get("additionalProperties", False) is not False:
            raise self._error(where.rstrip(".") or name, "a model that accepts extra fields")
        required = set(schema.get("required", ()))
        fields = []
        for wire_name, prop in schema.get("properties", {}).items():
            kind = self.type_of(prop, where + wire_name)
            comments = _comments(prop, kind, wire_name in required)
            fields.append(_Field(_field_name(wire_name), wire_name, kind, comments))
        self._check_names(fields, where)
        return _Message(name, str(schema.get("description", "")), tuple(fields))

    def _check_names(self, fields: list[_Field], where: str) -> None:
        # protoc refuses two fields whose *default* JSON names clash, even with json_name set.
        seen: dict[str, str] = {}
        for f in fields:
            for key in {f.name, _default_json_name(f.name)}:
                other = seen.setdefault(key, f.wire_name)
                if other != f.wire_name:
                    raise self._error(
                        where + f.wire_name,
                        f"its proto field name {f.name} clashes with that of {other!r}",
                    )

    def type_of(self, schema: dict[str, Any], where: str) -> _Type:
        """The proto type of a field, list item or map value of this JSON schema."""
        for keyword in ("oneOf", "not", "if", "prefixItems"):
            if keyword in schema:
                raise self._error(where, f"a {keyword} schema (a union or a fixed-size tuple)")
        if "anyOf" in schema:
            return self._union(schema, where)
        if "allOf" in schema:
            return self._all_of(schema, where)
        if "$ref" in schema:
            return self._ref(schema, where)
        if "enum" in schema or "const" in schema:
            return self._choice(schema, where)
        return self._typed(schema, where)

    def _typed(self, schema: dict[str, Any], where: str) -> _Type:
        kind = schema.get("type")
        if kind is None:
            return self._value()
        if not isinstance(kind, str):
            raise self._error(where, f"a value of several JSON types ({kind})")
        if kind in _SCALARS:
            return _Type(_SCALARS[kind], notes=_constraints(schema))
        if kind == "integer":
            return _integer(schema)
        if kind == "array":
            return self._list(schema, where)
        if kind == "object":
            return self._map(schema, where)
        raise self._error(where, f"a value of JSON type {kind!r}")

    def _all_of(self, schema: dict[str, Any], where: str) -> _Type:
        [member, *others] = schema["allOf"]
        if others:
            raise self._error(where, "an allOf of several schemas")
        return self.type_of({**member, **{k: v for k, v in schema.items() if k != "allOf"}}, where)

    def _union(self, schema: dict[str, Any], where: str) -> _Type:
        members = [m for m in schema["anyOf"] if m.get("type") != "null"]
        if len(members) != 1:
            raise self._error(where, "a union of several types; only X | None has one")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        inner = self.type_of({**members[0], **rest}, where)
        return self._optional(inner, where) if len(schema["anyOf"]) > 1 else inner

    def _optional(self, inner: _Type, where: str) -> _Type:
        if inner.name == _VALUE and not inner.repeated:
            return inner  # a Value holds null itself
        if inner.repeated or inner.name.startswith("map<"):
            raise self._error(
                where,
                "an optional list or map: proto3 cannot tell null from empty; make the field "
                "non-optional with an empty default",
            )
        return replace(inner, optional=True, notes=(*inner.notes, "null = absent"))

    def _ref(self, schema: dict[str, Any], where: str) -> _Type:
        key = schema["$ref"].removeprefix("#/$defs/")
        if key in self.names:
            return _Type(self.names[key])
        if key in self._inlining or key not in self.defs:
            raise self._error(
                where, f"a recursive or unresolvable type {key!r} that is not a model"
            )
        self._inlining.add(key)  # an enum or an alias: written in place
        try:
            return self.type_of(
                {**self.defs[key], **{k: v for k, v in schema.items() if k != "$ref"}}, where
            )
        finally:
            self._inlining.discard(key)

    def _choice(self, schema: dict[str, Any], where: str) -> _Type:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        present = [v for v in values if v is not None]
        listed = ", ".join(json.dumps(v, ensure_ascii=False) for v in present)
        note = f"always {listed}" if len(present) == 1 else f"one of: {listed}"
        if present and all(isinstance(v, str) for v in present):
            kind = _Type("string", notes=(note,))
        elif present and all(isinstance(v, bool) for v in present):
            kind = _Type("bool", notes=(note,))
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            kind = _integer({"minimum": min(present), "maximum": max(present)}, (note,))
        else:
            raise self._error(where, f"a choice among values of several JSON types ({listed})")
        return self._optional(kind, where) if len(present) < len(values) else kind

    def _list(self, schema: dict[str, Any], where: str) -> _Type:
        item = self.type_of(schema.get("items", {}), where + "[]")
        if item.repeated or item.name.startswith("map<"):
            raise self._error(where, "a list of lists or of maps (proto3 cannot nest repeated)")
        if item.optional:
            raise self._error(where, "a list whose items may be null; use list[Any] instead")
        notes = _range("items", schema.get("minItems"), schema.get("maxItems"))
        if schema.get("uniqueItems"):
            notes.append("unique items")
        notes += [f"each item: {note}" for note in item.notes]
        return _Type(item.name, repeated=True, notes=tuple(notes))

    def _map(self, schema: dict[str, Any], where: str) -> _Type:
        if "properties" in schema:
            raise self._error(where, "an object with fields that is not a model")
        values = schema.get("additionalProperties", True)
        if values is False:
            raise self._error(where, "an object that is always empty")
        value = self._value() if values is True else self.type_of(values, where + "{}")
        if value.repeated or value.name.startswith("map<") or value.optional:
            raise self._error(where, "a map of lists, maps or optional values; use Any values")
        notes = _range("entries", schema.get("minProperties"), schema.get("maxProperties"))
        notes += [f"each key: {note}" for note in _constraints(schema.get("propertyNames", {}))]
        notes += [f"each value: {note}" for note in value.notes]
        return _Type(f"map<string, {value.name}>", notes=tuple(notes))

    def _value(self) -> _Type:
        self.uses_value = True
        return _Type(_VALUE, notes=("any JSON value; numbers are doubles (exact up to 2^53)",))


def _is_model(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _field_name(wire_name: str) -> str:
    """A proto identifier for a wire name; the wire name itself goes in ``json_name``."""
    if _IDENTIFIER.match(wire_name):
        return wire_name
    name = re.sub(r"\W", "_", wire_name, flags=re.ASCII)
    return name if _IDENTIFIER.match(name) else f"f_{name}"


def _default_json_name(name: str) -> str:
    """protoc's lowerCamelCase JSON name of a field (``a_b`` -> ``aB``)."""
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _integer(schema: dict[str, Any], notes: tuple[str, ...] = ()) -> _Type:
    low, high = (
        _bound(schema, "minimum", "exclusiveMinimum", 1),
        _bound(schema, "maximum", "exclusiveMaximum", -1),
    )
    notes = notes or _constraints(schema)
    if low is not None and high is not None and low >= _INT32_MIN and high <= _INT32_MAX:
        return _Type("int32", notes=notes)
    return _Type("int64", notes=(*notes, 'int64: proto3 JSON prints it as a string ("5")'))


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, step: int) -> int | None:
    if inclusive in schema:
        value = float(schema[inclusive])
        return math.ceil(value) if step > 0 else math.floor(value)
    if exclusive in schema:
        value = float(schema[exclusive])
        return math.floor(value) + 1 if step > 0 else math.ceil(value) - 1
    return None


def _constraints(schema: dict[str, Any]) -> tuple[str, ...]:
    """What a string or number schema says beyond its type, in words."""
    notes = []
    if schema.get("format") == "date-time":
        notes.append("RFC 3339 date-time, exactly as sent")
    elif "format" in schema:
        notes.append(f"format: {schema['format']}")
    notes += _range("length", schema.get("minLength"), schema.get("maxLength"))
    if "pattern" in schema:
        notes.append(f"pattern: {schema['pattern']}")
    for keyword, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
    ):
        if keyword in schema:
            notes.append(f"{sign} {schema[keyword]}")
    return tuple(notes)


def _range(what: str, low: int | None, high: int | None) -> list[str]:
    if low is not None and high is not None:
        return [f"{what} {low} to {high}"]
    if low is not None:
        return [f"{what} >= {low}"]
    if high is not None:
        return [f"{what} <= {high}"]
    return []


def _comments(prop: dict[str, Any], kind: _Type, required: bool) -> tuple[str, ...]:
    lines = [line.strip() for line in str(prop.get("description", "")).splitlines()]
    if required:
        facts = ["required"]
    elif "default" in prop:
        facts = [f"default {json.dumps(prop['default'], ensure_ascii=False, sort_keys=True)}"]
    else:
        facts = ["not required"]
    lines.append("; ".join(facts + list(kind.notes)))
    members = [prop, *prop.get("anyOf", ())]
    if any(m.get("x-sensitive") for m in members):
        lines.append("sensitive: never log")
    keys = sorted({k for m in members for k in m.get("x-sensitive-keys", ())})
    if keys:
        lines.append(
            f"sensitive: never log what is under the keys {', '.join(keys)} (any case, any depth)"
        )
    return tuple(line for line in lines if line)


def _header(model: type[Event]) -> list[str]:
    event_type = json.dumps(model.event_type)
    subject = f" (the value of {model.subject_field})" if model.subject_field else ""
    actor = f" Who caused the event: {model.actor_field}." if model.actor_field else ""
    about = (
        f"Event type {event_type} on Pub/Sub (CloudEvents, binary content mode): the message "
        f"data is {model.__name__} in proto3 JSON, each field under its json_name (its name on "
        "the wire); null and an absent field are the same value. The envelope travels as "
        f"message attributes: {wire.ATTR_SPECVERSION}, {wire.ATTR_ID}, {wire.ATTR_TYPE} "
        f"({event_type}), {wire.ATTR_SOURCE}, {wire.ATTR_TIME}, {wire.ATTR_CONTENT_TYPE} "
        f'("{wire.CONTENT_TYPE}") and, when set, {wire.ATTR_SUBJECT}{subject}, '
        f"{wire.ATTR_CORRELATION}, {wire.ATTR_TRACEPARENT}, {wire.ATTR_TRACESTATE}.{actor}"
    )
    usage = (
        "Consumers: parse ignoring unknown fields (a newer producer may add some). Producers: "
        "print fields without presence too (our models refuse a required field left out). "
        "Field numbers are kept when this file is regenerated, and removed ones reserved."
    )
    return [
        f"// Generated by `pubsub-kit schema` from {model.__module__}.{model.__qualname__}; "
        "do not edit by hand.",
        "//",
        *(f"// {line}" for line in textwrap.wrap(about, 96, break_on_hyphens=False)),
        *(f"// {line}" for line in textwrap.wrap(usage, 96, break_on_hyphens=False)),
        "",
        'syntax = "proto3";',
        "",
        f"package {PACKAGE_PREFIX}.{model.event_type};",
        "",
    ]


def _message_lines(message: _Message, before: _Numbers | None) -> list[str]:
    numbers, reserved_numbers, reserved_names = _numbering(message, before)
    lines = [f"// {line.strip()}".rstrip() for line in message.description.strip().splitlines()]
    lines.append(f"message {message.name} {{")
    if reserved_numbers:
        lines.append(f"  reserved {', '.join(map(str, reserved_numbers))};")
    if reserved_names:
        lines.append(f"  reserved {', '.join(json.dumps(n) for n in reserved_names)};")
    for f, number in zip(message.fields, numbers, strict=True):
        lines += [f"  // {comment}" for comment in f.comments]
        label = "repeated " if f.type.repeated else "optional " if f.type.optional else ""
        json_name = json.dumps(f.wire_name, ensure_ascii=False)
        lines.append(f"  {label}{f.type.name} {f.name} = {number} [json_name = {json_name}];")
    return [*lines, "}", ""]


def _numbering(
    message: _Message, before: _Numbers | None
) -> tuple[list[int], list[int], list[str]]:
    """Field numbers, reserved numbers and reserved names, keeping those of ``before``."""
    if before is None:
        return list(range(1, len(message.fields) + 1)), [], []
    taken = before.reserved_numbers | {number for number, _ in before.fields.values()}
    fresh = (n for n in itertools.count(max(taken, default=0) + 1) if n not in _PROTOBUF_RESERVED)
    numbers = []
    for f in message.fields:
        number, key = before.fields.get(f.name, (0, ""))
        numbers.append(number if key == f.type.key else next(fresh))
    names = {f.name for f in message.fields}
    reserved_names = (before.reserved_names | before.fields.keys()) - names
    return numbers, sorted(taken - set(numbers)), sorted(reserved_names)


def _type_key(name: str, *, repeated: bool) -> str:
    """A field's type as compared across versions: ``.google.x`` and ``google.x`` are one."""
    name = re.sub(r"(^|[<, ])\.", r"\1", name)
    return f"repeated {name}" if repeated else name


def _numbers_in(text: str) -> dict[str, _Numbers]:
    """Message name -> the field numbers and reservations of a file this module wrote."""
    found: dict[str, _Numbers] = {}
    current: _Numbers | None = None
    for line in text.splitlines():
        if match := _MESSAGE_LINE.match(line):
            current = found.setdefault(match["name"], _Numbers())
        elif current is None or line.startswith("  //"):
            continue
        elif match := _FIELD_LINE.match(line):
            key = _type_key(match["type"], repeated=match["label"] == "repeated ")
            current.fields[match["name"]] = (int(match["number"]), key)
        elif match := _RESERVED_LINE.match(line):
            for item in match["items"].split(", "):
                if item.startswith('"'):
                    current.reserved_names.add(json.loads(item))
                else:
                    current.reserved_numbers.add(int(item))
        elif line == "}":
            current = None
    return found
