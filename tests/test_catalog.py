"""The Backstage catalog and the README's diagram: valid for Backstage, true to the topology.

Validity is Backstage's own verdict: ``tests/node/validate-catalog.js`` runs the validators of
``@backstage/catalog-model`` and the AsyncAPI parser, as pinned in ``tests/node/package-lock.json``
(``make node``, a prerequisite of ``make test``, installs them; no network at test time). Like
checkov and terraform, Node.js is required: these tests fail, rather than skip, without it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ToolkitError
from shared.system.events import OrderDispatched, PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.catalog import (
    DIAGRAM_BEGIN,
    DIAGRAM_END,
    CatalogSettings,
    catalog_entities,
    mermaid,
    replace_diagram,
    to_yaml,
)
from shared.topology import Consumer, Topic, Topology
from tests.conftest import REPO
from tests.node_project import NODE_PROJECT, node_for

VALIDATOR = NODE_PROJECT / "validate-catalog.js"
NODE_TIMEOUT = 60  # seconds; a validation takes about 1.5 s


def validate(text: str) -> subprocess.CompletedProcess[str]:
    """Run Backstage's validators over a catalog file's text (YAML, or JSON)."""
    node = node_for("@backstage/catalog-model")
    return subprocess.run(
        [node, str(VALIDATOR), "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )


def entities_of(topology: Topology = TOPOLOGY, **settings: str) -> dict[str, dict[str, Any]]:
    """``kind:name`` -> entity."""
    return {
        f"{e['kind']}:{e['metadata']['name']}": e
        for e in catalog_entities(topology, CatalogSettings(**settings))
    }


def test_the_example_catalog_is_valid_for_backstage_and_reads_back_the_same() -> None:
    entities = catalog_entities(TOPOLOGY)
    done = validate(to_yaml(entities))
    assert done.returncode == 0, done.stderr
    # What Backstage's YAML parser reads is exactly what the code built.
    assert json.loads(done.stdout) == entities


def _without_owner(entities: list[dict[str, Any]]) -> None:
    del entities[-1]["spec"]["owner"]


def _bad_name(entities: list[dict[str, Any]]) -> None:
    entities[-1]["metadata"]["name"] = "not a name!"


def _foreign_root_field(entities: list[dict[str, Any]]) -> None:
    entities[0]["owner"] = "team"


def _unknown_api(entities: list[dict[str, Any]]) -> None:
    entities[-1]["spec"]["consumesApis"].append("no-such-topic")


def _unknown_system(entities: list[dict[str, Any]]) -> None:
    entities[-1]["spec"]["system"] = "elsewhere"


def _broken_definition(entities: list[dict[str, Any]]) -> None:
    api = next(e for e in entities if e["kind"] == "API")
    document = json.loads(api["spec"]["definition"])
    document["channels"]["no-such-channel"] = {"$ref": "#/channels/missing"}
    api["spec"]["definition"] = json.dumps(document)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_without_owner, "must have required property 'owner'"),
        (_bad_name, '"metadata.name" is not valid'),
        (_foreign_root_field, "additional properties"),
        (_unknown_api, "refers to api:default/no-such-topic, which is not in the file"),
        (_unknown_system, "refers to system:default/elsewhere, which is not in the file"),
        (_broken_definition, "spec.definition"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_a_broken_catalog_is_rejected_with_the_reason(breakage, expected) -> None:
    entities = copy.deepcopy(catalog_entities(TOPOLOGY))
    breakage(entities)
    done = validate(to_yaml(entities))
    assert done.returncode == 1
    assert expected in done.stderr
    assert "    at " not in done.stderr  # a sentence per problem, not a stack trace


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    done = validate(to_yaml(catalog_entities(TOPOLOGY)) + "---\n- a\n- list\n")
    assert done.returncode == 1
    assert 'expected an entity (a mapping), found ["a","list"]' in done.stderr


def test_each_function_consumes_its_topics_and_provides_those_it_publishes_to() -> None:
    entities = entities_of()
    for consumer in TOPOLOGY.consumers.values():
        spec = entities[f"Component:{consumer.name}"]["spec"]
        assert spec["type"] == "service"
        assert spec["consumesApis"] == sorted(consumer.topics)
        assert spec.get("providesApis", []) == sorted(consumer.publishes)
    assert entities["Component:order_notifications"]["spec"]["providesApis"] == [
        "notification-requested"
    ]
    kinds = sorted(key.split(":")[0] for key in entities)
    assert kinds == (
        ["API"] * len(TOPOLOGY.topics) + ["Component"] * len(TOPOLOGY.consumers) + ["System"]
    )


def test_every_entity_belongs_to_the_system_with_the_owner_and_lifecycle_given() -> None:
    entities = entities_of(system="orders", owner="group:payments", lifecycle="production")
    assert entities["System:orders"]["spec"] == {"owner": "group:payments"}
    for key, entity in entities.items():
        if not key.startswith("System:"):
            assert entity["spec"]["system"] == "orders"
            assert entity["spec"]["owner"] == "group:payments"
            assert entity["spec"]["lifecycle"] == "production"


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in ([v] if k == "$ref" else _refs(v))]
    if isinstance(value, list):
        return [r for item in value for r in _refs(item)]
    return []


def _resolve(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_each_topic_is_an_asyncapi_api_whose_definition_is_that_topic_alone() -> None:
    entities = entities_of()
    for topic in TOPOLOGY.topics.values():
        spec = entities[f"API:{topic.name}"]["spec"]
        assert spec["type"] == "asyncapi"
        document = json.loads(spec["definition"])
        assert document["asyncapi"].startswith("3.")
        assert list(document["channels"]) == [topic.name]
        assert {m["name"] for m in document["components"]["messages"].values()} == {
            model.event_type for model in topic.events
        }
        assert {op["channel"]["$ref"] for op in document["operations"].values()} == {
            f"#/channels/{topic.name}"
        }
        receivers = {
            name for name, op in document["operations"].items() if op["action"] == "receive"
        }
        assert len(receivers) == sum(1 for s in TOPOLOGY.subscriptions.values() if s.topic is topic)
        # Self-contained: every reference points into the document itself (Backstage has no
        # docs/contracts/ next to it to resolve a file reference against).
        for ref in _refs(document):
            assert ref.startswith("#/"), ref
            _resolve(document, ref)


def test_the_user_updated_payload_keeps_its_nested_definitions_reachable() -> None:
    document = json.loads(entities_of()["API:user-updated"]["spec"]["definition"])
    payload = document["components"]["schemas"]["user_updated_v1"]
    assert "$id" not in payload and "$schema" not in payload
    ref = payload["properties"]["changes"]["additionalProperties"]["$ref"]
    assert ref == "#/components/schemas/user_updated_v1/$defs/FieldChange"
    assert _resolve(document, ref)["title"] == "FieldChange"


def test_the_checked_in_catalog_matches_the_topology() -> None:
    assert (REPO / "catalog-info.yaml").read_text() == to_yaml(catalog_entities(TOPOLOGY)), (
        "catalog-info.yaml is stale: run `make export` (pubsub-kit catalog --readme README.md)"
    )


def test_the_readme_diagram_matches_the_topology() -> None:
    readme = (REPO / "README.md").read_text()
    assert replace_diagram(readme, mermaid(TOPOLOGY)) == readme, (
        "README.md's topology diagram is stale: run `make export`"
    )


def test_the_diagram_draws_every_subscription_publish_and_dead_letter_topic() -> None:
    diagram = mermaid(TOPOLOGY)
    assert diagram.startswith("flowchart LR\n")
    edges = re.findall(r"^  (\w+) (-->|-.->) (\w+)$", diagram, re.MULTILINE)
    labels: dict[str, str] = dict(re.findall(r'^  (\w+)\(?\[?"([^"]+)"', diagram, re.MULTILINE))
    drawn = {(labels[a], arrow, labels[b]) for a, arrow, b in edges}
    expected = set()
    for sub in TOPOLOGY.subscriptions.values():
        expected.add((sub.topic.name, "-->", sub.consumer.name))
        expected.add((sub.consumer.name, "-.->", sub.dead_letter_topic))
    for consumer in TOPOLOGY.consumers.values():
        expected |= {(consumer.name, "-->", topic) for topic in consumer.publishes}
    assert drawn == expected
    assert len(edges) == len(expected)


def test_the_diagram_goes_between_the_markers_and_nowhere_else() -> None:
    readme = f"# Title\n\nbefore\n{DIAGRAM_BEGIN}\nold\n{DIAGRAM_END}\nafter\n"
    updated = replace_diagram(readme, "flowchart LR\n  a --> b\n")
    assert updated == (
        f"# Title\n\nbefore\n{DIAGRAM_BEGIN}\n```mermaid\nflowchart LR\n  a --> b\n```\n"
        f"{DIAGRAM_END}\nafter\n"
    )
    assert replace_diagram(updated, "flowchart LR\n  a --> b\n") == updated


@pytest.mark.parametrize(
    "readme",
    ["no markers\n", f"{DIAGRAM_END}\n{DIAGRAM_BEGIN}\n", f"{DIAGRAM_BEGIN}\n{DIAGRAM_BEGIN}\n"],
    ids=["missing", "reversed", "repeated"],
)
def test_a_readme_without_one_pair_of_markers_is_refused(readme) -> None:
    with pytest.raises(ToolkitError, match="topology-diagram:begin"):
        replace_diagram(readme, "flowchart LR\n")


def test_awkward_strings_read_back_unchanged() -> None:
    awkward = [
        "yes", "No", "true", "null", "~", "1.0", "0x1F", "1e3", "12:30", "2024-01-01",
        "a: b", "a #b", "#x", "-x", "- x", "? x", "[x]", "{x}", "*x", "&x", "!x", "|", ">", "'q'",
        '"q"', "%x", "@x", "`x`", "ends:", " leading", "trailing ", "", "tab\there",
        "é ü 漢字 🚀", "del\x7f c1\x85",
        "line\nbreak", "two\nlines\n", "trailing\n\n", "\nleading newline", "  indented\nx\n",
        "crlf\r\nx\n", "tab\tin\nblock\n", "del\x7f\nx\n", "é\n🚀\n", "back\\slash",
    ]  # fmt: skip
    entities = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "System",
            "metadata": {"name": f"s{i}", "description": text, "labels": {"x": "y"}},
            "spec": {"owner": "team"},
        }
        for i, text in enumerate(awkward)
    ]
    done = validate(to_yaml(entities))
    assert done.returncode == 0, done.stderr
    assert [e["metadata"]["description"] for e in json.loads(done.stdout)] == awkward


def test_names_backstage_would_refuse_are_shortened_and_kept_as_titles() -> None:
    long_topic = "post-liked-" + "-".join(["very-long"] * 8)  # 90 characters
    topology = Topology(
        topics=[Topic(long_topic, events=[PostLiked]), Topic("orders", events=[OrderDispatched])],
        consumers=[
            Consumer("audit__log", topics=[long_topic], publishes=["orders"]),
            Consumer("timeline", topics=["orders"]),
        ],
    )
    entities = catalog_entities(topology)
    done = validate(to_yaml(entities))
    assert done.returncode == 0, done.stderr
    by_title = {e["metadata"].get("title"): e for e in entities}
    api, component = by_title[long_topic], by_title["audit__log"]
    assert len(api["metadata"]["name"]) <= 63
    assert api["metadata"]["name"].startswith("post-liked-very-long")
    assert component["metadata"]["name"].startswith("audit-log-")
    assert component["spec"]["consumesApis"] == [api["metadata"]["name"]]


def test_the_catalog_is_the_same_every_time() -> None:
    reordered = Topology(
        topics=reversed(list(TOPOLOGY.topics.values())),
        consumers=reversed(list(TOPOLOGY.consumers.values())),
    )
    assert to_yaml(catalog_entities(reordered)) == to_yaml(catalog_entities(TOPOLOGY))
    assert mermaid(reordered) == mermaid(TOPOLOGY)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("system", "two words", "--system must be a Backstage entity name"),
        ("system", "x" * 64, "--system must be a Backstage entity name"),
        ("owner", "group:", "--owner must be an entity reference"),
        ("owner", "Group:Bad_NS/team", "--owner must be an entity reference"),
        ("lifecycle", "", "--lifecycle must be one word"),
        ("lifecycle", "in production", "--lifecycle must be one word"),
    ],
)
def test_settings_backstage_would_refuse_are_refused_first(field, value, expected) -> None:
    with pytest.raises(ToolkitError, match=expected):
        dataclasses.replace(CatalogSettings(), **{field: value})


@pytest.mark.parametrize("owner", ["team", "group:team", "user:default/jane.doe", "group:ns-1/a_b"])
def test_owner_references_backstage_accepts_are_accepted(owner) -> None:
    assert CatalogSettings(owner=owner).owner == owner


# The console script, as a user runs it.


def pubsub_kit(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("pubsub-kit")
    if not script.is_file():
        pytest.fail(f"no console script at {script}: install the project (make install)")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def test_catalog_writes_the_file_and_the_readme_and_check_agrees(tmp_path) -> None:
    output, readme = tmp_path / "out" / "catalog-info.yaml", tmp_path / "README.md"
    readme.write_text(f"# x\n{DIAGRAM_BEGIN}\n{DIAGRAM_END}\n")
    args = ["catalog", "--output", str(output), "--readme", str(readme)]
    assert pubsub_kit(*args, "--check").returncode == 1
    done = pubsub_kit(*args, "--owner", "group:payments")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"wrote {output}", f"wrote {readme}"]
    settings = CatalogSettings(owner="group:payments")
    assert output.read_text() == to_yaml(catalog_entities(TOPOLOGY, settings))
    assert readme.read_text() == replace_diagram(readme.read_text(), mermaid(TOPOLOGY))
    assert "```mermaid\nflowchart LR" in readme.read_text()
    checked = pubsub_kit(*args, "--owner", "group:payments", "--check")
    assert checked.returncode == 0, checked.stderr
    stale = pubsub_kit(*args, "--check")  # another owner: the file is stale for it
    assert stale.returncode == 1
    assert f"{output} differs from the topology; run: pubsub-kit catalog" in stale.stderr


def test_catalog_to_standard_output() -> None:
    done = pubsub_kit("catalog", "--output", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout == to_yaml(catalog_entities(TOPOLOGY))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--output", "{tmp}"], "--output {tmp} is a folder; --output takes a file path"),
        (["--readme", "{tmp}/none.md"], "{tmp}/none.md is not a file; --readme takes the README"),
        (["--readme", "{tmp}/plain.md"], "{tmp}/plain.md must have the lines <!-- topology-"),
        (["--output", "-", "--check"], "--check compares files: give --output a file path"),
        (["--owner", "two words"], "--owner must be an entity reference"),
    ],
    ids=["output-is-a-directory", "no-readme", "no-markers", "check-stdout", "bad-owner"],
)
def test_catalog_errors_are_one_sentence_and_exit_1(tmp_path, args, expected) -> None:
    (tmp_path / "plain.md").write_text("# no markers\n")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "catalog-info.yaml")]
    done = pubsub_kit("catalog", *args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"pubsub-kit: error: {expected.format(tmp=tmp_path)}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "catalog-info.yaml").exists()  # refused before writing anything
