"""A function process killed in the middle of handling: the event is retried and applied once.

``tests/test_functions/gated_likes`` records that it started each event, then waits for a gate
file. The test kills the function's process group while handlers wait (SIGKILL: nothing is
answered, nothing is released), opens the gate, and lets the local runtime's supervisor start the
function again. The dead instance's idempotency claims hold their events until the lease (10 s)
ends; then the retries take them over. Every event must be applied exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest

from shared import Publisher
from shared.stores import Store, open_store
from shared.system.events import PostLiked
from shared.tools.dev import LocalSystem
from tests.conftest import REPO
from tests.failure._support import FunctionOutput, poll
from tests.failure.conftest import Tally
from tests.test_functions.gated_likes.gated_topology import TOPOLOGY as GATED

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

EVENTS = 10
SUBSCRIPTION = "post-liked--gated_likes"


def starts(store: Store, post_id: str) -> dict[str, int]:
    """Worker pid -> how many times that process started handling ``post_id``."""
    return store.counters("started", post_id)


def applied(store: Store, post_id: str) -> int:
    return store.counters("applied", post_id).get("count", 0)


def test_a_function_killed_mid_handling_applies_each_event_once(
    project, tmp_path, monkeypatch, pull_all, tally: Tally
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("GATED_LIKES_GATE", str(gate))  # inherited by the function processes
    url = f"sqlite:///{tmp_path / 'state.db'}"
    output = FunctionOutput()
    local = LocalSystem(
        GATED,
        project=project,
        store_url=url,
        port_base=0,
        functions=["gated_likes"],
        functions_dir=REPO / "tests" / "test_functions",
        on_line=output,
    )
    store = open_store(url)
    now = datetime.now(UTC)
    posts = [f"post-{i}" for i in range(EVENTS)]
    events = [PostLiked(post_id=p, liker_id="u1", author_id="u2", liked_at=now) for p in posts]
    try:
        local.start()
        tally.published = len(Publisher(GATED).publish_all(events))
        assert poll(lambda: any(starts(store, p) for p in posts), timeout=30), "nothing started"

        victim = local.functions["gated_likes"].process
        assert victim is not None
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed = time.time()
        # The dead process's starts; whatever starts from now on is a new process.
        dead = {p: set(starts(store, p)) for p in posts}
        gate.touch()
        if poll(lambda: all(applied(store, p) for p in posts), timeout=60):
            poll(lambda: output.quiet_for(1.0), timeout=15)
    finally:
        local.stop()
    counts = {p: applied(store, p) for p in posts}
    retried = {p for p in posts if dead[p] and set(starts(store, p)) - dead[p]}
    store.close()

    killed_mid = sum(1 for p in posts if dead[p])
    last = output.last_time()
    tally.delivered = sum(output.statuses().values()) + killed_mid
    tally.applied = sum(1 for n in counts.values() if n)
    tally.duplicates = sum(max(0, n - 1) for n in counts.values())
    tally.dead_lettered = len(pull_all(project, f"{SUBSCRIPTION}--dlq", quiet=1, timeout=10))
    tally.lost = tally.published - tally.applied - tally.dead_lettered
    tally.notes.update(
        killed_mid_handling=killed_mid,
        retried_by_new_process=len(retried),
        restarts=output.restarts,
        applied_after_kill_s=round(last - killed, 1) if last is not None else None,
        max_attempt=output.max_attempt(),
        statuses=dict(output.statuses()),
    )
    tally.check()
    assert killed_mid >= 1 and output.restarts >= 1
    assert tally.dead_lettered == 0, "a healthy event was dead-lettered after the crash"
    assert retried == {p for p in posts if dead[p]}, "a killed event was never run again"
    assert counts == dict.fromkeys(posts, 1)
