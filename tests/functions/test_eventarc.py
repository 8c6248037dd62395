"""Behind ``gcloud functions deploy --trigger-topic``: Eventarc's own subscription, not ours."""

from __future__ import annotations

import copy
import json

import pytest

from shared import wire
from shared.push import parse_request, topic_of
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from tests.functions.conftest import golden, raw_push_body

# How Eventarc names the subscription it creates for a trigger: never <topic>--<consumer>.
EVENTARC_SUBSCRIPTION = "eventarc-europe-west1-audit-log-281-sub-123"


def eventarc(body: dict[str, object], project: str, topic: str) -> tuple[dict[str, str], bytes]:
    """``body`` as Eventarc's binary-mode CloudEvent from ``topic``, via its own subscription."""
    body = copy.deepcopy(body)
    body["subscription"] = f"projects/{project}/subscriptions/{EVENTARC_SUBSCRIPTION}"
    body.pop("deliveryAttempt", None)  # Eventarc does not say
    headers = dict(golden("eventarc_binary.json")["headers"])
    headers["ce-source"] = f"//pubsub.googleapis.com/projects/{project}/topics/{topic}"
    return headers, json.dumps(body).encode()


@pytest.mark.parametrize(
    ("source", "topic"),
    [
        ("//pubsub.googleapis.com/projects/p/topics/post-liked", "post-liked"),
        ("//pubsub.googleapis.com/projects/p/topics/", None),
        ("/services/orders", None),
        (None, None),
    ],
)
def test_the_topic_is_read_from_the_cloudevent_source(source, topic) -> None:
    assert topic_of(source) == topic


def test_both_eventarc_modes_carry_the_topic_into_the_message() -> None:
    for name in ("eventarc_binary.json", "eventarc_structured.json"):
        case = golden(name)
        raw = parse_request(case["headers"], json.dumps(case["body"]).encode())
        assert raw.topic == "post-liked", name


@pytest.mark.emulator
def test_an_undecodable_event_behind_eventarc_is_dead_lettered_to_the_topologys_topic(
    project, client, pull_all
) -> None:
    provision(TOPOLOGY)
    attributes = {
        "ce-specversion": "1.0",
        "ce-source": "/t",
        "ce-id": "x1",
        "ce-type": "user.updated.v1",
    }
    body = raw_push_body(b"{oops", attributes, subscription="ignored", project=project)
    headers, data = eventarc(body, project, "user-updated")
    response = client("audit_log").post("/", data=data, headers=headers)
    assert response.status_code == 204, response.data  # dead-lettered, so acked
    [letter] = pull_all(project, "user-updated--audit_log--dlq", expect=1)
    assert letter.attributes[wire.ATTR_DLQ_REASON] == "user.updated.v1: message data is not JSON"
    assert letter.attributes[wire.ATTR_DLQ_SUBSCRIPTION] == "user-updated--audit_log"
    assert wire.ATTR_DLQ_ATTEMPT not in letter.attributes
