"""What ``pubsub-kit dev`` and ``demo`` print, and what the demo says it will show."""

from __future__ import annotations

import importlib.util
import json
import re
import uuid

from shared.system.events import OrderDispatched
from shared.tools.demo import NEVER_SUCCEED, demo_events, format_log_line
from tests.conftest import REPO


def _line(event_id: str) -> str:
    entry = {"severity": "INFO", "message": "handled", "event_id": event_id, "attempt": 1}
    return format_log_line("audit_log", json.dumps(entry))


def test_a_log_line_shows_the_whole_event_id() -> None:
    """A notification's id and its dispatch's may share any prefix: cut, the two look alike."""
    dispatch, notification = "9dcd6733-0d4e-4a33-8f55-1c2b6f1e8a01", "9dcd6733-77aa-5bb0-9c11-0e9d"
    assert f"id={dispatch} attempt=1" in _line(dispatch)
    assert _line(dispatch) != _line(notification)


def test_the_id_a_log_line_shows_is_the_one_pubsub_kit_trace_takes() -> None:
    event_id = str(uuid.uuid4())
    shown = re.search(r"\bid=(\S+)", _line(event_id))
    assert shown is not None and shown.group(1) == event_id


def test_the_demo_counts_what_can_never_succeed_as_it_publishes_it() -> None:
    """Two malformed messages (bad JSON, an undeclared type) and each dispatch by a carrier
    order_notifications has no template for."""
    path = REPO / "functions" / "order_notifications" / "notifications.py"
    spec = importlib.util.spec_from_file_location("demo_notifications", path)
    assert spec is not None and spec.loader is not None
    notifications = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notifications)
    events, _ = demo_events()
    unknown = [
        e
        for e in events
        if isinstance(e, OrderDispatched) and e.carrier not in notifications.TEMPLATES
    ]
    assert NEVER_SUCCEED == 2 + len(unknown) == 3


def test_the_readme_and_the_demo_agree_on_what_can_never_succeed() -> None:
    words = {"two": 2, "three": 3, "four": 4, "five": 5}
    readme = (REPO / "README.md").read_text()
    said = re.findall(r"(\w+) messages that can never succeed", readme)
    assert said, "the README says how many demo messages can never succeed"
    assert [words.get(word, word) for word in said] == [NEVER_SUCCEED] * len(said)
