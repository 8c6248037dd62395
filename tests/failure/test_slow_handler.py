"""A handler slower than the ack deadline (10 s) still has one effect per event.

Through the pull worker the library holds the message (its stream's ack deadline and lease
extensions), so it is not redelivered.
Through a function over HTTP the local delivery gives up at the ack deadline and nacks, as GCP
push does: the message comes back while the first handler still runs, the claim answers BUSY
(nack), and once the first run is done the redelivery is a DUPLICATE (ack). Either way the
runtime warns that handling outlasted the ack deadline.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import UTC, datetime

import pytest

from shared import Delivery, Publisher, PullWorker
from shared.stores import open_store
from shared.stores.sqlite import SqliteStore
from shared.system.events import PostLiked
from shared.tools.dev import LocalSystem
from shared.tools.provision import provision
from tests.conftest import REPO, wait_until
from tests.failure._support import FunctionOutput
from tests.failure.conftest import Tally
from tests.test_functions.slow_likes.slow_topology import ACK_DEADLINE, SLOW_SECONDS, TOPOLOGY

pytestmark = pytest.mark.emulator

SUB = "post-liked--slow_likes"
SLOW = "slow-0"
SLOW_ID = f"evt-{SLOW}"
POSTS = [SLOW, "p1", "p2", "p3"]
WARNING = "longer than the ack deadline"


def like(post_id: str) -> PostLiked:
    return PostLiked(post_id=post_id, liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


def count_effects(tally: Tally, runs: dict[str, int]) -> None:
    tally.applied = sum(1 for p in POSTS if runs.get(p, 0) > 0)
    tally.lost = sum(1 for p in POSTS if runs.get(p, 0) == 0)
    tally.duplicates = sum(max(0, runs.get(p, 0) - 1) for p in POSTS)


def test_pull_worker_holds_a_slow_message_without_redelivery(
    project, tmp_path, pull_all, tally, caplog
):
    provision(TOPOLOGY)
    runs: collections.Counter[str] = collections.Counter()
    calls: list[tuple[str, int | None]] = []
    never = threading.Event()  # nothing sets it: waiting on it is a bounded pause

    def slow(event: PostLiked, delivery: Delivery) -> None:
        calls.append((event.post_id, delivery.attempt))
        if event.post_id == SLOW:
            never.wait(SLOW_SECONDS)
        runs[event.post_id] += 1

    caplog.set_level(logging.INFO, logger="pubsub_kit.consumer")
    store = SqliteStore(tmp_path / "state.db")
    with (
        Publisher(TOPOLOGY) as publisher,
        PullWorker(TOPOLOGY, "slow_likes", slow, store=store),
    ):
        tally.published = len(publisher.publish_all([like(p) for p in POSTS]))
        wait_until(lambda: runs[SLOW] >= 1, timeout=SLOW_SECONDS + 20, what="the slow handler")
    leftover = pull_all(project, SUB, quiet=2)  # a redelivery not yet answered would be here
    store.close()

    lines = [r for r in caplog.records if r.name == "pubsub_kit.consumer"]
    statuses = [s for r in lines if (s := getattr(r, "fields", {}).get("status"))]
    tally.delivered = len(statuses)
    tally.notes["statuses"] = ",".join(sorted(statuses))
    tally.notes["left_in_subscription"] = len(leftover)
    count_effects(tally, runs)
    tally.check()
    assert [p for p, _ in calls].count(SLOW) == 1
    assert statuses == ["handled"] * len(POSTS), statuses  # the lease held: no redelivery
    assert leftover == []
    [warning] = [r.getMessage() for r in lines if WARNING in r.getMessage()]
    assert warning.startswith("handling took 1") and f"({ACK_DEADLINE} s)" in warning


@pytest.mark.e2e
def test_function_over_http_redelivered_at_the_deadline_runs_once(project, tmp_path, tally):
    output = FunctionOutput()
    url = f"sqlite:///{tmp_path / 'state.db'}"

    def slow_statuses() -> list[str]:
        return [str(e["status"]) for e in list(output.outcomes) if e.get("event_id") == SLOW_ID]

    with LocalSystem(
        TOPOLOGY,
        project=project,
        store_url=url,
        port_base=0,
        functions=["slow_likes"],
        functions_dir=REPO / "tests" / "test_functions",
        on_line=output,
        # Two requests at once, as two instances (or one with concurrency 2) would take them:
        # the redelivery then runs while the first handler still does, and meets its claim.
        concurrency=2,
    ):
        with Publisher(TOPOLOGY) as publisher:
            futures = {p: publisher.publish(like(p), event_id=f"evt-{p}") for p in POSTS}
            tally.published = sum(1 for f in futures.values() if f.result(timeout=30))
        # handled (after the deadline), and the redelivery found the claim done: acked.
        wait_until(
            lambda: "duplicate" in slow_statuses(),
            timeout=SLOW_SECONDS + 25,
            interval=0.2,
            what="the redelivery of the slow event to be acked as a duplicate",
        )
        store = open_store(url)
        runs = {p: store.counters("runs", p).get("count", 0) for p in POSTS}
        store.close()

    statuses = slow_statuses()
    tally.delivered = len(output.outcomes)
    tally.notes["slow_statuses"] = ",".join(statuses)
    count_effects(tally, runs)
    tally.check()
    assert statuses.count("handled") == 1 and statuses[-1] == "duplicate", statuses
    assert "busy" in statuses, f"the redelivery never met the live claim: {statuses}"
    assert statuses.index("busy") < statuses.index("handled"), statuses
    [warning] = [e for e in output.entries if WARNING in e.get("message", "")]
    assert warning["event_id"] == SLOW_ID and warning["severity"] == "WARNING"
    assert f"({ACK_DEADLINE} s)" in warning["message"]
