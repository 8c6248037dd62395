"""The topology: topics, consumers and their subscriptions, declared once.

One declaration drives the emulator provisioning, the local runtime, the Terraform input
(``infra/topology.json``) and the event contracts, so nothing exists in one place only::

    TOPOLOGY = Topology(
        topics=[Topic("post-liked", events=[PostLiked])],
        consumers=[
            Consumer("timeline_enrichment", topics=["post-liked"],
                     retry=RetryPolicy(minimum_backoff=10, maximum_backoff=300)),
        ],
    )

Every (topic, consumer) pair gets a subscription ``<topic>--<consumer>``, and every
subscription its own dead-letter topic ``<topic>--<consumer>--dlq`` with a pull subscription of
the same name on it, so nothing dead-lettered is lost. Declarations are validated when they are
made: a bad name or an out-of-range setting fails at import, not at deploy time.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from shared.errors import TopologyError
from shared.events import Event, EventRegistry
from shared.filters import Predicate, compile_filter

SEPARATOR = "--"
DLQ_SUFFIX = "--dlq"

# Kebab-case; no "--" so that "<topic>--<consumer>--dlq" can be read back unambiguously.
_TOPIC_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# A Python identifier: it is also the function's folder and its entry point.
_CONSUMER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MEMORY = re.compile(r"^[1-9][0-9]*(M|Mi|G|Gi)$")
RUNTIMES = ("python311", "python312", "python313")


class RetryPolicy(NamedTuple):
    """Redelivery backoff after a nack or a 5xx answer (Pub/Sub's exponential backoff)."""

    minimum_backoff: float = 10.0  # seconds, 0-600
    maximum_backoff: float = 600.0  # seconds, 0-600, >= minimum_backoff


class FunctionSettings(NamedTuple):
    """How a consumer's Cloud Function (2nd gen) runs on GCP."""

    runtime: str = "python311"
    memory: str = "256Mi"
    timeout: int = 60  # seconds; also bounds the handler, keep it below the ack deadline
    max_instances: int = 10
    min_instances: int = 0
    environment: Mapping[str, str] = {}


_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_FUNCTION = FunctionSettings()


@dataclasses.dataclass(frozen=True)
class Topic:
    """A Pub/Sub topic and the event types published on it.

    Args:
        name: kebab-case topic id, e.g. ``"post-liked"``.
        events: event models that may be published here (several versions of one event may
            share a topic while consumers migrate).
        message_retention: seconds the topic keeps messages for replay (600-2,678,400), or
            ``None`` for none.
    """

    name: str
    events: Sequence[type[Event]]
    message_retention: int | None = 7 * 24 * 3600  # seconds: a week of replay

    def __post_init__(self) -> None:
        _check_name("topic", self.name, _TOPIC_NAME, "kebab-case like 'post-liked'", 3, 200)
        object.__setattr__(self, "events", tuple(self.events))
        if not self.events:
            raise TopologyError(f"topic {self.name!r} declares no event types")
        for model in self.events:
            if not (isinstance(model, type) and issubclass(model, Event)):
                raise TopologyError(f"topic {self.name!r}: {model!r} is not an Event subclass")
        if self.message_retention is not None and not 600 <= self.message_retention <= 2_678_400:
            raise TopologyError(
                f"topic {self.name!r}: message_retention must be 600-2678400 seconds "
                f"(10 minutes to 31 days), found {self.message_retention}"
            )


@dataclasses.dataclass(frozen=True)
class Consumer:
    """A consumer (one Cloud Function) and how it subscribes.

    Args:
        name: snake_case; also the function's folder under ``functions/`` and its entry point.
        topics: topic names it consumes; one subscription is made per topic.
        ack_deadline: seconds Pub/Sub waits for an answer before redelivering (10-600).
        max_delivery_attempts: attempts before Pub/Sub dead-letters a failing message (5-100).
        retry: the redelivery backoff.
        filter: a Pub/Sub filter on attributes. GCP applies it; the runtime applies it too,
            because the emulator ignores filters.
        ordered: deliver messages with the same ordering key in order.
        max_event_age: seconds; older events are dead-lettered without running the handler
            (``None``: no limit).
        publishes: topic names the consumer publishes to (for its IAM grants).
        uses_store: whether it keeps state (idempotency, audit): grants Firestore access.
        function: how the Cloud Function runs.
    """

    name: str
    topics: Sequence[str]
    ack_deadline: int = 60  # seconds
    max_delivery_attempts: int = 5
    retry: RetryPolicy = _DEFAULT_RETRY
    filter: str | None = None
    ordered: bool = False
    max_event_age: float | None = None  # seconds
    publishes: Sequence[str] = ()
    uses_store: bool = True
    function: FunctionSettings = _DEFAULT_FUNCTION

    def __post_init__(self) -> None:
        _check_name("consumer", self.name, _CONSUMER_NAME, "snake_case like 'audit_log'", 2, 60)
        object.__setattr__(self, "topics", tuple(self.topics))
        object.__setattr__(self, "publishes", tuple(self.publishes))
        if not self.topics:
            raise TopologyError(f"consumer {self.name!r} subscribes to no topic")
        if len(set(self.topics)) != len(self.topics):
            raise TopologyError(f"consumer {self.name!r} lists a topic twice: {list(self.topics)}")
        _check_range(self.name, "ack_deadline", self.ack_deadline, 10, 600, "seconds")
        _check_range(self.name, "max_delivery_attempts", self.max_delivery_attempts, 5, 100, "")
        _check_range(self.name, "retry.minimum_backoff", self.retry.minimum_backoff, 0, 600, "s")
        _check_range(self.name, "retry.maximum_backoff", self.retry.maximum_backoff, 0, 600, "s")
        if self.retry.maximum_backoff < self.retry.minimum_backoff:
            raise TopologyError(
                f"consumer {self.name!r}: retry.maximum_backoff ({self.retry.maximum_backoff}) "
                f"is below retry.minimum_backoff ({self.retry.minimum_backoff})"
            )
        if self.filter is not None:
            compile_filter(self.filter)  # raises TopologyError naming the problem
        if self.max_event_age is not None and self.max_event_age <= 0:
            raise TopologyError(f"consumer {self.name!r}: max_event_age must be positive seconds")
        fn = self.function
        if fn.runtime not in RUNTIMES:
            raise TopologyError(
                f"consumer {self.name!r}: runtime must be one of {', '.join(RUNTIMES)}, "
                f"found {fn.runtime!r}"
            )
        if not _MEMORY.match(fn.memory):
            raise TopologyError(
                f"consumer {self.name!r}: memory must look like '256Mi' or '1Gi', "
                f"found {fn.memory!r}"
            )
        _check_range(self.name, "function.timeout", fn.timeout, 1, 540, "seconds")
        _check_range(self.name, "function.max_instances", fn.max_instances, 1, 1000, "")
        _check_range(self.name, "function.min_instances", fn.min_instances, 0, fn.max_instances, "")

    @property
    def predicate(self) -> Predicate | None:
        """The compiled filter, or ``None`` when every message is wanted."""
        return None if self.filter is None else compile_filter(self.filter)


@dataclasses.dataclass(frozen=True)
class Subscription:
    """One (topic, consumer) pair, derived from the declarations; never declared by hand."""

    name: str
    topic: Topic
    consumer: Consumer

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_name(self.name)

    @property
    def dead_letter_subscription(self) -> str:
        return dead_letter_name(self.name)


def subscription_name(topic: str, consumer: str) -> str:
    """``<topic>--<consumer>``: the naming rule every tool relies on."""
    return f"{topic}{SEPARATOR}{consumer}"


def dead_letter_name(subscription: str) -> str:
    """``<subscription>--dlq``: its dead-letter topic, and the pull subscription on that topic."""
    return subscription + DLQ_SUFFIX


class Topology:
    """Topics and consumers, validated together.

    Raises:
        TopologyError: duplicate names, a consumer on (or publishing to) a topic that is not
            declared, or an event type declared on two topics.
    """

    def __init__(self, topics: Iterable[Topic], consumers: Iterable[Consumer] = ()) -> None:
        self.topics: dict[str, Topic] = {}
        self.consumers: dict[str, Consumer] = {}
        self.registry = EventRegistry()
        self._topic_of_type: dict[str, str] = {}
        for topic in topics:
            self._add_topic(topic)
        for consumer in consumers:
            self._add_consumer(consumer)
        self.subscriptions: dict[str, Subscription] = {}
        for consumer in self.consumers.values():
            for topic_name in consumer.topics:
                name = subscription_name(topic_name, consumer.name)
                self.subscriptions[name] = Subscription(name, self.topics[topic_name], consumer)

    def _add_topic(self, topic: Topic) -> None:
        if topic.name in self.topics:
            raise TopologyError(f"topic {topic.name!r} is declared twice")
        self.topics[topic.name] = topic
        for model in topic.events:
            self.registry.register(model)
            other = self._topic_of_type.setdefault(model.event_type, topic.name)
            if other != topic.name:
                raise TopologyError(
                    f"event type {model.event_type!r} is declared on topics {other!r} and "
                    f"{topic.name!r}; an event type belongs to one topic"
                )

    def _add_consumer(self, consumer: Consumer) -> None:
        if consumer.name in self.consumers:
            raise TopologyError(f"consumer {consumer.name!r} is declared twice")
        for name in (*consumer.topics, *consumer.publishes):
            if name not in self.topics:
                raise TopologyError(
                    f"consumer {consumer.name!r} refers to topic {name!r}, which is not "
                    f"declared; declared topics: {', '.join(sorted(self.topics)) or 'none'}"
                )
        self.consumers[consumer.name] = consumer

    def topic_for(self, event: Event | type[Event]) -> Topic:
        """The topic an event type is published on."""
        event_type = event.event_type
        name = self._topic_of_type.get(event_type)
        if name is None:
            raise TopologyError(
                f"event type {event_type!r} is not declared on any topic; declared types: "
                f"{', '.join(self.registry.types) or 'none'}"
            )
        return self.topics[name]

    def consumer(self, name: str) -> Consumer:
        try:
            return self.consumers[name]
        except KeyError:
            raise TopologyError(
                f"no consumer named {name!r}; declared consumers: "
                f"{', '.join(sorted(self.consumers)) or 'none'}"
            ) from None

    def subscription(self, name: str) -> Subscription:
        """Look a subscription up by its short name or its full ``projects/P/subscriptions/S``."""
        short = name.rsplit("/", 1)[-1]
        try:
            return self.subscriptions[short]
        except KeyError:
            raise TopologyError(
                f"no subscription named {short!r}; "
                f"declared: {', '.join(sorted(self.subscriptions))}"
            ) from None

    def subscriptions_of(self, consumer: str) -> list[Subscription]:
        self.consumer(consumer)
        return [s for s in self.subscriptions.values() if s.consumer.name == consumer]

    def with_prefix(self, prefix: str) -> Topology:
        """A copy with every topic renamed ``<prefix>-<name>``: isolated resources for tests."""
        renamed = {name: f"{prefix}-{name}" for name in self.topics}
        return Topology(
            topics=[dataclasses.replace(t, name=renamed[t.name]) for t in self.topics.values()],
            consumers=[
                dataclasses.replace(
                    c,
                    topics=[renamed[t] for t in c.topics],
                    publishes=[renamed[t] for t in c.publishes],
                )
                for c in self.consumers.values()
            ],
        )

    def to_terraform(self) -> dict[str, Any]:
        """The Terraform input (``infra/topology.json``): flat maps keyed by stable names."""
        subscriptions: dict[str, Any] = {}
        dead_letters: dict[str, Any] = {}
        for sub in sorted(self.subscriptions.values(), key=lambda s: s.name):
            c = sub.consumer
            subscriptions[sub.name] = {
                "topic": sub.topic.name,
                "consumer": c.name,
                "ack_deadline_seconds": c.ack_deadline,
                "max_delivery_attempts": c.max_delivery_attempts,
                "minimum_backoff": _duration(c.retry.minimum_backoff),
                "maximum_backoff": _duration(c.retry.maximum_backoff),
                "filter": c.filter or "",
                "enable_message_ordering": c.ordered,
                "dead_letter_topic": sub.dead_letter_topic,
            }
            dead_letters[sub.dead_letter_topic] = {
                "source_subscription": sub.name,
                "consumer": c.name,
            }
        return {
            "topics": {
                t.name: {
                    "event_types": [m.event_type for m in t.events],
                    "message_retention_duration": (
                        _duration(t.message_retention) if t.message_retention else ""
                    ),
                }
                for t in sorted(self.topics.values(), key=lambda t: t.name)
            },
            "dead_letter_topics": dead_letters,
            "subscriptions": subscriptions,
            "consumers": {
                c.name: {
                    "entry_point": c.name,
                    "source_dir": f"functions/{c.name}",
                    "runtime": c.function.runtime,
                    "memory": c.function.memory,
                    "timeout_seconds": c.function.timeout,
                    "max_instances": c.function.max_instances,
                    "min_instances": c.function.min_instances,
                    "environment": dict(sorted(c.function.environment.items())),
                    "subscribes_to": sorted(c.topics),
                    "publishes_to": sorted(c.publishes),
                    "uses_store": c.uses_store,
                }
                for c in sorted(self.consumers.values(), key=lambda c: c.name)
            },
        }


def _duration(seconds: float) -> str:
    """Seconds as a protobuf Duration string ("600s", "0.5s"), as Terraform expects."""
    return f"{seconds:g}s"


def _check_name(
    kind: str, name: object, pattern: re.Pattern[str], shape: str, lo: int, hi: int
) -> None:
    if not isinstance(name, str) or not pattern.match(name) or not lo <= len(name) <= hi:
        raise TopologyError(
            f"{kind} name must be {shape}, {lo}-{hi} characters (no '--'); found {name!r}"
        )
    if name.startswith("goog"):
        raise TopologyError(f"{kind} name {name!r} may not start with 'goog' (reserved by Pub/Sub)")


def _check_range(owner: str, field: str, value: float, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise TopologyError(
            f"consumer {owner!r}: {field} must be {lo}-{hi}{' ' + unit if unit else ''}, "
            f"found {value!r}"
        )
