"""Two instances of one consumer, one store: each event has one effect.

(a) The same push body reaches two function processes at the same instant, as when Pub/Sub
    redelivers to another instance while the first is still working: the idempotency claim lets
    one run the handler; the other answers BUSY (nack, it comes back and is then a duplicate) or
    DUPLICATE.
(b) Two local runtimes (two LocalSystems, each with its own function process and its own pull
    streams) on one emulator project and one SQLite store: every event applied once, none lost.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from shared import Publisher
from shared.stores import Store, open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from tests.failure._support import FunctionOutput, poll
from tests.failure.conftest import Tally
from tests.functions.conftest import push_body

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

SUBSCRIPTION = "post-liked--timeline_enrichment"
AUTHOR = "author"


def like(i: int) -> PostLiked:
    """Like number ``i``; each has a liker of its own, so its counter is its effect alone."""
    return PostLiked(
        post_id=f"post-{i}", liker_id=f"liker-{i}", author_id=AUTHOR, liked_at=datetime.now(UTC)
    )


def effects(store: Store, count: int) -> list[int]:
    """How many times each like was counted."""
    return [store.counters("timeline_affinity", f"liker-{i}").get(AUTHOR, 0) for i in range(count)]


def fill(tally: Tally, counts: list[int]) -> None:
    tally.applied = sum(1 for n in counts if n)
    tally.duplicates = sum(max(0, n - 1) for n in counts)
    tally.lost = tally.published - tally.applied - tally.dead_lettered


def post(url: str, body: bytes, timeout: float = 30.0) -> int:
    """POST a push body as Pub/Sub does; the HTTP status."""
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


PUSHED = 40
COPIES = 4  # concurrent posts of each body, alternating between the two instances


def test_one_push_delivered_to_two_instances_at_once_has_one_effect(
    local_system, project, tmp_path, tally: Tally
) -> None:
    output = FunctionOutput()
    urls = [
        local_system(TOPOLOGY, ["timeline_enrichment"], on_line=output, deliver=False)
        .functions["timeline_enrichment"]
        .url
        for _ in range(2)
    ]
    bodies = [
        json.dumps(push_body(like(i), subscription=SUBSCRIPTION, project=project)).encode()
        for i in range(PUSHED)
    ]
    statuses: Counter[int] = Counter()
    redeliveries = 0

    def deliver(url: str, body: bytes, barrier: threading.Barrier) -> int:
        """Post at the barrier; post again while nacked (Pub/Sub redelivers it), bounded."""
        nonlocal redeliveries
        barrier.wait(10)
        deadline = time.monotonic() + 30
        status = post(url, body)
        while not 200 <= status < 300 and time.monotonic() < deadline:
            statuses[status] += 1
            redeliveries += 1
            time.sleep(0.05)  # poll interval before the re-POST; the loop has a deadline
            status = post(url, body)
        statuses[status] += 1
        return status

    with concurrent.futures.ThreadPoolExecutor(COPIES) as pool:
        for body in bodies:
            barrier = threading.Barrier(COPIES)
            answers = [pool.submit(deliver, urls[k % 2], body, barrier) for k in range(COPIES)]
            for answer in answers:
                answer.result(60)
        tally.published = PUSHED
    poll(lambda: output.quiet_for(0.5), timeout=10)

    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        counts = effects(store, PUSHED)
    seen = output.statuses()
    tally.delivered = sum(statuses.values())
    fill(tally, counts)
    tally.notes.update(
        copies_per_event=COPIES,
        handler_runs=seen["handled"],
        duplicate_answers=seen["duplicate"],
        busy_answers=seen["busy"],
        redeliveries=redeliveries,
        http=dict(sorted(statuses.items())),
    )
    tally.check()
    assert counts == [1] * PUSHED
    # The claim, not only the counter's once-token, kept the second instance out.
    assert seen["handled"] == PUSHED, f"the handler ran {seen['handled']} times for {PUSHED}"


RUNTIME_EVENTS = 300


def test_two_runtimes_pulling_one_project_apply_each_event_once(
    local_system, project, tmp_path, pull_all, tally: Tally
) -> None:
    outputs = [FunctionOutput(), FunctionOutput()]
    for output in outputs:
        local_system(TOPOLOGY, ["timeline_enrichment"], on_line=output)
    events = [like(i) for i in range(RUNTIME_EVENTS)]
    started = time.monotonic()
    tally.published = len(Publisher(TOPOLOGY).publish_all(events))

    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        if poll(lambda: all(effects(store, RUNTIME_EVENTS)), timeout=30, interval=0.2):
            poll(lambda: all(o.quiet_for(1.0) for o in outputs), timeout=15)
        elapsed = time.monotonic() - started
        counts = effects(store, RUNTIME_EVENTS)

    per_runtime = [sum(o.statuses().values()) for o in outputs]
    statuses = outputs[0].statuses() + outputs[1].statuses()
    tally.delivered = sum(per_runtime)
    tally.dead_lettered = len(pull_all(project, f"{SUBSCRIPTION}--dlq", quiet=1, timeout=10))
    fill(tally, counts)
    tally.notes.update(
        per_runtime=per_runtime,
        statuses=dict(statuses),
        all_applied_s=round(elapsed, 1),
    )
    tally.check()
    assert counts == [1] * RUNTIME_EVENTS
