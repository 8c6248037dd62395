"""Load the real function files through functions-framework's public create_app."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from functions_framework import create_app

from shared import wire
from shared.events import Event
from shared.stores import open_store
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"


@pytest.fixture
def store_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("PUBSUB_KIT_STORE", url)
    monkeypatch.delenv("K_SERVICE", raising=False)
    return url


@pytest.fixture
def client(store_url) -> Callable[[str], Any]:
    """A test client of ``functions/<name>/main.py``, as functions-framework serves it."""

    def make(name: str):
        source = REPO / "functions" / name / "main.py"
        return create_app(target=name, source=str(source)).test_client()

    return make


@pytest.fixture
def store(store_url):
    return open_store(store_url)


def push_body(
    event: Event,
    *,
    subscription: str,
    project: str = "test-project",
    attempt: int = 1,
    event_id: str | None = None,
    traceparent: str | None = None,
    time: datetime | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    envelope = wire.new_envelope(
        event,
        source="/tests",
        event_id=event_id,
        time=time,
        traceparent=traceparent,
        correlation_id=correlation_id,
    )
    data, attributes = wire.encode(event, envelope)
    return raw_push_body(
        data, attributes, subscription=subscription, project=project, attempt=attempt
    )


def raw_push_body(
    data: bytes,
    attributes: dict[str, str],
    *,
    subscription: str,
    project: str = "test-project",
    attempt: int = 1,
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": attributes.get("ce-id", "m-1"),
            "publishTime": now,
        },
        "subscription": f"projects/{project}/subscriptions/{subscription}",
        "deliveryAttempt": attempt,
    }


def golden(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((GOLDEN / name).read_text())
    return payload
