"""Drain a backlog of N messages: raw streaming pull vs. ``shared.PullWorker``.

One publish fills one subscription per path with the same N toolkit-encoded ``PostLiked``
messages; each path then drains its own subscription. The clock runs from creating the client
(raw) or the worker (toolkit) until the N-th distinct message was handled, so both sides pay for
opening their stream.

- raw: ``SubscriberClient().subscribe(path, callback)`` with library defaults; the callback
  acks and counts.
- toolkit, idempotent: ``PullWorker`` on a consumer declared with ``uses_store=True`` and a new,
  empty ``SqliteStore`` per round: decode to a typed event, claim the event id, run the handler
  (it counts), complete the claim, ack.
- toolkit, idempotent, store in use: the same with a store that already holds the completed
  claims of ``store_claims`` earlier events, as any store does after it has run for a while
  (completed claims are kept 8 days). Made once through the store's API, copied per round.
- toolkit, no store: a consumer declared with ``uses_store=False``; the difference from the
  idempotent rows is what idempotency costs.

Each path runs with its own defaults: the library's flow control allows 1,000 outstanding
messages, ``WorkerSettings`` 100.

Every round gets a fresh topic and fresh subscriptions (``CONSUME.with_prefix``): the emulator
(0.8.20) does not notice that a streaming pull was cancelled (its handler for the client's
RST_STREAM throws ``NoSuchMethodError``, see the emulator's log), keeps leasing messages to the
dead stream, and a second stream on the same subscription stalls until the ack deadline runs out.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Counter, Results, Stopwatch, likes
from topologies import CONSUME

from shared import Delivery, Publisher, PullWorker
from shared.stores.sqlite import SqliteStore
from shared.system.events import PostLiked
from shared.tools.provision import provision
from shared.topology import subscription_name

ROW_STORE = "consume: PullWorker + SQLite idempotency"
ROW_STORE_FULL = "consume: PullWorker + SQLite holding {claims:,} claims"
ROW_NOSTORE = "consume: PullWorker, uses_store=False"

NOTES = {
    ROW_STORE: "raw = SubscriberClient.subscribe, callback acks; library defaults. "
    "Toolkit: a new, empty SqliteStore per round",
    ROW_STORE_FULL: "raw = the same raw streaming pull; toolkit: the store already holds "
    "{claims:,} completed claims, as a store that has been running does",
    ROW_NOSTORE: "raw = the same raw streaming pull",
}


class ConsumeRound:
    """One round: a fresh topic and subscriptions, each filled with the same ``count`` messages."""

    def __init__(
        self,
        project: str,
        tag: str,
        count: int,
        timeout: float,
        state_dir: Path,
        full_store: Path | None,
    ) -> None:
        self.project = project
        self.timeout = timeout
        self.state_dir = state_dir
        self.full_store = full_store
        self.topology = CONSUME.with_prefix(tag)
        provision(self.topology, project=project)
        (self.topic,) = self.topology.topics
        publisher = Publisher(self.topology, project=project, source="/services/bench")
        publisher.publish_all(likes(count))  # fresh event ids: nothing is a duplicate

    def raw_pull(self, count: int) -> float:
        from google.cloud import pubsub_v1

        counter = Counter()
        counter.expect(count)

        def callback(message: Any) -> None:
            message.ack()
            counter.hit(message.message_id)

        client = None
        future = None
        path = f"projects/{self.project}/subscriptions/{subscription_name(self.topic, 'raw_pull')}"
        try:
            with Stopwatch() as watch:
                client = pubsub_v1.SubscriberClient()
                future = client.subscribe(path, callback)
                counter.wait(self.timeout, "raw streaming pull")
        finally:
            if future is not None:
                future.cancel()
                with contextlib.suppress(Exception):  # the cancelled stream may re-raise its end
                    future.result(timeout=self.timeout)
            if client is not None:
                client.close()
        _check_duplicates(counter, "raw streaming pull")
        return watch.seconds

    def worker(self, consumer: str, count: int) -> float:
        counter = Counter()
        counter.expect(count)

        def handle(event: PostLiked, delivery: Delivery) -> None:
            counter.hit(delivery.message_id)

        store = None
        if self.topology.consumer(consumer).uses_store:
            path = self.state_dir / f"{self.topic}-{consumer}.db"
            if consumer == "kit_store_full" and self.full_store is not None:
                shutil.copyfile(self.full_store, path)
            store = SqliteStore(path)
        worker = None
        try:
            with Stopwatch() as watch:
                worker = PullWorker(
                    self.topology, consumer, handle, store=store, project=self.project
                )
                worker.start()
                counter.wait(self.timeout, f"PullWorker {consumer}")
        finally:
            if worker is not None:
                worker.stop(self.timeout)
            if store is not None:
                store.close()
        _check_duplicates(counter, f"PullWorker {consumer}")
        return watch.seconds

    def paths(self) -> list[tuple[str, Callable[[int], float]]]:
        paths: list[tuple[str, Callable[[int], float]]] = [
            ("raw", self.raw_pull),
            ("kit_store", lambda n: self.worker("kit_store", n)),
            ("kit_nostore", lambda n: self.worker("kit_nostore", n)),
        ]
        if self.full_store is not None:
            paths.append(("kit_store_full", lambda n: self.worker("kit_store_full", n)))
        return paths


def _check_duplicates(counter: Counter, what: str) -> None:
    if counter.duplicates:
        # Not fatal: redeliveries within one run are rare, but they would flatter the rate.
        print(f"  note: {what} saw {counter.duplicates} redelivered message(s)")


def _store_in_use(path: Path, claims: int) -> Path:
    """A store file holding ``claims`` completed claims, made through the store's own API."""
    store = SqliteStore(path)
    try:
        for i in range(claims):
            key = f"kit_store_full/earlier-{i}"
            store.claim(key, 60.0)
            store.complete(key)
    finally:
        store.close()  # the last connection: SQLite folds the WAL into the file
    return path


def run(
    project: str,
    messages: int,
    warmup: int,
    rounds: int,
    timeout: float,
    results: Results,
    store_claims: int = 0,
) -> None:
    with tempfile.TemporaryDirectory(prefix="pubsub-kit-bench-") as tmp:
        state = Path(tmp)
        full = _store_in_use(state / "in-use.db", store_claims) if store_claims else None
        warm = ConsumeRound(project, "warm", warmup, timeout, state, full)
        for _, path in warm.paths():
            path(warmup)
        rows = [(ROW_STORE, "kit_store"), (ROW_NOSTORE, "kit_nostore")]
        if full is not None:
            rows.insert(1, (ROW_STORE_FULL.format(claims=store_claims), "kit_store_full"))
        for index in range(rounds):
            paths = ConsumeRound(project, f"r{index}", messages, timeout, state, full).paths()
            seconds = {
                name: path(messages)
                for name, path in (paths if index % 2 == 0 else reversed(paths))
            }
            for row, side in rows:
                results.record(row, "toolkit", messages, seconds[side])
                results.record(row, "raw", messages, seconds["raw"])
    for row, text in NOTES.items():
        if row is ROW_STORE_FULL and full is None:
            continue
        results.note(row.format(claims=store_claims), text.format(claims=store_claims))
