"""The README's handler examples call the example system's real handlers, and work as shown.

Each test runs the code of one README example (with the ``...`` filled in), so an example that
names a function the repository does not have fails here first.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from shared import Outcome, Publisher, PullWorker
from shared.stores.sqlite import SqliteStore
from shared.system.events import OrderDispatched, PostLiked, PostLikedV2
from shared.system.topology import TOPOLOGY
from shared.testing import HandlerHarness
from tests.conftest import REPO


def function_module(function: str, name: str) -> ModuleType:
    """``functions/<function>/<name>.py``, which the README imports as ``from <name> import``
    (a function's folder is its import root, as on Cloud Functions)."""
    spec = importlib.util.spec_from_file_location(
        f"readme_{name}", REPO / "functions" / function / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_harness_example_dead_letters_a_dispatch_no_template_exists_for() -> None:
    """README, "Unit-test a handler without an emulator"."""
    notify_dispatch = function_module("order_notifications", "notifications").notify_dispatch

    publisher = Publisher(TOPOLOGY)  # its client is created on first publish: none here
    harness = HandlerHarness(
        TOPOLOGY,
        "order_notifications",
        lambda event, delivery: notify_dispatch(publisher, event, delivery),
    )
    result = harness.deliver(
        OrderDispatched(
            order_id="order-1",
            customer_id="dan",
            carrier="pigeon-post",
            dispatched_at=datetime.now(UTC),
        )
    )
    assert result.outcome is Outcome.DEAD_LETTERED
    assert harness.dead_letters[0].reason.startswith("PermanentError")


def test_the_pull_worker_example_runs_the_timeline_handler_with_v1_likes_upcast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README, "Services that are not functions": the worker's handler, built as shown (the
    worker itself is constructed, not run), takes a v1 like upcast as the function does."""
    timeline = function_module("timeline_enrichment", "timeline")
    record_like, affinity = timeline.record_like, timeline.affinity

    monkeypatch.setenv("PUBSUB_PROJECT_ID", "readme-example")
    store = SqliteStore(":memory:")  # the README: open_store(), i.e. PUBSUB_KIT_STORE

    def handler(event: Any, delivery: Any) -> None:
        record_like(store, event, delivery)

    worker = PullWorker(
        TOPOLOGY, "timeline_enrichment", handler, store=store, accepts=[PostLikedV2]
    )
    worker.stop()  # never started: releases what construction made
    harness = HandlerHarness(
        TOPOLOGY, "timeline_enrichment", handler, store=store, accepts=[PostLikedV2]
    )
    like = PostLiked(post_id="p-1", liker_id="alice", author_id="bob", liked_at=datetime.now(UTC))
    assert harness.deliver(like).outcome is Outcome.HANDLED
    assert affinity(store, "alice") == {"bob": 1}
