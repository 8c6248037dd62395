"""A consumer that is down during a burst loses nothing: the backlog drains when it is back.

timeline_enrichment is stopped, 2,000 likes are published, and the function is started again.
Every like must be counted exactly once in the SQLite store; the tally notes how long the
backlog took to drain after the restart and at what rate.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from shared import Publisher
from shared.stores import Store, open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.dev import LocalSystem
from tests.failure._support import FunctionOutput, poll
from tests.failure.conftest import Tally

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

BURST = 2000
OUTAGE = 5.0  # seconds the function stays down, publishing the burst included
USERS = [f"user-{i}" for i in range(10)]
SUBSCRIPTION = "post-liked--timeline_enrichment"


def likes(count: int, seed: int) -> list[PostLiked]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        PostLiked(post_id=f"post-{i}", liker_id=liker, author_id=author, liked_at=now)
        for i, (liker, author) in enumerate(rng.sample(USERS, 2) for _ in range(count))
    ]


def expected_counts(events: Iterable[PostLiked]) -> Counter[tuple[str, str]]:
    return Counter((e.liker_id, e.author_id) for e in events)


def applied_counts(store: Store) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for liker in USERS:
        for author, n in store.counters("timeline_affinity", liker).items():
            counts[(liker, author)] = n
    return counts


def test_outage_during_a_burst_then_restart(project, tmp_path, pull_all, tally: Tally) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    outcomes = FunctionOutput()
    local = LocalSystem(
        TOPOLOGY,
        project=project,
        store_url=url,
        port_base=0,
        functions=["timeline_enrichment"],
        on_line=outcomes,
    )
    store = open_store(url)
    try:
        local.start()
        local.stop_function("timeline_enrichment")
        events = likes(BURST, seed=11)
        stopped = time.monotonic()
        tally.published = len(Publisher(TOPOLOGY).publish_all(events))
        # The outage goes on for a while; nothing may be applied (or acked away) meanwhile.
        applied_while_down = poll(
            lambda: sum(applied_counts(store).values()) > 0,
            timeout=max(0.0, OUTAGE - (time.monotonic() - stopped)),
        )

        down = time.monotonic() - stopped
        restarted = time.time()
        local.start_function("timeline_enrichment")
        expected = expected_counts(events)
        if poll(lambda: sum(applied_counts(store).values()) >= BURST, timeout=60):
            # A redelivery still on its way would be a duplicate: wait for a quiet second.
            poll(lambda: outcomes.quiet_for(1.0), timeout=15)
    finally:
        local.stop()
    counts = applied_counts(store)
    store.close()

    tally.delivered = sum(outcomes.statuses().values())
    tally.applied = sum(min(n, expected[pair]) for pair, n in counts.items())
    tally.duplicates = sum(max(0, n - expected[pair]) for pair, n in counts.items())
    tally.dead_lettered = len(pull_all(project, f"{SUBSCRIPTION}--dlq", quiet=1, timeout=10))
    tally.lost = tally.published - tally.applied - tally.dead_lettered
    last = outcomes.last_time("handled")
    lag = (last - restarted) if last is not None else float("nan")
    tally.notes.update(
        down_s=round(down, 1),
        applied_while_down=applied_while_down,
        lag_s=round(lag, 1),
        drain_per_s=round(tally.applied / lag) if lag > 0 else 0,
        statuses=dict(outcomes.statuses()),
    )
    tally.check()
    assert not applied_while_down, "a stopped function applied events"
    assert counts == expected
