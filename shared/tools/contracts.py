"""Language-agnostic event contracts: JSON Schema and proto3 per event type, and AsyncAPI.

``pubsub-kit schema`` writes them under ``docs/contracts/``; a producer or consumer in another
language validates message data against ``<event type>.schema.json`` and reads the envelope
attributes from ``asyncapi.json``, or generates its types from ``proto/post_liked_v1.proto``
(for ``post.liked.v1``; see :mod:`shared.tools.protobuf`). They are generated from the models,
so they cannot drift; ``pubsub-kit schema --check`` (and a test) fails when the checked-in files
are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import wire
from shared.tools import protobuf
from shared.topology import Topology

_ENVELOPE_ATTRIBUTES = {
    wire.ATTR_SPECVERSION: ("CloudEvents spec version; always 1.0", True),
    wire.ATTR_ID: ("Unique event id; consumers drop repeats of an id as duplicates", True),
    wire.ATTR_TYPE: ("Versioned event type, e.g. post.liked.v1", True),
    wire.ATTR_SOURCE: ("URI reference of the producer, e.g. /services/orders", True),
    wire.ATTR_TIME: ("RFC 3339 time the event happened", True),
    wire.ATTR_CONTENT_TYPE: ("Always application/json", True),
    wire.ATTR_SUBJECT: ("What the event is about (e.g. the post id)", False),
    wire.ATTR_CORRELATION: ("Id shared by every event of one chain of causes", False),
    wire.ATTR_TRACEPARENT: ("W3C trace context of the publishing span", False),
    wire.ATTR_TRACESTATE: ("W3C vendor trace state", False),
}


def event_schemas(topology: Topology) -> dict[str, dict[str, Any]]:
    """Event type -> JSON Schema of its data."""
    return {model.event_type: model.json_schema() for model in topology.registry}


def asyncapi(topology: Topology) -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per topic, one message per event type."""
    attributes = {
        "type": "object",
        "required": sorted(k for k, (_, required) in _ENVELOPE_ATTRIBUTES.items() if required),
        "properties": {
            k: {"type": "string", "description": text}
            for k, (text, _) in sorted(_ENVELOPE_ATTRIBUTES.items())
        },
    }
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in sorted(topology.topics.values(), key=lambda t: t.name):
        refs = {}
        for model in topic.events:
            key = model.event_type.replace(".", "_")
            messages[key] = {
                "name": model.event_type,
                "title": model.__name__,
                "summary": (model.__doc__ or "").strip().split("\n")[0],
                "contentType": wire.CONTENT_TYPE,
                "headers": {"$ref": "#/components/schemas/CloudEventAttributes"},
                "payload": {"$ref": f"{model.event_type}.schema.json"},
                "bindings": {"googlepubsub": {"bindingVersion": "0.2.0"}},
            }
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        # No googlepubsub channel binding: its schema (0.2.0) requires schemaSettings, i.e. a
        # Pub/Sub schema on the topic, and these topics have none; the AsyncAPI parser refuses
        # such a document. The retention goes in an extension field instead.
        channels[topic.name] = {
            "address": topic.name,
            "messages": refs,
            **(
                {"x-messageRetentionDuration": f"{topic.message_retention}s"}
                if topic.message_retention
                else {}
            ),
        }
        operations[f"publish_{topic.name.replace('-', '_')}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
        }
    for sub in sorted(topology.subscriptions.values(), key=lambda s: s.name):
        operations[f"consume_{sub.name.replace('-', '_')}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{sub.topic.name}"},
            "summary": f"{sub.consumer.name} via subscription {sub.name} "
            f"(dead letters: {sub.dead_letter_topic})",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "pubsub-kit event contracts",
            "version": "1.0.0",
            "description": "CloudEvents over Google Cloud Pub/Sub, binary content mode: message "
            "data is the event's JSON data; the envelope travels as ce-* attributes.",
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventAttributes": attributes}},
    }


def render(topology: Topology) -> dict[str, str]:
    """File name -> exact text of every contract file."""
    files = {
        f"{event_type}.schema.json": _dump(schema)
        for event_type, schema in event_schemas(topology).items()
    }
    files["asyncapi.json"] = _dump(asyncapi(topology))
    return files


def write_contracts(topology: Topology, output_dir: Path, *, check: bool = False) -> list[Path]:
    """Write the contract files; returns the ones that changed (with ``check``: would change).

    Besides :func:`render`'s files, a ``.proto`` per event type under ``proto/`` (see
    :mod:`shared.tools.protobuf`), numbered like the ones already there.
    """
    files = render(topology) | protobuf.render(topology, protobuf.checked_in(output_dir))
    changed = []
    for name, text in files.items():
        path = output_dir / name
        if path.exists() and path.read_text() == text:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return changed


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
