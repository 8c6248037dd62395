"""The compatibility gate: each rule proved by a pair of models, old and new, of one event type.

Most cases run the comparison on the two models' JSON Schemas; a few run ``pubsub-kit contracts
check`` as a subprocess against a temporary project with a checked-in contracts folder, and one
against a temporary git repository (``--against``).
"""

from __future__ import annotations

import copy
import enum
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ToolkitError
from shared.events import Event, Sensitive, SensitiveKeys
from shared.tools import compat
from shared.tools.cli import main
from shared.tools.compat import Change, Rule, compare_contracts, compare_schemas
from shared.tools.contracts import event_schemas
from tests.conftest import REPO

TYPE = "shop.item.v1"
PUBSUB_KIT = Path(sys.executable).with_name("pubsub-kit")


def model(doc: str = "An item.", **fields: Any) -> type[Event]:
    """An event of type ``shop.item.v1``; each field is an annotation or (annotation, default)."""
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, spec in fields.items():
        if isinstance(spec, tuple):
            annotations[name], defaults[name] = spec
        else:
            annotations[name] = spec
    namespace = {"__annotations__": annotations, "__doc__": doc, "event_type": TYPE, **defaults}
    return type("Item", (Event,), namespace)


def changes(old: type[Event], new: type[Event]) -> list[Change]:
    return compare_schemas(TYPE, old.json_schema(), new.json_schema())


def the_change(found: list[Change], rule: Rule, path: str) -> Change:
    matching = [c for c in found if c.rule is rule and c.path == path]
    assert matching, f"no {rule.label!r} at {path!r} in {[c.sentence for c in found]}"
    return matching[0]


# Models nested in the events below.
class OpenMeta(BaseModel):
    source: str


class ClosedMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str


class MetaWithoutSource(BaseModel):
    other: str | None = None


class AnyChange(BaseModel):
    old: Any = None
    new: Any = None


class TextChange(BaseModel):
    old: Any = None
    new: str | None = None


class Like(BaseModel):
    kind: Literal["like"]


class Love(BaseModel):
    kind: Literal["love"]


class Laugh(BaseModel):
    kind: Literal["laugh"]


class RedGreen(enum.Enum):
    RED = "red"
    GREEN = "green"


class Red(enum.Enum):
    RED = "red"


Short = Annotated[str, Field(max_length=3)]


def bounded(**constraints: Any) -> Any:
    return Annotated[str, Field(**constraints)]


def number(**constraints: Any) -> Any:
    return Annotated[float, Field(**constraints)]


def strings(**constraints: Any) -> Any:
    return Annotated[list[str], Field(**constraints)]


# (rule, path, old fields, new fields): every change here must fail the gate.
BREAKING = {
    "field removed": (Rule.FIELD_REMOVED, "b", {"a": str, "b": str}, {"a": str}),
    "field renamed": (Rule.FIELD_REMOVED, "liker_id", {"liker_id": str}, {"user_id": str}),
    "renamed field is new and required": (
        Rule.NEW_REQUIRED,
        "user_id",
        {"liker_id": str},
        {"user_id": str},
    ),
    "new required field": (Rule.NEW_REQUIRED, "score", {"a": str}, {"a": str, "score": int}),
    "optional made required": (Rule.MADE_REQUIRED, "note", {"note": (str, "")}, {"note": str}),
    "type changed": (Rule.TYPE_CHANGED, "n", {"n": int}, {"n": str}),
    "null no longer allowed": (Rule.TYPE_CHANGED, "n", {"n": (int | None, None)}, {"n": (int, 0)}),
    "number narrowed to integer": (Rule.TYPE_CHANGED, "n", {"n": float}, {"n": int}),
    "any value narrowed to a string": (Rule.TYPE_CHANGED, "v", {"v": Any}, {"v": str}),
    "literal narrowed": (
        Rule.ENUM_NARROWED,
        "c",
        {"c": Literal["a", "b"]},
        {"c": Literal["a"]},
    ),
    "enum class narrowed": (Rule.ENUM_NARROWED, "colour", {"colour": RedGreen}, {"colour": Red}),
    "free text made an enum": (Rule.ENUM_NARROWED, "c", {"c": str}, {"c": Literal["a", "b"]}),
    "maxLength lowered": (
        Rule.CONSTRAINT_TIGHTENED,
        "s",
        {"s": bounded(max_length=10)},
        {"s": bounded(max_length=5)},
    ),
    "maxLength added": (Rule.CONSTRAINT_TIGHTENED, "s", {"s": str}, {"s": bounded(max_length=5)}),
    "minLength raised": (
        Rule.CONSTRAINT_TIGHTENED,
        "s",
        {"s": bounded(min_length=1)},
        {"s": bounded(min_length=2)},
    ),
    "minimum raised": (Rule.CONSTRAINT_TIGHTENED, "x", {"x": number(ge=0)}, {"x": number(ge=1)}),
    "maximum lowered": (
        Rule.CONSTRAINT_TIGHTENED,
        "x",
        {"x": number(le=10)},
        {"x": number(le=5)},
    ),
    "minimum made exclusive": (
        Rule.CONSTRAINT_TIGHTENED,
        "x",
        {"x": number(ge=0)},
        {"x": number(gt=0)},
    ),
    "multipleOf no longer divides the old one": (
        Rule.CONSTRAINT_TIGHTENED,
        "x",
        {"x": number(multiple_of=2)},
        {"x": number(multiple_of=4)},
    ),
    "pattern added": (Rule.CONSTRAINT_TIGHTENED, "s", {"s": str}, {"s": bounded(pattern="^a")}),
    "pattern changed": (
        Rule.CONSTRAINT_TIGHTENED,
        "s",
        {"s": bounded(pattern="^a")},
        {"s": bounded(pattern="^[ab]")},
    ),
    "format added": (Rule.CONSTRAINT_TIGHTENED, "at", {"at": str}, {"at": datetime}),
    "maxItems lowered": (
        Rule.CONSTRAINT_TIGHTENED,
        "tags",
        {"tags": strings(max_length=5)},
        {"tags": strings(max_length=3)},
    ),
    "minItems raised": (
        Rule.CONSTRAINT_TIGHTENED,
        "tags",
        {"tags": strings(min_length=0)},
        {"tags": strings(min_length=1)},
    ),
    "items made unique": (
        Rule.CONSTRAINT_TIGHTENED,
        "tags",
        {"tags": list[str]},
        {"tags": set[str]},
    ),
    "item type changed": (Rule.TYPE_CHANGED, "tags[]", {"tags": list[str]}, {"tags": list[int]}),
    "item constraint tightened": (
        Rule.CONSTRAINT_TIGHTENED,
        "tags[]",
        {"tags": list[str]},
        {"tags": list[Short]},
    ),
    "tuple position changed": (
        Rule.TYPE_CHANGED,
        "pair[1]",
        {"pair": tuple[int, str]},
        {"pair": tuple[int, int]},
    ),
    "mapping value type changed": (
        Rule.TYPE_CHANGED,
        "counts.*",
        {"counts": dict[str, int]},
        {"counts": dict[str, str]},
    ),
    "nested model's field narrowed": (
        Rule.TYPE_CHANGED,
        "changes.*.new",
        {"changes": dict[str, AnyChange]},
        {"changes": dict[str, TextChange]},
    ),
    "nested model's field removed": (
        Rule.FIELD_REMOVED,
        "meta.source",
        {"meta": OpenMeta},
        {"meta": MetaWithoutSource},
    ),
    "union member removed": (
        Rule.ENUM_NARROWED,
        "reaction.kind",
        {"reaction": Like | Love},
        {"reaction": Like},
    ),
    "nested model closed to unknown fields": (
        Rule.CONSTRAINT_TIGHTENED,
        "meta",
        {"meta": OpenMeta},
        {"meta": ClosedMeta},
    ),
}

# (rule, path, old fields, new fields): every change here must pass the gate.
COMPATIBLE = {
    "new optional field": (Rule.NEW_OPTIONAL, "note", {"a": str}, {"a": str, "note": (str, "")}),
    "required made optional": (Rule.MADE_OPTIONAL, "note", {"note": str}, {"note": (str, "")}),
    "null added": (Rule.TYPE_WIDENED, "n", {"n": int}, {"n": int | None}),
    "integer widened to number": (Rule.TYPE_WIDENED, "n", {"n": int}, {"n": float}),
    "string widened to any value": (Rule.TYPE_WIDENED, "v", {"v": str}, {"v": Any}),
    "literal widened": (Rule.ENUM_WIDENED, "c", {"c": Literal["a"]}, {"c": Literal["a", "b"]}),
    "enum class widened": (Rule.ENUM_WIDENED, "colour", {"colour": Red}, {"colour": RedGreen}),
    "enum made free text": (Rule.ENUM_WIDENED, "c", {"c": Literal["a", "b"]}, {"c": str}),
    "maxLength raised": (
        Rule.CONSTRAINT_RELAXED,
        "s",
        {"s": bounded(max_length=5)},
        {"s": bounded(max_length=10)},
    ),
    "maxLength removed": (Rule.CONSTRAINT_RELAXED, "s", {"s": bounded(max_length=5)}, {"s": str}),
    "minLength lowered": (
        Rule.CONSTRAINT_RELAXED,
        "s",
        {"s": bounded(min_length=2)},
        {"s": bounded(min_length=1)},
    ),
    "minimum lowered": (Rule.CONSTRAINT_RELAXED, "x", {"x": number(ge=1)}, {"x": number(ge=0)}),
    "maximum raised": (Rule.CONSTRAINT_RELAXED, "x", {"x": number(le=5)}, {"x": number(le=10)}),
    "exclusive minimum made inclusive": (
        Rule.CONSTRAINT_RELAXED,
        "x",
        {"x": number(gt=0)},
        {"x": number(ge=0)},
    ),
    "multipleOf divides the old one": (
        Rule.CONSTRAINT_RELAXED,
        "x",
        {"x": number(multiple_of=1)},
        {"x": number(multiple_of=0.5)},
    ),
    "pattern removed": (Rule.CONSTRAINT_RELAXED, "s", {"s": bounded(pattern="^a")}, {"s": str}),
    "format removed": (Rule.CONSTRAINT_RELAXED, "at", {"at": datetime}, {"at": str}),
    "maxItems raised": (
        Rule.CONSTRAINT_RELAXED,
        "tags",
        {"tags": strings(max_length=3)},
        {"tags": strings(max_length=5)},
    ),
    "items no longer unique": (
        Rule.CONSTRAINT_RELAXED,
        "tags",
        {"tags": set[str]},
        {"tags": list[str]},
    ),
    "union member added": (
        Rule.TYPE_WIDENED,
        "reaction",
        {"reaction": Like | Love},
        {"reaction": Like | Love | Laugh},
    ),
    "nested model opened to unknown fields": (
        Rule.CONSTRAINT_RELAXED,
        "meta",
        {"meta": ClosedMeta},
        {"meta": OpenMeta},
    ),
    "description added": (
        Rule.ANNOTATION,
        "a",
        {"a": str},
        {"a": Annotated[str, Field(description="What it is.")]},
    ),
    "title and examples changed": (
        Rule.ANNOTATION,
        "a",
        {"a": str},
        {"a": Annotated[str, Field(title="Alpha", examples=["x"])]},
    ),
    "default changed": (Rule.ANNOTATION, "a", {"a": (str, "x")}, {"a": (str, "y")}),
    "marked sensitive": (
        Rule.SENSITIVITY,
        "email",
        {"email": str},
        {"email": Annotated[str, Sensitive]},
    ),
    "sensitive keys changed": (
        Rule.SENSITIVITY,
        "changes",
        {"changes": Annotated[dict[str, str], SensitiveKeys("email")]},
        {"changes": Annotated[dict[str, str], SensitiveKeys("email", "phone")]},
    ),
}


@pytest.mark.parametrize(("rule", "path", "old", "new"), BREAKING.values(), ids=list(BREAKING))
def test_each_breaking_rule_fails_the_gate_naming_type_field_and_rule(rule, path, old, new):
    change = the_change(changes(model(**old), model(**new)), rule, path)
    assert change.breaking
    sentence = change.sentence
    assert sentence.startswith(f"{TYPE}: field '{path}' ")
    assert rule.label in sentence and ": breaking;" in sentence
    assert "new version (shop.item.v2)" in sentence


@pytest.mark.parametrize(("rule", "path", "old", "new"), COMPATIBLE.values(), ids=list(COMPATIBLE))
def test_each_compatible_rule_passes_the_gate(rule, path, old, new):
    found = changes(model(**old), model(**new))
    change = the_change(found, rule, path)
    assert not change.breaking
    assert change.sentence.startswith(f"{TYPE}: field '{path}' ")
    assert rule.label in change.sentence and ": compatible;" in change.sentence
    assert [c.sentence for c in found if c.breaking] == []


def test_the_sentence_says_what_to_do_about_a_removed_field():
    old, new = model(liker_id=str, post_id=str), model(post_id=str)
    [change] = changes(old, new)
    assert change.sentence == (
        "shop.item.v1: field 'liker_id' removed or renamed: breaking; readers written for "
        "shop.item.v1 need it. Publish the change as a new version (shop.item.v2) and keep "
        "shop.item.v1 until no producer sends it."
    )


def test_bounds_say_from_what_to_what():
    change = the_change(
        changes(model(s=bounded(max_length=128)), model(s=bounded(max_length=64))),
        Rule.CONSTRAINT_TIGHTENED,
        "s",
    )
    assert change.detail == "maxLength 128 to 64"


def test_an_unchanged_model_has_no_change():
    fields = {"a": bounded(min_length=1), "b": (int | None, None), "meta": OpenMeta}
    assert changes(model(**fields), model(**fields)) == []


def test_a_renamed_model_class_with_the_same_shape_changes_only_annotations():
    class Source(BaseModel):
        source: str

    found = changes(model(meta=OpenMeta), model(meta=Source))
    assert {c.rule for c in found} == {Rule.ANNOTATION}


def test_a_recursive_model_is_compared_without_end():
    class Node(BaseModel):
        name: str
        kids: list[Node] = []

    class Tree(BaseModel):
        name: Short
        kids: list[Tree] = []

    assert changes(model(root=Node), model(root=Node)) == []
    found = changes(model(root=Node), model(root=Tree))
    assert the_change(found, Rule.CONSTRAINT_TIGHTENED, "root.name").breaking


def test_an_optional_nested_model_that_changes_is_compared_inside():
    found = changes(model(meta=(OpenMeta | None, None)), model(meta=(ClosedMeta | None, None)))
    assert the_change(found, Rule.CONSTRAINT_TIGHTENED, "meta").breaking


def test_a_keyword_the_gate_does_not_compare_is_breaking_when_it_changes():
    old = model(a=str).json_schema()
    new = copy.deepcopy(old)
    new["properties"]["a"]["not"] = {"const": ""}
    [change] = compare_schemas(TYPE, old, new)
    assert change.rule is Rule.UNCHECKED and change.breaking and change.detail == "not"


# --- whole contracts: retired and new event types ---------------------------------------------


def test_a_type_gone_from_the_topology_is_retired_and_breaking():
    [change] = compare_contracts({TYPE: model(a=str).json_schema()}, {})
    assert change.rule is Rule.RETIRED and change.breaking
    assert f"--retire {TYPE}" in change.sentence


def test_a_type_declared_retired_is_reported_and_passes():
    [change] = compare_contracts({TYPE: model(a=str).json_schema()}, {}, retire=[TYPE])
    assert change.rule is Rule.RETIRED_DECLARED and not change.breaking


def test_retiring_a_type_the_topology_still_declares_is_an_error():
    schema = model(a=str).json_schema()
    with pytest.raises(ToolkitError, match=f"--retire {TYPE}: the topology still declares it"):
        compare_contracts({TYPE: schema}, {TYPE: schema}, retire=[TYPE])


def test_a_new_type_is_compatible():
    [change] = compare_contracts({}, {"shop.item.v2": model(a=str).json_schema()})
    assert change.rule is Rule.NEW_TYPE and not change.breaking
    assert change.sentence.startswith("shop.item.v2: new event type: compatible")


def test_the_next_version_of_a_type():
    assert compat.next_version("post.liked.v1") == "post.liked.v2"
    assert compat.next_version("billing.invoice_paid.v12") == "billing.invoice_paid.v13"


def test_the_example_system_matches_its_checked_in_contracts():
    from shared.system.topology import TOPOLOGY

    old = compat.checked_in_schemas(REPO / "docs" / "contracts")
    assert [c.sentence for c in compare_contracts(old, event_schemas(TOPOLOGY))] == []


def test_the_example_system_passes_the_command_as_ci_runs_it(monkeypatch, capsys):
    monkeypatch.setenv("PUBSUB_KIT_ROOT", str(REPO))
    monkeypatch.delenv("PUBSUB_KIT_TOPOLOGY", raising=False)
    assert main(["contracts", "check"]) == 0
    assert capsys.readouterr().out.endswith("no change: passes\n")


# --- properties -------------------------------------------------------------------------------

names = st.text("abcdefgh_", min_size=1, max_size=6)
leaves = st.one_of(
    st.just({}),
    st.just({"type": "null"}),
    st.just({"type": "boolean"}),
    st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "minLength": st.integers(0, 5),
            "maxLength": st.integers(5, 50),
            "pattern": st.sampled_from(["^a", "[0-9]+"]),
            "format": st.sampled_from(["date-time", "email"]),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-5, 0),
            "exclusiveMaximum": st.floats(1, 100, allow_nan=False),
            "multipleOf": st.sampled_from([1, 2, 0.5]),
        },
    ),
    st.lists(
        st.text(max_size=3) | st.integers() | st.booleans() | st.none(),
        min_size=1,
        max_size=4,
        unique_by=lambda v: json.dumps(v),
    ).map(lambda values: {"enum": values}),
)


def _object(fields: dict[str, Any], required: list[str], closed: bool) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": fields,
        "required": [n for n in required if n in fields],
    }
    return schema | ({"additionalProperties": False} if closed else {})


schemas = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(
            lambda items, unique: {"type": "array", "items": items, "uniqueItems": unique},
            inner,
            st.booleans(),
        ),
        st.builds(
            _object, st.dictionaries(names, inner, max_size=4), st.lists(names), st.booleans()
        ),
        st.builds(lambda values: {"type": "object", "additionalProperties": values}, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda members: {"anyOf": members}),
    ),
    max_leaves=12,
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(schema=schemas)
def test_a_schema_compared_with_itself_has_no_change(schema):
    assert compare_schemas(TYPE, schema, copy.deepcopy(schema)) == []


@PROPERTY
@given(schema=schemas)
def test_allowing_null_as_well_never_breaks(schema):
    widened = {"anyOf": [copy.deepcopy(schema), {"type": "null"}]}
    assert [c.sentence for c in compare_schemas(TYPE, schema, widened) if c.breaking] == []


@PROPERTY
@given(fields=st.dictionaries(names, schemas, min_size=1, max_size=4), data=st.data())
def test_removing_any_field_breaks(fields, data):
    gone = data.draw(st.sampled_from(sorted(fields)))
    old = _object(fields, sorted(fields), closed=True)
    new = _object({n: s for n, s in fields.items() if n != gone}, sorted(fields), closed=True)
    assert the_change(compare_schemas(TYPE, old, new), Rule.FIELD_REMOVED, gone).breaking


# --- the command, against a temporary project ---------------------------------------------------

TOPOLOGY_MODULE = '''
from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from shared.events import Event
from shared.topology import Topic, Topology


class ItemAdded(Event):
    """An item was added to a shop."""

    event_type: ClassVar[str] = "shop.item.v1"

    item_id: Annotated[str, Field(min_length=1, max_length=64)]
{fields}

TOPOLOGY = Topology([Topic("shop-items", events=[ItemAdded])])
'''
V1_FIELDS = "    liker_id: str\n"


def make_project(folder: Path, fields: str, *, contracts: bool = True) -> Path:
    """A project with a topology (``gate_topology:TOPOLOGY``) and, if asked, its contracts."""
    (folder / "functions").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    write_topology(folder, fields)
    if contracts:
        run_gate(folder, "--topology", "gate_topology:TOPOLOGY", "schema", command=False)
    return folder


def write_topology(folder: Path, fields: str) -> None:
    (folder / "gate_topology.py").write_text(TOPOLOGY_MODULE.format(fields=fields))


def run_gate(folder: Path, *args: str, command: bool = True) -> subprocess.CompletedProcess[str]:
    """``pubsub-kit [--topology gate_topology:TOPOLOGY] contracts check ARGS`` in ``folder``."""
    argv = (
        ["--topology", "gate_topology:TOPOLOGY", "contracts", "check", *args]
        if command
        else list(args)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PUBSUB_KIT_"))}
    env |= {"PUBSUB_KIT_ROOT": str(folder), "PYTHONPATH": f"{folder}{os.pathsep}{REPO}"}
    return subprocess.run(
        [str(PUBSUB_KIT), *argv], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=Gate Test",
            "-c",
            "user.email=gate@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_the_command_passes_when_nothing_changed(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    done = run_gate(project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1 event type, no change: passes")


def test_the_command_fails_on_a_removed_field_with_the_sentence(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    write_topology(project, "")
    done = run_gate(project)
    assert done.returncode == 1, done.stderr
    assert "shop.item.v1: field 'liker_id' removed or renamed: breaking;" in done.stdout
    assert "(shop.item.v2)" in done.stdout
    assert done.stdout.strip().endswith("1 change (1 breaking): fails")
    assert "Traceback" not in done.stderr


def test_the_command_passes_a_compatible_change_and_says_the_contracts_are_behind(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    write_topology(project, V1_FIELDS + "    note: str | None = None\n")
    done = run_gate(project)
    assert done.returncode == 0, done.stderr
    assert "field 'note' added as a new optional field: compatible" in done.stdout
    assert "pubsub-kit schema" in done.stderr


def test_the_command_prints_json(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    write_topology(project, "    liker_id: int\n")
    done = run_gate(project, "--json")
    assert done.returncode == 1
    [change] = json.loads(done.stdout)
    assert change | {"sentence": ""} == {
        "event_type": "shop.item.v1",
        "path": "liker_id",
        "rule": "type changed",
        "verdict": "breaking",
        "detail": "string to integer",
        "sentence": "",
    }


def test_the_command_retires_a_type_only_when_told(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    old = project / "docs" / "contracts" / "shop.item.v1.schema.json"
    old.rename(old.with_name("shop.gone.v1.schema.json"))
    done = run_gate(project)
    assert done.returncode == 1
    assert "shop.gone.v1: event type retired: breaking" in done.stdout
    assert "shop.item.v1: new event type: compatible" in done.stdout
    done = run_gate(project, "--retire", "shop.gone.v1")
    assert done.returncode == 0, done.stdout
    assert "shop.gone.v1: event type retired as declared with --retire: compatible" in done.stdout


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda c: (c / "shop.item.v1.schema.json").write_text("{not json"), "is not JSON"),
        (lambda c: (c / "shop.item.v1.schema.json").write_text("[]"), "expected an object"),
        (
            lambda c: (c / "shop.item.v1.schema.json").write_text('{"properties": []}'),
            "properties must be an object, found a list",
        ),
        (
            lambda c: (c / "shop.item.v1.schema.json").write_text('{"$ref": "#/$defs/Nope"}'),
            "points to nothing",
        ),
        (shutil.rmtree, "no contracts folder"),
    ],
    ids=["not JSON", "not an object", "malformed keyword", "dangling ref", "no folder"],
)
def test_bad_checked_in_contracts_get_one_sentence_and_exit_1(tmp_path, spoil, expected):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    spoil(project / "docs" / "contracts")
    done = run_gate(project)
    assert done.returncode == 1
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_against_a_git_ref_sees_what_regenerated_contracts_hide(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "docs")
    git(project, "commit", "-q", "-m", "contracts v1")
    write_topology(project, "")  # liker_id removed, and the contracts regenerated with it
    run_gate(project, "--topology", "gate_topology:TOPOLOGY", "schema", command=False)

    assert run_gate(project).returncode == 0  # the checked-in files agree with the models
    done = run_gate(project, "--against", "main")
    assert done.returncode == 1, done.stderr
    assert "shop.item.v1: field 'liker_id' removed or renamed: breaking" in done.stdout
    assert "against docs/contracts at main" in done.stdout


@pytest.mark.parametrize(
    ("ref", "init", "expected"),
    [
        ("main", False, "is not in a git repository"),
        ("no-such-branch", True, "unknown git ref 'no-such-branch'"),
        ("--upload-pack=x", True, "--against takes a git ref"),
    ],
)
def test_against_a_bad_ref_gets_one_sentence_and_exit_1(tmp_path, ref, init, expected):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    if init:
        git(project, "init", "-q", "-b", "main")
        git(project, "add", "docs")
        git(project, "commit", "-q", "-m", "contracts v1")
    done = run_gate(project, f"--against={ref}")
    assert done.returncode == 1
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_against_a_ref_without_contracts_says_so(tmp_path):
    project = make_project(tmp_path / "shop", V1_FIELDS)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "pyproject.toml")
    git(project, "commit", "-q", "-m", "no contracts yet")
    done = run_gate(project, "--against", "main")
    assert done.returncode == 1
    assert "main has no docs/contracts/*.schema.json" in done.stderr
