"""Replay N dead letters to their topic: ``shared.tools.dlq.replay`` vs. raw pull + publish.

Per round and side a fresh topology (``REPLAY.with_prefix``): a topic, one consumer
subscription on it, and that subscription's dead-letter topic and subscription. Before the
clock, the dead-letter topic gets N dead letters exactly as the toolkit writes them: a
``PostLiked`` encoded by :mod:`shared.wire` plus the ``pubsubkit-dlq-*`` attributes of
:func:`shared.runtime.dead_lettering.dead_letter_attributes` (what the ``DeadLetter`` step sends).
Both sides get the same data and attributes, on their own dead-letter subscription.

- toolkit: ``dlq.replay(topology, subscription, project=...)``, the function that
  ``pubsub-kit dlq replay`` runs (no ``--rate``), with its own clients; the clock stops when it
  returns, and its report must say N replayed.
- raw: what a user writes with the library: a ``SubscriberClient`` and a ``PublisherClient``
  (default batching); ``pull`` up to :data:`RAW_PULL` messages, publish each one's data and
  attributes (the dead-letter ones left out, as the toolkit does, so both send the same
  messages), wait for the futures, ``acknowledge`` the batch's ack ids in one call; until a pull
  comes back empty. Pulls ask ``return_immediately``, as the toolkit does on the emulator: a
  waiting pull on an empty emulator subscription costs seconds.

The clock runs from creating the clients (both sides) to the end. Afterwards, outside the
clock, each side's dead-letter subscription must be empty and its consumer subscription must
hold the N replayed messages (distinct ``ce-id``), or the run fails.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness import BenchError, Results, Stopwatch, likes, wait_futures

from shared import Consumer, Topic, Topology, wire
from shared.delivery import RawMessage
from shared.runtime.dead_lettering import dead_letter_attributes
from shared.system.events import PostLiked
from shared.tools import dlq
from shared.tools.provision import provision

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

ROW = "replay: dlq.replay of {count:,} dead letters"
RAW_PULL = 1000  # messages asked per raw pull; the emulator hands out at most 100
CALL_TIMEOUT = 30.0  # seconds for one pull or acknowledge, outside the overall deadline
REASON = "PermanentError: post not found"

# One topic, one consumer: its subscription is where the replayed messages arrive (and are
# counted), its dead-letter subscription is what is replayed.
REPLAY = Topology(
    topics=[Topic("bench-replay", events=[PostLiked])],
    consumers=[Consumer("replayed", topics=["bench-replay"], uses_store=False)],
)
_DEAD_LETTER_PREFIXES = ("pubsubkit-dlq-", "CloudPubSubDeadLetterSource")


class Side:
    """One side's resources in one round: a topology whose dead-letter subscription is full."""

    def __init__(self, project: str, prefix: str) -> None:
        self.project = project
        self.topology = REPLAY.with_prefix(prefix)
        (self.subscription,) = self.topology.subscriptions.values()
        self.topic_path = f"projects/{project}/topics/{self.subscription.topic.name}"
        self.dead_letter_topic = f"projects/{project}/topics/{self.subscription.dead_letter_topic}"
        self.dead_letters = (
            f"projects/{project}/subscriptions/{self.subscription.dead_letter_subscription}"
        )
        self.replayed = f"projects/{project}/subscriptions/{self.subscription.name}"

    def fill(self, publisher: PublisherClient, encoded: list[tuple[bytes, dict[str, str]]]) -> None:
        """Put one dead letter per encoded event on the dead-letter topic, as the runtime does."""
        name = self.subscription.name
        futures = []
        for index, (data, attributes) in enumerate(encoded):
            raw = RawMessage(data, attributes, f"m-{index}", attempt=1, subscription=name)
            letter = dead_letter_attributes(raw, "replayed", name, REASON)
            futures.append(publisher.publish(self.dead_letter_topic, data, **letter))
        wait_futures(futures, CALL_TIMEOUT * 4, f"filling {self.subscription.dead_letter_topic}")


def _pull(subscriber: SubscriberClient, path: str, max_messages: int) -> list[Any]:
    response = subscriber.pull(
        request={"subscription": path, "max_messages": max_messages, "return_immediately": True},
        timeout=CALL_TIMEOUT,
    )
    return list(response.received_messages)


def _original(attributes: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if not k.startswith(_DEAD_LETTER_PREFIXES)}


def raw_replay(side: Side, count: int, timeout: float) -> float:
    """Pull, publish, wait, ack, until the dead-letter subscription is empty; the seconds."""
    from google.cloud import pubsub_v1

    deadline = time.monotonic() + timeout
    replayed = 0
    subscriber = publisher = None
    try:
        with Stopwatch() as watch:
            subscriber = pubsub_v1.SubscriberClient()
            publisher = pubsub_v1.PublisherClient()
            while True:
                received = _pull(subscriber, side.dead_letters, RAW_PULL)
                if not received:
                    break
                futures = [
                    publisher.publish(
                        side.topic_path, r.message.data, **_original(r.message.attributes)
                    )
                    for r in received
                ]
                wait_futures(futures, max(0.0, deadline - time.monotonic()), "raw re-publish")
                subscriber.acknowledge(
                    request={
                        "subscription": side.dead_letters,
                        "ack_ids": [r.ack_id for r in received],
                    },
                    timeout=CALL_TIMEOUT,
                )
                replayed += len(received)
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"raw replay: {replayed} of {count} after {timeout:g} s, not drained"
                    )
    finally:
        if publisher is not None:
            publisher.stop()
        if subscriber is not None:
            subscriber.close()
    if replayed < count:
        raise BenchError(f"raw replay: drained after {replayed} of {count} dead letters")
    return watch.seconds


def kit_replay(side: Side, count: int, timeout: float) -> float:
    """``dlq.replay`` from the dead-letter subscription to the topic; the seconds."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with Stopwatch() as watch:
                outcome["report"] = dlq.replay(
                    side.topology, side.subscription.name, project=side.project
                )
            outcome["seconds"] = watch.seconds
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc

    # A thread of its own only so that the wait has a deadline; daemon, so a stuck replay
    # cannot keep the bench from exiting with its error.
    thread = threading.Thread(target=run, name="dlq-replay", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise BenchError(f"dlq.replay of {count} dead letters did not return within {timeout:g} s")
    if "error" in outcome:
        raise BenchError(f"dlq.replay failed: {outcome['error']!r}")
    report: dlq.ReplayReport = outcome["report"]
    if (report.replayed, report.failed, report.missing, report.error) != (count, 0, 0, None):
        raise BenchError(
            f"dlq.replay of {count}: replayed {report.replayed}, failed {report.failed}, "
            f"missing {report.missing}, skipped {report.skipped}, error {report.error!r}"
        )
    return float(outcome["seconds"])


def check(side: Side, what: str, count: int, timeout: float) -> None:
    """The dead-letter subscription is empty and the topic got ``count`` distinct events."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        left = _pull(subscriber, side.dead_letters, 100)
        if left:
            raise BenchError(f"{what}: {len(left)} or more dead letters left after the replay")
        ids: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(ids) < count:
            received = _pull(subscriber, side.replayed, RAW_PULL)
            if received:
                subscriber.acknowledge(
                    request={
                        "subscription": side.replayed,
                        "ack_ids": [r.ack_id for r in received],
                    },
                    timeout=CALL_TIMEOUT,
                )
                ids.update(r.message.attributes[wire.ATTR_ID] for r in received)
            elif time.monotonic() > deadline:
                raise BenchError(
                    f"{what}: {len(ids)} of {count} replayed events reached the topic "
                    f"within {timeout:g} s"
                )
            else:
                time.sleep(0.05)
    finally:
        subscriber.close()


def run(args: argparse.Namespace, project: str, results: Results) -> None:
    from google.cloud import pubsub_v1

    count: int = args.dead_letters
    timeout: float = args.timeout
    events = likes(count)
    encoded = [wire.encode(e, wire.new_envelope(e, source="/services/bench")) for e in events]
    paths: list[tuple[str, Callable[[Side, int, float], float]]] = [
        ("raw", raw_replay),
        ("toolkit", kit_replay),
    ]
    publisher = pubsub_v1.PublisherClient()
    try:
        # Warm-up: imports and first calls of both code paths, on a few dead letters.
        warm = min(count, args.warmup)
        for name, path in paths:
            side = _side(project, f"w{name[0]}", publisher, encoded[:warm])
            path(side, warm, timeout)
            check(side, f"{name} warm-up", warm, timeout)
        row = ROW.format(count=count)
        for index in range(args.rounds):
            sides = {
                name: _side(project, f"r{index}{name[0]}", publisher, encoded) for name, _ in paths
            }
            # Alternate the order so that neither side always runs right after the other.
            for name, path in paths if index % 2 == 0 else list(reversed(paths)):
                seconds = path(sides[name], count, timeout)
                check(sides[name], f"{name} replay, round {index + 1}", count, timeout)
                results.record(row, name, count, seconds)
    finally:
        publisher.stop()
    results.note(
        ROW.format(count=count),
        f"raw = SubscriberClient.pull ({RAW_PULL} max, return_immediately) + "
        "PublisherClient.publish of each (default batching) + wait futures + one "
        "acknowledge per pull, until empty; toolkit = shared.tools.dlq.replay, no rate limit",
    )


def _side(
    project: str,
    prefix: str,
    publisher: PublisherClient,
    encoded: list[tuple[bytes, dict[str, str]]],
) -> Side:
    side = Side(project, prefix)
    provision(side.topology, project=project)
    side.fill(publisher, encoded)
    return side
