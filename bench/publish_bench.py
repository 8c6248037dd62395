"""Publish N messages and wait until every one is accepted: raw client vs. ``shared.Publisher``.

- raw: ``PublisherClient().publish(topic, data)`` of bytes serialized before the clock starts,
  default batching, then wait on all futures.
- toolkit: ``Publisher(topology).publish(event)`` of ``PostLiked`` models built before the
  clock starts (the envelope, the pydantic serialization and the future tracking are timed),
  then wait on all futures; and ``publish_all(events)``, which does both in one call.
- reference: the raw client sending the toolkit's exact bytes *and* CloudEvents attributes,
  prepared before the clock starts: both sides send identical messages, so the row compares the
  toolkit's whole publish path (typed event to accepted message, its own batching included)
  with the library's ``publish()`` of ready-made messages.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import BenchError, Results, Stopwatch, likes, wait_futures
from topologies import PUBLISH

# wire: the toolkit's own encoder, so the reference row sends exactly the toolkit's bytes.
from shared import Publisher, wire
from shared.tools.provision import provision

ROW_PUBLISH = "publish: Publisher.publish"
ROW_PUBLISH_ALL = "publish: Publisher.publish_all"
ROW_SAME_ATTRS = "publish: Publisher.publish vs raw + ce-* attrs"

NOTES = {
    ROW_PUBLISH: "raw = PublisherClient.publish(topic, bytes), default batching, wait all futures",
    ROW_PUBLISH_ALL: "raw = the same raw publish as above",
    ROW_SAME_ATTRS: "raw = publish(topic, bytes, **the toolkit's ce-* attributes), all prepared "
    "before timing: both sides send identical messages (the toolkit batches them itself and "
    "sends with the library's generated Publish call)",
}


class PublishBench:
    """The publish paths, each sending the same events to one topic without subscriptions."""

    def __init__(self, project: str, messages: int, timeout: float) -> None:
        from google.cloud import pubsub_v1

        self.messages = messages
        self.timeout = timeout
        provision(PUBLISH, project=project)
        self.events = likes(messages)
        self.topic = f"projects/{project}/topics/{PUBLISH.topic_for(self.events[0]).name}"
        self.payloads = [e.model_dump_json(by_alias=True).encode() for e in self.events]
        self.encoded = [
            wire.encode(e, wire.new_envelope(e, source="/services/bench")) for e in self.events
        ]
        self.raw = pubsub_v1.PublisherClient()
        self.kit = Publisher(PUBLISH, project=project, source="/services/bench")

    # Each path publishes self.messages messages and returns when all are accepted.
    def raw_publish(self, count: int) -> None:
        futures = [self.raw.publish(self.topic, p) for p in self.payloads[:count]]
        wait_futures(futures, self.timeout, "raw publish")

    def raw_publish_with_attributes(self, count: int) -> None:
        futures = [self.raw.publish(self.topic, d, **a) for d, a in self.encoded[:count]]
        wait_futures(futures, self.timeout, "raw publish with attributes")

    def kit_publish(self, count: int) -> None:
        futures = [self.kit.publish(e) for e in self.events[:count]]
        wait_futures(futures, self.timeout, "Publisher.publish")

    def kit_publish_all(self, count: int) -> None:
        ids = self.kit.publish_all(self.events[:count])
        if len(ids) != count:
            raise BenchError(f"publish_all returned {len(ids)} ids for {count} events")

    def paths(self) -> list[tuple[str, Callable[[int], None]]]:
        return [
            ("raw", self.raw_publish),
            ("kit", self.kit_publish),
            ("kit_all", self.kit_publish_all),
            ("raw_attrs", self.raw_publish_with_attributes),
        ]

    def close(self) -> None:
        self.kit.flush(self.timeout)
        self.raw.stop()


def run(
    project: str, messages: int, warmup: int, rounds: int, timeout: float, results: Results
) -> None:
    bench = PublishBench(project, messages, timeout)
    try:
        for _, path in bench.paths():  # open both clients' channels, run every code path once
            path(warmup)
        for index in range(rounds):
            seconds: dict[str, float] = {}
            paths = bench.paths()
            # Alternate the order so that no path always runs right after the same neighbour.
            for name, path in paths if index % 2 == 0 else reversed(paths):
                with Stopwatch() as watch:
                    path(messages)
                seconds[name] = watch.seconds
            for row in (ROW_PUBLISH, ROW_PUBLISH_ALL):
                results.record(row, "raw", messages, seconds["raw"])
            results.record(ROW_PUBLISH, "toolkit", messages, seconds["kit"])
            results.record(ROW_PUBLISH_ALL, "toolkit", messages, seconds["kit_all"])
            results.record(ROW_SAME_ATTRS, "toolkit", messages, seconds["kit"])
            results.record(ROW_SAME_ATTRS, "raw", messages, seconds["raw_attrs"])
    finally:
        bench.close()
    for row, text in NOTES.items():
        results.note(row, text)
