"""A Backstage service catalog and a Mermaid diagram, both generated from the topology.

``pubsub-kit catalog`` writes ``catalog-info.yaml`` (Backstage's file name, at the project root):

- one ``System`` for the topology;
- one ``API`` per topic (``spec.type: asyncapi``), whose definition is the AsyncAPI document of
  that topic alone, cut from the one ``pubsub-kit schema`` writes, with the event schemas inlined
  so that Backstage needs no other file;
- one ``Component`` (``spec.type: service``) per consumer, i.e. per Cloud Function, with
  ``consumesApis`` naming the topics it consumes and ``providesApis`` the topics it publishes to.

The topology records only the functions. A service outside it that publishes to a topic belongs
in its own repository's ``catalog-info.yaml``, with ``providesApis: [<topic>]``: Backstage joins
the two. Dead-letter topics are not entities; each component's description names its own.

Entity names are the topology's names (topics are kebab-case, consumers snake_case); a name
Backstage would refuse (over 63 characters, or ``__`` in a consumer name) is shortened to one it
accepts and ends with 8 hex digits of a hash, and the real name goes in ``metadata.title``.

:func:`mermaid` draws the same graph, with the dead-letter topics, for the README
(``--readme README.md`` rewrites it between the ``topology-diagram`` markers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from shared.errors import ToolkitError
from shared.tools.contracts import asyncapi, event_schemas
from shared.topology import Consumer, Subscription, Topology

DIAGRAM_BEGIN = "<!-- topology-diagram:begin -->"
DIAGRAM_END = "<!-- topology-diagram:end -->"
_GENERATED = "Generated from the topology by `pubsub-kit catalog`; do not edit by hand."

# Backstage's entity names (KubernetesValidatorFunctions.isValidObjectName) and references.
_ENTITY_NAME = re.compile(r"[A-Za-z0-9]+([-_.][A-Za-z0-9]+)*")
_MAX_ENTITY_NAME = 63
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_NAMESPACE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_LIFECYCLE = re.compile(r"\S+")


@dataclasses.dataclass(frozen=True)
class CatalogSettings:
    """Who owns the entities, at which stage they are, and the system that groups them.

    Args:
        system: the ``System`` entity's name; every API and Component is part of it.
        owner: an entity reference to the owning group or user, e.g. ``group:payments`` or
            ``payments`` (a group, in the default namespace).
        lifecycle: ``experimental``, ``production``, ``deprecated`` or a stage of your own.

    Raises:
        ToolkitError: a value Backstage would refuse, named with what was expected.
    """

    system: str = "pubsub-kit"
    owner: str = "platform-team"
    lifecycle: str = "experimental"

    def __post_init__(self) -> None:
        if not _is_entity_name(self.system):
            raise ToolkitError(
                f"--system must be a Backstage entity name (letters and digits separated by "
                f"single '-', '_' or '.', at most 63 characters); found {self.system!r}"
            )
        if not _is_entity_ref(self.owner):
            raise ToolkitError(
                f"--owner must be an entity reference like 'payments', 'group:payments' or "
                f"'user:default/jane'; found {self.owner!r}"
            )
        if not _LIFECYCLE.fullmatch(self.lifecycle):
            raise ToolkitError(
                f"--lifecycle must be one word like 'experimental', 'production' or "
                f"'deprecated'; found {self.lifecycle!r}"
            )


def catalog_entities(
    topology: Topology, settings: CatalogSettings | None = None
) -> list[dict[str, Any]]:
    """The Backstage entities of ``topology``: the System, then APIs and Components by name.

    Example::

        entities = catalog_entities(TOPOLOGY, CatalogSettings(owner="group:payments"))
        Path("catalog-info.yaml").write_text(to_yaml(entities))
    """
    settings = settings or CatalogSettings()
    document = asyncapi(topology)
    schemas = event_schemas(topology)
    common = {"lifecycle": settings.lifecycle, "owner": settings.owner, "system": settings.system}
    entities = [
        _entity(
            "System",
            settings.system,
            "Pub/Sub topics and the Cloud Functions that consume them",
            ["pubsub"],
            {"owner": settings.owner},
        )
    ]
    for topic in sorted(topology.topics.values(), key=lambda t: t.name):
        definition = topic_asyncapi(document, schemas, topic.name)
        types = ", ".join(model.event_type for model in topic.events)
        entities.append(
            _entity(
                "API",
                topic.name,
                f"Pub/Sub topic {topic.name}: {types}",
                ["pubsub"],
                {"type": "asyncapi", **common, "definition": _json(definition)},
            )
        )
    for consumer in sorted(topology.consumers.values(), key=lambda c: c.name):
        spec: dict[str, Any] = {"type": "service", **common}
        spec["consumesApis"] = sorted(_entity_name(t) for t in consumer.topics)
        if consumer.publishes:
            spec["providesApis"] = sorted(_entity_name(t) for t in consumer.publishes)
        entities.append(
            _entity(
                "Component",
                consumer.name,
                _describe(topology, consumer),
                ["cloud-function", "pubsub"],
                spec,
            )
        )
    return entities


def topic_asyncapi(
    document: Mapping[str, Any], schemas: Mapping[str, Any], topic: str
) -> dict[str, Any]:
    """The AsyncAPI document of one topic, cut from :func:`~shared.tools.contracts.asyncapi`.

    Its channel, the operations on it and its messages. Each message's payload, a file of its own
    in ``docs/contracts/``, is inlined under ``components.schemas``, its references rewritten to
    point into this document: Backstage has no folder to resolve a file reference against.
    """
    channel = document["channels"][topic]
    ref = f"#/channels/{topic}"
    operations = {
        name: op for name, op in document["operations"].items() if op["channel"]["$ref"] == ref
    }
    messages: dict[str, Any] = {}
    components = document["components"]
    inlined = {"CloudEventAttributes": components["schemas"]["CloudEventAttributes"]}
    for message_ref in channel["messages"].values():
        key = message_ref["$ref"].rsplit("/", 1)[-1]
        message = components["messages"][key]
        pointer = f"#/components/schemas/{key}"
        messages[key] = {**message, "payload": {"$ref": pointer}}
        inlined[key] = _embed(schemas[message["name"]], pointer)
    return {
        **document,
        "info": {**document["info"], "title": f"Pub/Sub topic {topic}"},
        "channels": {topic: channel},
        "operations": operations,
        "components": {"messages": messages, "schemas": inlined},
    }


def to_yaml(entities: list[dict[str, Any]]) -> str:
    """Entities as one multi-document YAML file, byte for byte the same for the same input.

    Plain scalars where YAML reads them back as the same string, JSON-quoted strings elsewhere,
    and multi-line strings (the API definitions) as literal blocks.
    """
    lines = [f"# {_GENERATED}"]
    for entity in entities:
        lines.append("---")
        lines.extend(_yaml_lines(entity, ""))
    return "\n".join(lines) + "\n"


def mermaid(topology: Topology) -> str:
    """A ``flowchart LR`` of the topology: topics, functions, what each publishes, dead letters.

    Topics and dead-letter topics are rounded, functions square; ``topic --> function`` is a
    subscription, ``function --> topic`` a publish, a dotted ``function -.-> topic--function--dlq``
    where that subscription's dead letters go.
    """
    subscriptions = sorted(topology.subscriptions.values(), key=lambda s: s.name)
    consumers = sorted(topology.consumers.values(), key=lambda c: c.name)
    lines = ["flowchart LR", f"  %% {_GENERATED}"]
    lines += [f'  {_node("topic", name)}(["{name}"])' for name in sorted(topology.topics)]
    lines += [f'  {_node("fn", c.name)}["{c.name}"]' for c in consumers]
    lines += [f'  {_dead_letter_node(s)}(["{s.dead_letter_topic}"])' for s in subscriptions]
    lines += [
        f"  {_node('topic', s.topic.name)} --> {_node('fn', s.consumer.name)}"
        for s in subscriptions
    ]
    lines += [
        f"  {_node('fn', c.name)} --> {_node('topic', topic)}"
        for c in consumers
        for topic in sorted(c.publishes)
    ]
    lines += [
        f"  {_node('fn', s.consumer.name)} -.-> {_dead_letter_node(s)}" for s in subscriptions
    ]
    if subscriptions:
        lines.append("  classDef deadLetter stroke-dasharray: 4 3")
        lines.append(f"  class {','.join(map(_dead_letter_node, subscriptions))} deadLetter")
    return "\n".join(lines) + "\n"


def replace_diagram(readme: str, diagram: str, *, source: str = "README") -> str:
    """``readme`` with the text between the diagram markers replaced by ``diagram``.

    Raises:
        ToolkitError: the markers are missing, repeated or out of order.
    """
    begin, end = readme.find(DIAGRAM_BEGIN), readme.find(DIAGRAM_END)
    if readme.count(DIAGRAM_BEGIN) != 1 or readme.count(DIAGRAM_END) != 1 or end < begin:
        raise ToolkitError(
            f"{source} must have the lines {DIAGRAM_BEGIN} and {DIAGRAM_END}, once each and in "
            f"that order, where the topology diagram goes"
        )
    block = f"{DIAGRAM_BEGIN}\n```mermaid\n{diagram}```\n"
    return readme[:begin] + block + readme[end:]


def _entity(
    kind: str, name: str, description: str, tags: list[str], spec: dict[str, Any]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": _entity_name(name)}
    if metadata["name"] != name:
        metadata["title"] = name
    metadata["description"] = description
    metadata["tags"] = tags
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def _describe(topology: Topology, consumer: Consumer) -> str:
    subscriptions = ", ".join(
        f"{sub.name} (dead letters: {sub.dead_letter_topic})"
        for sub in sorted(topology.subscriptions_of(consumer.name), key=lambda s: s.name)
    )
    return (
        f"Cloud Function {consumer.function_name} (functions/{consumer.name}); "
        f"subscriptions: {subscriptions}"
    )


def _is_entity_name(name: str) -> bool:
    return len(name) <= _MAX_ENTITY_NAME and _ENTITY_NAME.fullmatch(name) is not None


def _is_entity_ref(ref: str) -> bool:
    kind, _, rest = ref.rpartition(":")
    namespace, _, name = rest.rpartition("/")
    return (
        (not kind or _KIND.fullmatch(kind) is not None)
        and (
            not namespace or (_NAMESPACE.fullmatch(namespace) is not None and len(namespace) <= 63)
        )
        and _is_entity_name(name)
    )


def _entity_name(name: str) -> str:
    """``name`` if Backstage accepts it, else a valid name that still starts like it."""
    if _is_entity_name(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = re.sub(r"[^A-Za-z0-9]+", "-", name)[: _MAX_ENTITY_NAME - 9].strip("-")
    return f"{head}-{digest}"


def _embed(schema: Mapping[str, Any], pointer: str) -> dict[str, Any]:
    """A standalone JSON Schema placed at ``pointer``: its own ``#/...`` refs made absolute.

    ``$id`` and ``$schema`` go: under an ``$id`` a ``#/...`` ref would resolve against the
    schema, without it against the document, and AsyncAPI tools differ on which they honour.
    """

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (
                    pointer + v[1:]
                    if k == "$ref" and isinstance(v, str) and v[:2] == "#/"
                    else walk(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return {k: walk(v) for k, v in schema.items() if k not in ("$id", "$schema")}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def _node(prefix: str, name: str) -> str:
    # Topic names have single hyphens and no "_", so "__" separates the topic from the
    # consumer in a dead-letter node's id: ids stay distinct.
    return f"{prefix}_{name.replace('-', '_')}"


def _dead_letter_node(sub: Subscription) -> str:
    return _node("dlq", f"{sub.topic.name}__{sub.consumer.name}")


# Plain scalars YAML 1.1 and 1.2 both read back as this very string: no number, boolean or
# null look-alike, no indicator character, no ": " or " #".
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./:-]*")
_NOT_PLAIN = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} as YAML")
    if _PLAIN.fullmatch(value) and not value.endswith(":") and value.lower() not in _NOT_PLAIN:
        return value
    # A JSON string is a YAML double-quoted scalar with the same escapes; ASCII only, so that
    # no character YAML forbids in a stream (C1 controls, lone surrogates) is written raw.
    return json.dumps(value)


def _is_block(text: str) -> bool:
    # "|" keeps the text exactly when it ends in one newline, has no leading space and every
    # line is printable (no CR, tab or control character, which a quoted string escapes).
    return (
        "\n" in text[:-1]
        and text.endswith("\n")
        and not text.endswith("\n\n")
        and not text.startswith((" ", "\n"))
        and all(line.isprintable() for line in text.split("\n"))
    )


def _yaml_lines(mapping: Mapping[str, Any], pad: str) -> Iterator[str]:
    for key, value in mapping.items():
        head = f"{pad}{_yaml_scalar(key)}:"
        if isinstance(value, dict) and value:
            yield head
            yield from _yaml_lines(value, pad + "  ")
        elif isinstance(value, list) and value:
            yield head
            yield from (f"{pad}  - {_yaml_scalar(item)}" for item in value)
        elif isinstance(value, str) and _is_block(value):
            yield f"{head} |"
            yield from (f"{pad}  {line}" if line else "" for line in value[:-1].split("\n"))
        elif isinstance(value, dict | list):
            yield f"{head} {'{}' if isinstance(value, dict) else '[]'}"
        else:
            yield f"{head} {_yaml_scalar(value)}"
