"""The compatibility gate: may a model change keep its event type, or is it a new version?

``pubsub-kit contracts check`` compares the JSON Schema of every event type of the topology with
the checked-in contract (``docs/contracts/<type>.schema.json``, or those of a git ref with
``--against``) and classifies each difference. From Python::

    old = checked_in_schemas(Path("docs/contracts"))
    for change in compare_contracts(old, event_schemas(TOPOLOGY)):
        print(change.sentence)  # change.breaking, change.rule, change.path

The principle
-------------
A change is *compatible* when every event valid under the old contract is still valid under the
new one, and no field an old reader relies on disappears or changes type. Such a change has a safe
roll-out order: consumers first (their new model accepts whatever producers, queued messages and
dead-letter replays still carry), producers after. A *breaking* change has no such order: publish
it as a new event type (``post.liked.v2``) next to the old one, and keep the old one until no
producer sends it.

Compatible does not mean "in any order". A consumer reading tolerantly sets aside a field it does
not know, but a widened type, a new enum value or a relaxed constraint lets a producer send what a
consumer still on the old model rejects, and a model that refuses unknown fields
(``extra="forbid"``) rejects a new one outright. Upgrade consumers before producers use what the
change allows.

The rules
---------
=============================  ==========  =================================================
rule                           verdict     example
=============================  ==========  =================================================
removed or renamed             breaking    ``liker_id`` gone (a rename is removal + addition)
new field is required          breaking    ``score: int`` added
new optional field             compatible  ``note: str | None = None`` added
optional made required         breaking    ``note: str = ""`` -> ``note: str``
required made optional         compatible  ``note: str`` -> ``note: str = ""``
type changed                   breaking    ``int`` -> ``str``; ``str | None`` -> ``str``
type widened                   compatible  ``int`` -> ``int | None``; ``int`` -> ``float``
enum narrowed                  breaking    ``Literal["a", "b"]`` -> ``Literal["a"]``
enum widened                   compatible  ``Literal["a"]`` -> ``Literal["a", "b"]``
constraint tightened           breaking    ``max_length`` 128 -> 64; a pattern or format added
constraint relaxed             compatible  ``max_length`` 64 -> 128; a pattern removed
unchecked keyword changed      breaking    a keyword the gate does not compare (``not``, ...)
annotation changed             compatible  description, title, examples, default
sensitivity changed            compatible  ``Sensitive`` or ``SensitiveKeys`` added or removed
retired                        breaking    a type in the contracts that the topology lost
retired as declared            compatible  the same, named with ``--retire TYPE``
new                            compatible  a type the contracts do not have yet
=============================  ==========  =================================================

How two schemas are compared: both are read as pydantic writes them (draft 2020-12). ``$ref`` is
followed into each side's own ``$defs`` (renaming a model class changes only its title), field
by field with a dotted path (``changes.*.new`` for a mapping's values, ``tags[]`` for a list's
items, ``pair[0]`` for a tuple's positions). ``anyOf``/``oneOf`` members and ``type`` lists are
alternatives: each old alternative must be covered by a new one of the same type (or a wider one:
``integer`` by ``number``, anything by an unconstrained ``{}``), and is compared further with the
one that fits best; new alternatives widen the type. Numeric bounds are compared as bounds
(``minimum: 0`` -> ``exclusiveMinimum: 0`` is tightened), ``multipleOf`` by divisibility.

Limitations. The gate sees the schema, not the code: a ``field_validator`` or ``model_validator``
that refuses more than before is invisible to it, as is a changed meaning under the same shape. A
changed default is reported but not breaking, although a reader of an event that left the field
out now sees another value. The rest errs on the side of breaking: patterns and formats are
compared as text (a changed pattern is tightened even when it accepts more); a keyword the gate
does not compare (``not``, ``if``, ``patternProperties``, ``allOf`` of several schemas, ...) is
breaking whenever it changes; enum values are compared as JSON text (``1`` and ``1.0`` differ). A
union member that is gone is reported through the member that would now have to take its events
(``v.kind`` enum narrowed), not by name. A schema that is not JSON Schema as pydantic writes it is
refused by :func:`check_shape` with a sentence, before any comparison.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from shared.errors import ToolkitError

CONTRACTS_DIR = "docs/contracts"  # relative to the project root, as `pubsub-kit schema` writes it
SCHEMA_SUFFIX = ".schema.json"

Schema = Mapping[str, Any]


class Rule(enum.Enum):
    """A kind of change, with what the gate says about it."""

    label: str
    breaking: bool
    phrase: str
    reason: str

    def __init__(self, label: str, breaking: bool, phrase: str, reason: str) -> None:
        self.label = label  # the rule's name, as reported
        self.breaking = breaking  # whether it fails the gate
        self.phrase = phrase  # what happened, with {subject}
        self.reason = reason  # why it is (not) breaking, with {type}

    FIELD_REMOVED = (
        "removed or renamed",
        True,
        "{subject} removed or renamed",
        "readers written for {type} need it",
    )
    """A field of the old contract is gone; a rename is a removal and an addition."""
    NEW_REQUIRED = (
        "new field is required",
        True,
        "{subject} added, and the new field is required",
        "producers written for {type} do not send it, so their events no longer fit",
    )
    """A field that old producers do not send is required."""
    NEW_OPTIONAL = (
        "new optional field",
        False,
        "{subject} added as a new optional field",
        "events without it still fit; upgrade consumers before producers send it",
    )
    """A field old events may leave out."""
    MADE_REQUIRED = (
        "optional made required",
        True,
        "{subject} optional made required",
        "producers written for {type} may leave it out",
    )
    """A field old events may leave out must now be sent."""
    MADE_OPTIONAL = (
        "required made optional",
        False,
        "{subject} required made optional",
        "every old event still fits; upgrade consumers before producers leave it out",
    )
    """A required field may now be left out."""
    TYPE_CHANGED = (
        "type changed",
        True,
        "{subject} type changed",
        "events valid for {type} may no longer fit, and readers expect the old type",
    )
    """A type the old contract allowed is no longer allowed."""
    TYPE_WIDENED = (
        "type widened",
        False,
        "{subject} type widened",
        "every old event still fits; upgrade consumers before producers send the new type",
    )
    """Every value of the old type is still valid (``null`` added, ``integer`` to ``number``)."""
    ENUM_NARROWED = (
        "enum narrowed",
        True,
        "{subject} enum narrowed",
        "producers written for {type} may still send the values it lost",
    )
    """An enum or ``Literal`` lost values (or a free value became an enum)."""
    ENUM_WIDENED = (
        "enum widened",
        False,
        "{subject} enum widened",
        "every old event still fits; upgrade consumers before producers send the new values",
    )
    """An enum or ``Literal`` gained values."""
    CONSTRAINT_TIGHTENED = (
        "constraint tightened",
        True,
        "{subject} constraint tightened",
        "events valid for {type} may no longer fit",
    )
    """A bound, pattern, format, uniqueness or closed object refuses values it accepted."""
    CONSTRAINT_RELAXED = (
        "constraint relaxed",
        False,
        "{subject} constraint relaxed",
        "every old event still fits; upgrade consumers before producers rely on it",
    )
    """A constraint was loosened or removed."""
    UNCHECKED = (
        "unchecked keyword changed",
        True,
        "{subject} unchecked keyword changed",
        "the gate does not compare this keyword, so it cannot tell whether old events still fit",
    )
    """A keyword the gate does not compare changed; assumed breaking."""
    ANNOTATION = (
        "annotation changed",
        False,
        "{subject} annotation changed",
        "annotations do not change which events are valid",
    )
    """A description, title, examples, default or other annotation changed."""
    SENSITIVITY = (
        "sensitivity changed",
        False,
        "{subject} sensitivity changed",
        "validation is unchanged; check that what reaches logs and the audit store is as meant",
    )
    """``Sensitive`` or ``SensitiveKeys`` markers changed: what is redacted, not what is valid."""
    RETIRED = (
        "retired",
        True,
        "event type retired",
        "consumers of {type} may still receive it from queued messages and dead-letter "
        "replays; keep its model until no producer sends it, or declare the retirement with "
        "--retire {type}",
    )
    """An event type of the contracts is no longer in the topology."""
    RETIRED_DECLARED = (
        "retired as declared",
        False,
        "event type retired as declared with --retire",
        "its producers and consumers are meant to be gone",
    )
    """The same, named with ``--retire``."""
    NEW_TYPE = (
        "new",
        False,
        "new event type",
        "no contract exists for it yet",
    )
    """An event type the contracts do not have yet."""


@dataclasses.dataclass(frozen=True)
class Change:
    """One classified difference between an event type's old and new contract.

    Attributes:
        event_type: the event type, e.g. ``post.liked.v1``.
        path: dotted path of the field (``changes.*.new``, ``tags[]``); ``""`` for the event.
        rule: which rule it falls under.
        detail: the specifics, e.g. ``maxLength 128 to 64`` (may be empty).
    """

    event_type: str
    path: str
    rule: Rule
    detail: str = ""

    @property
    def breaking(self) -> bool:
        """Whether this change fails the gate."""
        return self.rule.breaking

    @property
    def sentence(self) -> str:
        """The change in one line: type, field, rule, verdict, why, and what to do."""
        subject = f"field '{self.path}'" if self.path else "the event data"
        what = self.rule.phrase.format(subject=subject)
        if self.detail:
            what += f" ({self.detail})"
        verdict = "breaking" if self.breaking else "compatible"
        reason = self.rule.reason.format(type=self.event_type)
        text = f"{self.event_type}: {what}: {verdict}; {reason}."
        if self.breaking and self.rule is not Rule.RETIRED:
            text += (
                f" Publish the change as a new version ({next_version(self.event_type)}) "
                f"and keep {self.event_type} until no producer sends it."
            )
        return text

    def as_json(self) -> dict[str, str]:
        """The change as a JSON object (for ``--json``)."""
        return {
            "event_type": self.event_type,
            "path": self.path,
            "rule": self.rule.label,
            "verdict": "breaking" if self.breaking else "compatible",
            "detail": self.detail,
            "sentence": self.sentence,
        }


def next_version(event_type: str) -> str:
    """``post.liked.v1`` -> ``post.liked.v2``; a type without a version gets ``.v2`` appended."""
    match = re.fullmatch(r"(.*\.v)([0-9]+)", event_type)
    return f"{match[1]}{int(match[2]) + 1}" if match else f"{event_type}.v2"


# --- contracts: what changed per event type -------------------------------------------------


def compare_contracts(
    old: Mapping[str, Schema], new: Mapping[str, Schema], *, retire: Iterable[str] = ()
) -> list[Change]:
    """Every change from the ``old`` contracts to the ``new`` ones (event type -> JSON Schema).

    Args:
        old: the checked-in (or a git ref's) schemas.
        new: the schemas of the current models.
        retire: event types that are meant to be gone: reported, but not breaking.

    Returns:
        The changes, sorted by event type; a type present in both keeps its fields' order.

    Raises:
        ToolkitError: a type in ``retire`` is still in ``new``.
    """
    retired = set(retire)
    still_declared = sorted(retired & set(new))
    if still_declared:
        raise ToolkitError(
            f"--retire {still_declared[0]}: the topology still declares it; "
            "remove its model first, or leave it out of --retire"
        )
    changes: list[Change] = []
    for event_type in sorted(set(old) | set(new)):
        if event_type not in new:
            rule = Rule.RETIRED_DECLARED if event_type in retired else Rule.RETIRED
            changes.append(Change(event_type, "", rule))
        elif event_type not in old:
            changes.append(Change(event_type, "", Rule.NEW_TYPE))
        else:
            changes += compare_schemas(event_type, old[event_type], new[event_type])
    return changes


def compare_schemas(event_type: str, old: Schema, new: Schema) -> list[Change]:
    """The changes from ``old`` to ``new``, two JSON Schemas of ``event_type``'s data.

    Both must be well-formed (:func:`check_shape`); pydantic's always are.
    """
    walk = _Walk(old, new)
    _compare(walk, "", old, new)
    seen: set[tuple[str, Rule, str]] = set()
    changes = []
    for found in walk.found:
        if found not in seen:  # alternatives compared twice report the same thing twice
            seen.add(found)
            changes.append(Change(event_type, *found))
    return changes


def summary(changes: Sequence[Change], checked: int, against: str) -> str:
    """One line: how many types were checked against what, what changed, and the verdict."""
    breaking = sum(change.breaking for change in changes)
    types = f"{checked} event type{'' if checked == 1 else 's'}"
    if not changes:
        found = "no change"
    else:
        found = f"{len(changes)} change{'' if len(changes) == 1 else 's'} ({breaking} breaking)"
    verdict = "fails" if breaking else "passes"
    return f"contracts check against {against}: {types}, {found}: {verdict}"


# --- loading the old contracts ----------------------------------------------------------------


def checked_in_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """Event type -> schema, from the ``<type>.schema.json`` files in ``folder``.

    Raises:
        ToolkitError: the folder is missing, or a file is unreadable or not a JSON Schema.
    """
    if not folder.is_dir():
        raise ToolkitError(
            f"no contracts folder at {folder}; write it with `pubsub-kit schema` and check it in"
        )
    schemas = {}
    for path in sorted(folder.glob(f"*{SCHEMA_SUFFIX}")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ToolkitError(f"cannot read {path}: {_reason(exc)}") from None
        schemas[path.name.removesuffix(SCHEMA_SUFFIX)] = parse_schema(text, str(path))
    return schemas


def schemas_at_ref(root: Path, ref: str, folder: str = CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Event type -> schema, from ``folder`` (relative to ``root``) as committed at git ``ref``.

    Raises:
        ToolkitError: ``root`` is not in a git repository, ``ref`` is unknown, the folder is not
            in it, or a file is not a JSON Schema.
    """
    if not ref or ref.startswith("-"):
        raise ToolkitError(f"--against takes a git ref such as origin/main; found {ref!r}")
    if _git(root, "rev-parse", "--git-dir").returncode != 0:
        raise ToolkitError(
            f"{root} is not in a git repository, so there is no {ref} to compare with; "
            "leave out --against to use the checked-in contracts"
        )
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise ToolkitError(
            f"unknown git ref {ref!r}: name a branch, tag or commit "
            "(in CI, fetch the target branch first: git fetch origin main)"
        )
    commit = found.stdout.decode().strip()
    listed = _git(root, "ls-tree", "-z", "--name-only", "--full-name", commit, "--", f"{folder}/")
    names = [n for n in listed.stdout.decode().split("\0") if n.endswith(SCHEMA_SUFFIX)]
    if listed.returncode != 0 or not names:
        raise ToolkitError(f"{ref} has no {folder}/*{SCHEMA_SUFFIX}, so there is nothing to check")
    schemas = {}
    for name in sorted(names):
        source = f"{ref}:{name}"
        shown = _git(root, "show", f"{commit}:{name}")
        if shown.returncode != 0:
            raise ToolkitError(f"cannot read {source}: {shown.stderr.decode().strip()}")
        try:
            text = shown.stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolkitError(f"{source} is not UTF-8 text, so not JSON") from None
        schemas[Path(name).name.removesuffix(SCHEMA_SUFFIX)] = parse_schema(text, source)
    return schemas


def parse_schema(text: str, source: str) -> dict[str, Any]:
    """The JSON Schema in ``text``, checked by :func:`check_shape`; errors name ``source``."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolkitError(
            f"{source} is not JSON ({exc.msg} at line {exc.lineno}); "
            "regenerate it with `pubsub-kit schema`"
        ) from None
    except RecursionError:
        raise ToolkitError(f"{source} is nested too deeply to be an event's schema") from None
    if not isinstance(schema, dict):
        raise ToolkitError(
            f"{source} is not a JSON Schema: expected an object, found {_kind_of(schema)}"
        )
    check_shape(schema, source)
    return schema


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise ToolkitError("--against needs git, and there is no git on PATH") from None
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"git {args[0]} did not answer within 60 s") from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


# --- the shape a schema must have for the comparison ------------------------------------------

_NUMBERS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_LISTS_OF_SCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAPS_OF_SCHEMAS = ("properties", "$defs")
_SCHEMA_OR_BOOL = ("items", "additionalProperties")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# (keywords, the test their value must pass, what was expected)
_SHAPES: tuple[tuple[tuple[str, ...], Callable[[Any], bool], str], ...] = (
    (_MAPS_OF_SCHEMAS, lambda v: isinstance(v, dict), "an object"),
    (_LISTS_OF_SCHEMAS, lambda v: isinstance(v, list) and bool(v), "a non-empty list"),
    (_SCHEMA_OR_BOOL, lambda v: isinstance(v, dict | bool), "a schema or a boolean"),
    (_NUMBERS, _is_number, "a number"),
    (("pattern", "format", "$ref"), lambda v: isinstance(v, str), "a string"),
    (("required", "x-sensitive-keys"), _is_names, "a list of names"),
    (("enum",), lambda v: isinstance(v, list), "a list"),
    (("type",), lambda v: isinstance(v, str) or _is_names(v), "a type name or a list of them"),
)


def check_shape(schema: Schema, source: str) -> None:
    """Refuse a schema whose keywords the comparison cannot read, with a sentence naming where.

    Raises:
        ToolkitError: e.g. ``properties`` is not an object, ``required`` is not a list of names,
            a bound is not a number, or a ``$ref`` points nowhere.
    """
    try:
        for where, node in _subschemas(schema, ""):
            problem = _shape_problem(schema, node)
            if problem:
                raise ToolkitError(
                    f"{source} is not a JSON Schema this gate can read: "
                    f"at '{where or '/'}', {problem}"
                )
    except RecursionError:
        raise ToolkitError(f"{source} is nested too deeply to be an event's schema") from None


def _subschemas(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, subschema) in ``node``, itself first; non-objects are yielded too."""
    yield where, node
    if not isinstance(node, dict):
        return
    for key in _MAPS_OF_SCHEMAS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                yield from _subschemas(sub, f"{where}/{key}/{name}")
    for key in _LISTS_OF_SCHEMAS:
        if isinstance(node.get(key), list):
            for index, sub in enumerate(node[key]):
                yield from _subschemas(sub, f"{where}/{key}/{index}")
    for key in _SCHEMA_OR_BOOL:
        if isinstance(node.get(key), dict):
            yield from _subschemas(node[key], f"{where}/{key}")


def _shape_problem(root: Schema, node: Any) -> str | None:
    """What is wrong with ``node`` as a schema, or ``None``."""
    if not isinstance(node, dict):
        return f"expected a schema (an object), found {_kind_of(node)}"
    for keys, valid, expected in _SHAPES:
        for key in keys:
            if key in node and not valid(node[key]):
                return f"{key} must be {expected}, found {_kind_of(node[key])}"
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and _pointer(root, ref) is None:
        return f"$ref {ref!r} points to nothing in this file"
    return None


def _kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _pointer(root: Schema, ref: str) -> dict[str, Any] | None:
    """The schema a local ``$ref`` (``#/$defs/Name``) points to, or ``None``."""
    node: Any = root
    for part in ref.removeprefix("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


# --- the comparison ---------------------------------------------------------------------------

# Keywords that describe rather than constrain; a change in them is compatible.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
    }
)
_SENSITIVITY = frozenset({"x-sensitive", "x-sensitive-keys"})
# Keywords that are the same by construction ($id, x-event-type), that hold what $ref points to
# ($defs), or whose effect is compared through the alternatives (discriminator).
_IGNORED = frozenset({"$id", "$schema", "$defs", "definitions", "x-event-type", "discriminator"})
# Keywords a pair of alternatives is compared on (besides the ones _resolve folds away).
_COMPARED = frozenset(
    {
        *_NUMBERS,
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "format",
        "pattern",
        "uniqueItems",
    }
)


@dataclasses.dataclass
class _Walk:
    """The state of one comparison: both roots (for ``$ref``), what was found, cycle guard."""

    old_root: Schema
    new_root: Schema
    found: list[tuple[str, Rule, str]] = dataclasses.field(default_factory=list)
    # Pairs of $ref chains being compared further up: a recursive model stops there.
    expanding: set[tuple[tuple[str, ...], tuple[str, ...]]] = dataclasses.field(default_factory=set)

    def add(self, path: str, rule: Rule, detail: str = "") -> None:
        self.found.append((path, rule, detail))

    def fork(self) -> _Walk:
        """A walk that records into its own list, to try one pairing of alternatives."""
        return _Walk(self.old_root, self.new_root, [], self.expanding)


@dataclasses.dataclass(frozen=True)
class _Alternative:
    """One member of a union (or the whole schema when it is not one), ``$ref`` followed."""

    schema: dict[str, Any]
    refs: tuple[str, ...]  # the $refs followed to get here
    kind: str  # JSON type, "any" when unconstrained, "enum" for mixed-type enums
    member: bool  # a member of an anyOf/oneOf, whose own annotations count


def _compare(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Compare two schemas of the same place in the event, recording what changed."""
    old_resolved, old_refs = _resolve(walk.old_root, old)
    new_resolved, new_refs = _resolve(walk.new_root, new)
    _compare_notes(walk, path, _notes(old_resolved), _notes(new_resolved))
    _compare_alternatives(
        walk,
        path,
        _alternatives(walk.old_root, old_resolved, old_refs),
        _alternatives(walk.new_root, new_resolved, new_refs),
    )


def _resolve(root: Schema, schema: Schema) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``schema`` with local ``$ref`` and one-member ``allOf`` merged in (its own keys win)."""
    current = dict(schema)
    refs: list[str] = []
    while True:
        ref = current.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref not in refs:
            refs.append(current.pop("$ref"))
            current = {**(_pointer(root, ref) or {}), **current}
        elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
            (only,) = current.pop("allOf")
            inner, inner_refs = _resolve(root, only)
            refs += inner_refs
            current = {**inner, **current}
        else:
            return current, tuple(refs)


def _notes(schema: Schema) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k in _ANNOTATIONS or _is_note(k)}


def _is_note(key: str) -> bool:
    """An annotation of ours or of a tool (``x-...``), sensitivity markers included."""
    return key.startswith("x-") and key != "x-event-type"


def _body(schema: Schema) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS and not _is_note(k)}


def _alternatives(
    root: Schema, schema: Schema, refs: tuple[str, ...], member: bool = False
) -> list[_Alternative]:
    """The union members of ``schema`` (flattened, ``$ref`` followed), or ``schema`` itself."""
    members = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(members, list):
        shared = {k: v for k, v in _body(schema).items() if k not in ("anyOf", "oneOf")}
        found = []
        for item in members:
            resolved, item_refs = _resolve(root, item)
            if set(item_refs) & set(refs):
                continue  # a union that contains itself adds nothing
            found += _alternatives(root, {**shared, **resolved}, refs + item_refs, member=True)
        return found
    body = schema if member else _body(schema)
    types = body.get("type")
    if isinstance(types, list):  # {"type": ["string", "null"]} is a union too
        return [_Alternative({**body, "type": t}, refs, t, member) for t in dict.fromkeys(types)]
    return [_Alternative(dict(body), refs, _kind(body), member)]


def _kind(schema: Schema) -> str:
    """The JSON type of the values ``schema`` accepts, as far as the comparison needs it."""
    if isinstance(schema.get("type"), str):
        return str(schema["type"])
    values = _values(schema)
    if values is not None:
        kinds = {_json_type(value) for value in values}
        return kinds.pop() if len(kinds) == 1 else "enum"
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "any"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "any")


def _covers(old_kind: str, new_kind: str) -> bool:
    """Whether every value of ``old_kind`` is of ``new_kind`` (before constraints)."""
    return (
        old_kind == new_kind or new_kind == "any" or (old_kind, new_kind) == ("integer", "number")
    )


def _describe(kinds: Iterable[str]) -> str:
    names = {"any": "any value", "enum": "a mixed enum"}
    return " or ".join(names.get(kind, kind) for kind in dict.fromkeys(kinds))


def _label(alternative: _Alternative) -> str:
    """``null``, ``string``, or ``object 'Refund'`` for a model."""
    title = alternative.schema.get("title")
    kind = _describe([alternative.kind])
    return f"{kind} {title!r}" if alternative.kind == "object" and isinstance(title, str) else kind


def _compare_alternatives(
    walk: _Walk, path: str, old: list[_Alternative], new: list[_Alternative]
) -> None:
    """Pair each old alternative with the new one that covers it best, and compare them."""
    used: set[int] = set()
    lost: list[str] = []
    for alternative in old:
        best = _pair(walk, path, alternative, new, used)
        if best is None:
            lost.append(alternative.kind)
        else:
            used.add(best)
    if lost and len(lost) == len(old):
        walk.add(path, Rule.TYPE_CHANGED, f"{_describe(lost)} to {_describe(n.kind for n in new)}")
        return
    if lost:
        walk.add(path, Rule.TYPE_CHANGED, f"{_describe(lost)} no longer allowed")
    gained = [_label(n) for i, n in enumerate(new) if i not in used and _adds(walk, path, n, old)]
    if gained:  # a union member added, e.g. null or another model
        walk.add(path, Rule.TYPE_WIDENED, f"now also {' or '.join(dict.fromkeys(gained))}")


def _pair(
    walk: _Walk, path: str, old: _Alternative, new: list[_Alternative], used: set[int]
) -> int | None:
    """Compare ``old`` with its best-fitting new alternative; that one's index, or ``None``."""
    trials = [(_try(walk, path, old, n), i) for i, n in enumerate(new) if _covers(old.kind, n.kind)]
    if not trials:
        return None
    found, best = min(
        trials, key=lambda trial: _cost(trial[0], old, new[trial[1]], trial[1] in used)
    )
    if new[best].kind != old.kind:
        widened = f"{_describe([old.kind])} to {_describe([new[best].kind])}"
        walk.add(path, Rule.TYPE_WIDENED, widened)
    walk.found += found
    return best


def _try(
    walk: _Walk, path: str, old: _Alternative, new: _Alternative
) -> list[tuple[str, Rule, str]]:
    trial = walk.fork()
    _compare_pair(trial, path, old, new)
    return trial.found


def _cost(
    found: list[tuple[str, Rule, str]], old: _Alternative, new: _Alternative, used: bool
) -> tuple[int, bool, bool, int]:
    """Fewest breaking changes first, then the same type, then one not yet paired, then fewest
    changes."""
    return (sum(rule.breaking for _, rule, _ in found), old.kind != new.kind, used, len(found))


def _adds(walk: _Walk, path: str, new: _Alternative, old: list[_Alternative]) -> bool:
    """Whether the unpaired alternative ``new`` accepts values no ``old`` one did.

    It does not when, compared the other way round (as if ``new`` were the old contract), some
    old alternative takes it without a breaking change.
    """
    backwards = _Walk(walk.new_root, walk.old_root)
    for alternative in old:
        if _covers(new.kind, alternative.kind):
            found = _try(backwards, path, new, alternative)
            if not any(rule.breaking for _, rule, _ in found):
                return False
    return True


def _compare_pair(walk: _Walk, path: str, old: _Alternative, new: _Alternative) -> None:
    """Compare two alternatives whose types match (or widen), keyword by keyword."""
    key = (old.refs, new.refs)
    if (old.refs or new.refs) and key in walk.expanding:
        return  # a recursive model: this pair is being compared further up
    walk.expanding.add(key)
    try:
        if old.member and new.member:
            _compare_notes(walk, path, _notes(old.schema), _notes(new.schema))
        o, n = old.schema, new.schema
        _compare_enum(walk, path, o, n)
        for keyword in ("format", "pattern"):
            _compare_text(walk, path, keyword, o.get(keyword), n.get(keyword))
        _compare_bounds(walk, path, o, n)
        _compare_multiple(walk, path, o.get("multipleOf"), n.get("multipleOf"))
        _compare_unique(walk, path, bool(o.get("uniqueItems")), bool(n.get("uniqueItems")))
        _compare_object(walk, path, o, n)
        _compare_array(walk, path, o, n)
        _compare_unchecked(walk, path, o, n)
    finally:
        walk.expanding.discard(key)


def _compare_notes(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Annotations and sensitivity markers: reported, never breaking."""
    changed = [
        key
        for key in sorted(set(old) | set(new))
        if key not in _SENSITIVITY and not _same(old.get(key), new.get(key))
    ]
    if changed:
        walk.add(path, Rule.ANNOTATION, ", ".join(changed))
    if bool(old.get("x-sensitive")) != bool(new.get("x-sensitive")):
        now = "now marked sensitive" if new.get("x-sensitive") else "no longer marked sensitive"
        walk.add(path, Rule.SENSITIVITY, now)
    old_keys = set(old.get("x-sensitive-keys") or ())
    new_keys = set(new.get("x-sensitive-keys") or ())
    if new_keys - old_keys:
        walk.add(
            path, Rule.SENSITIVITY, f"sensitive keys added: {_show(sorted(new_keys - old_keys))}"
        )
    if old_keys - new_keys:
        walk.add(
            path, Rule.SENSITIVITY, f"sensitive keys removed: {_show(sorted(old_keys - new_keys))}"
        )


def _values(schema: Schema) -> list[Any] | None:
    """The values an ``enum`` or ``const`` allows, or ``None`` when it has neither."""
    if "const" in schema:
        return [schema["const"]]
    enum_values = schema.get("enum")
    return list(enum_values) if isinstance(enum_values, list) else None


def _compare_enum(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    old_values, new_values = _values(old), _values(new)
    if old_values is None and new_values is None:
        return
    if new_values is None:
        walk.add(path, Rule.ENUM_WIDENED, f"no longer limited to {_show(old_values or [])}")
        return
    if old_values is None:
        walk.add(path, Rule.ENUM_NARROWED, f"now limited to {_show(new_values)}")
        return
    old_keys = {_canonical(v) for v in old_values}
    new_keys = {_canonical(v) for v in new_values}
    removed = [v for v in old_values if _canonical(v) not in new_keys]
    added = [v for v in new_values if _canonical(v) not in old_keys]
    if removed:
        walk.add(path, Rule.ENUM_NARROWED, f"{_show(removed)} no longer allowed")
    if added:
        walk.add(path, Rule.ENUM_WIDENED, f"{_show(added)} now allowed")


def _compare_text(walk: _Walk, path: str, keyword: str, old: Any, new: Any) -> None:
    """``format`` and ``pattern``: compared as text, so any change but a removal tightens."""
    if old == new:
        return
    if new is None:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"{keyword} {_show([old])} removed")
    elif old is None:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{keyword} {_show([new])} added")
    else:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{keyword} {_show([old])} to {_show([new])}")


@dataclasses.dataclass(frozen=True)
class _Bound:
    keyword: str
    value: Fraction
    exclusive: bool

    def __str__(self) -> str:
        return f"{self.keyword} {_number(self.value)}"


# (lower bound?, the keywords of the bound and whether each is exclusive)
_BOUNDS: tuple[tuple[bool, tuple[tuple[str, bool], ...]], ...] = (
    (True, (("minimum", False), ("exclusiveMinimum", True))),
    (False, (("maximum", False), ("exclusiveMaximum", True))),
    (True, (("minLength", False),)),
    (False, (("maxLength", False),)),
    (True, (("minItems", False),)),
    (False, (("maxItems", False),)),
    (True, (("minProperties", False),)),
    (False, (("maxProperties", False),)),
)


def _compare_bounds(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    for lower, keywords in _BOUNDS:
        old_bound = _bound(old, keywords, lower)
        new_bound = _bound(new, keywords, lower)
        if old_bound is None and new_bound is None:
            continue
        if new_bound is None:
            walk.add(path, Rule.CONSTRAINT_RELAXED, f"{old_bound} removed")
        elif old_bound is None:
            walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{new_bound} added")
        elif _tighter(new_bound, old_bound, lower):
            walk.add(path, Rule.CONSTRAINT_TIGHTENED, _bound_change(old_bound, new_bound))
        elif _tighter(old_bound, new_bound, lower):
            walk.add(path, Rule.CONSTRAINT_RELAXED, _bound_change(old_bound, new_bound))


def _bound(schema: Schema, keywords: tuple[tuple[str, bool], ...], lower: bool) -> _Bound | None:
    """The tightest of ``schema``'s bounds among ``keywords``, or ``None``."""
    bounds = [
        _Bound(keyword, Fraction(str(schema[keyword])), exclusive)
        for keyword, exclusive in keywords
        if _is_number(schema.get(keyword))
    ]
    tightest = None
    for bound in bounds:
        if tightest is None or _tighter(bound, tightest, lower):
            tightest = bound
    return tightest


def _bound_change(old: _Bound, new: _Bound) -> str:
    """``maxLength 128 to 64``, or ``minimum 0 to exclusiveMinimum 0``."""
    if old.keyword == new.keyword:
        return f"{old} to {_number(new.value)}"
    return f"{old} to {new}"


def _tighter(a: _Bound, b: _Bound, lower: bool) -> bool:
    """Whether bound ``a`` allows strictly less than bound ``b``."""
    if a.value != b.value:
        return a.value > b.value if lower else a.value < b.value
    return a.exclusive and not b.exclusive


def _compare_multiple(walk: _Walk, path: str, old: Any, new: Any) -> None:
    """``multipleOf``: relaxed when every multiple of the old one is a multiple of the new one."""
    old_step = Fraction(str(old)) if _is_number(old) else None
    new_step = Fraction(str(new)) if _is_number(new) else None
    if old_step == new_step:
        return
    if new_step is None:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"multipleOf {_number(old_step)} removed")
    elif old_step is None:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"multipleOf {_number(new_step)} added")
    else:
        relaxed = new_step != 0 and (old_step / new_step).denominator == 1
        rule = Rule.CONSTRAINT_RELAXED if relaxed else Rule.CONSTRAINT_TIGHTENED
        walk.add(path, rule, f"multipleOf {_number(old_step)} to {_number(new_step)}")


def _compare_unique(walk: _Walk, path: str, old: bool, new: bool) -> None:
    if new and not old:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, "uniqueItems added")
    elif old and not new:
        walk.add(path, Rule.CONSTRAINT_RELAXED, "uniqueItems removed")


def _compare_object(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Fields one by one, then what the object says about fields it does not name."""
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    names = [*old_fields, *old_required, *new_fields, *new_required]
    for name in dict.fromkeys(names):
        where = _join(path, name)
        in_old = name in old_fields or name in old_required
        in_new = name in new_fields or name in new_required
        if not in_new:
            walk.add(where, Rule.FIELD_REMOVED)
        elif not in_old:
            walk.add(where, Rule.NEW_REQUIRED if name in new_required else Rule.NEW_OPTIONAL)
        else:
            if name in new_required and name not in old_required:
                walk.add(where, Rule.MADE_REQUIRED)
            elif name in old_required and name not in new_required:
                walk.add(where, Rule.MADE_OPTIONAL)
            _compare(walk, where, old_fields.get(name, {}), new_fields.get(name, {}))
    if "additionalProperties" in old or "additionalProperties" in new:
        _compare_open(
            walk,
            path,
            _join(path, "*"),
            old.get("additionalProperties", True),
            new.get("additionalProperties", True),
            "fields it does not name",
        )


def _compare_array(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Positions of a tuple (``prefixItems``), then the items after them (``items``)."""
    old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
    old_items, new_items = old.get("items", True), new.get("items", True)
    for index in range(max(len(old_prefix), len(new_prefix))):
        _compare_open(
            walk,
            path,
            f"{path}[{index}]",
            old_prefix[index] if index < len(old_prefix) else old_items,
            new_prefix[index] if index < len(new_prefix) else new_items,
            f"an item at position {index}",
        )
    if "items" in old or "items" in new:
        _compare_open(walk, path, f"{path}[]", old_items, new_items, "items")


def _compare_open(walk: _Walk, path: str, inner: str, old: Any, new: Any, what: str) -> None:
    """A schema that may be ``false`` (nothing allowed) or ``true`` (anything allowed)."""
    if old is False and new is False:
        return
    if old is False:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"{what} now allowed")
    elif new is False:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{what} no longer allowed")
    else:
        _compare(walk, inner, {} if old is True else old, {} if new is True else new)


def _compare_unchecked(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Any other keyword: a change the gate cannot judge is assumed breaking."""
    known = _COMPARED | _IGNORED | {"anyOf", "oneOf"}
    for key in sorted((set(_body(old)) | set(_body(new))) - known):
        if not _same(old.get(key), new.get(key)):
            walk.add(path, Rule.UNCHECKED, key)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _same(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _show(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else _canonical(v) for v in values)


def _number(value: Fraction | None) -> str:
    if value is None:
        return "none"
    return str(value.numerator) if value.denominator == 1 else str(float(value))
