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
made: a bad name or an out-of-range setting fails at import, not at deploy time. The rules are
those of GCP and of the Terraform under ``infra/`` (its naming module and variable validations),
so a topology that imports is one ``terraform plan`` and GCP accept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from shared.errors import TopologyError
from shared.events import Event, EventRegistry
from shared.filters import Predicate, compile_filter
from shared.upcasting import Upcaster, chains

SEPARATOR = "--"
DLQ_SUFFIX = "--dlq"
# Pub/Sub topic and subscription ids, dead-letter ones included, are 3-255 characters.
MAX_PUBSUB_NAME = 255

# Patterns are applied with fullmatch: "$" would also match before a trailing newline.
# Kebab-case; no "--" so that "<topic>--<consumer>--dlq" can be read back unambiguously.
_TOPIC_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# A Python identifier: it is also the function's folder and its entry point. With "-" for "_" it
# is the Cloud Functions id (infra/modules/naming), which must end with a letter or a digit and
# be 4-63 characters long.
_CONSUMER_NAME = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]")
_MEMORY = re.compile(r"[1-9][0-9]*(M|Mi|G|Gi)")
RUNTIMES = ("python311", "python312", "python313")
# Environment variable names Cloud Run and Cloud Functions set themselves and refuse in a
# deployment (the same list as var.function_environment in infra/variables.tf).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = (
    "PORT",
    "K_SERVICE",
    "K_REVISION",
    "K_CONFIGURATION",
    "FUNCTION_TARGET",
    "FUNCTION_SIGNATURE_TYPE",
)
# Service account ids (infra/modules/naming): "fn-" and the function id, at most 30 characters;
# longer ones keep 21 characters (without trailing "-") and add 8 hex digits of a hash.
SERVICE_ACCOUNT_PREFIX = "fn-"
_MAX_ACCOUNT_ID = 30
_ACCOUNT_HEAD = 21


class RetryPolicy(NamedTuple):
    """Redelivery backoff after a nack or a 5xx answer (Pub/Sub's exponential backoff)."""

    minimum_backoff: float = 10.0  # seconds, 0-600
    maximum_backoff: float = 600.0  # seconds, 0-600, >= minimum_backoff


class FunctionSettings(NamedTuple):
    """How a consumer's Cloud Function (2nd gen) runs on GCP, and locally under ``pubsub-kit dev``.

    ``concurrency`` is how many requests one instance handles at once (Cloud Run's
    ``max_instance_request_concurrency``, 1-1000); the function's ``THREADS`` follow it. GCP
    allows more than 1 only with a whole vCPU, so the Terraform export then asks for one
    (``available_cpu = "1"``), which costs more than the fraction of a vCPU a 256Mi function
    gets by default. Above 1 the handler must be thread-safe, and a message that crashes the
    process fails the attempts of the other requests in flight with it.
    """

    runtime: str = "python311"
    memory: str = "256Mi"
    timeout: int = 60  # seconds; also bounds the handler, keep it below the ack deadline
    max_instances: int = 10
    min_instances: int = 0
    environment: Mapping[str, str] = {}
    concurrency: int = 1  # requests in flight per instance (1 = one at a time, GCP's default)


_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_FUNCTION = FunctionSettings()


@dataclasses.dataclass(frozen=True)
class Topic:
    """A Pub/Sub topic and the event types published on it.

    Args:
        name: kebab-case topic id, e.g. ``"post-liked"``: 3-255 characters, not starting with
            ``goog``; ``<name>--<consumer>--dlq`` must fit in 255 characters too.
        events: event models that may be published here (several versions of one event may
            share a topic while consumers migrate).
        message_retention: seconds the topic keeps messages for replay (600-2,678,400), or
            ``None`` for none.
    """

    name: str
    events: Sequence[type[Event]]
    message_retention: int | None = 7 * 24 * 3600  # seconds: a week of replay

    def __post_init__(self) -> None:
        _check_name(
            "topic", self.name, _TOPIC_NAME, "kebab-case like 'post-liked' (no '--')", 3, 255
        )
        if self.name.startswith("goog"):
            raise TopologyError(
                f"topic name {self.name!r} may not start with 'goog' (reserved by Pub/Sub)"
            )
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
        name: snake_case, 4-63 characters, not ending in ``_``; also the function's folder
            under ``functions/`` and its entry point. Its Cloud Functions id is the name with
            ``-`` for ``_`` (see ``function_name``).
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
        _check_name(
            "consumer",
            self.name,
            _CONSUMER_NAME,
            "snake_case like 'audit_log', not ending in '_' "
            "(with '-' for '_' it is the Cloud Functions id)",
            4,
            63,
        )
        object.__setattr__(self, "topics", tuple(self.topics))
        object.__setattr__(self, "publishes", tuple(self.publishes))
        if not self.topics:
            raise TopologyError(f"consumer {self.name!r} subscribes to no topic")
        if len(set(self.topics)) != len(self.topics):
            raise TopologyError(f"consumer {self.name!r} lists a topic twice: {list(self.topics)}")
        _check_range(self.name, "ack_deadline", self.ack_deadline, 10, 600, "seconds")
        _check_range(self.name, "max_delivery_attempts", self.max_delivery_attempts, 5, 100, "")
        _check_retry(self.name, self.retry)
        if self.filter is not None:
            compile_filter(self.filter)  # raises TopologyError naming the problem
        if self.max_event_age is not None and self.max_event_age <= 0:
            raise TopologyError(f"consumer {self.name!r}: max_event_age must be positive seconds")
        _check_function(self.name, self.function)

    @property
    def handler_budget(self) -> float:
        """Seconds a push delivery may take: the ack deadline or the function's timeout."""
        return float(max(self.ack_deadline, self.function.timeout))

    @property
    def predicate(self) -> Predicate | None:
        """The compiled filter, or ``None`` when every message is wanted."""
        return None if self.filter is None else compile_filter(self.filter)

    @property
    def function_name(self) -> str:
        """The Cloud Functions (2nd gen) id, as Terraform derives it: ``-`` for ``_``."""
        return self.name.replace("_", "-")

    @property
    def service_account_id(self) -> str:
        """The id (before ``@``) of the function's service account, as Terraform derives it."""
        base = SERVICE_ACCOUNT_PREFIX + self.function_name
        if len(base) <= _MAX_ACCOUNT_ID:
            return base
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:8]
        return f"{base[:_ACCOUNT_HEAD].rstrip('-')}-{digest}"


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

    ``upcasters`` turn an event type's older versions into newer ones for handlers written
    for the newer (see :mod:`shared.upcasting`).

    Raises:
        TopologyError: duplicate names, a consumer on (or publishing to) a topic that is not
            declared, an event type declared on two topics, two consumers whose service
            account ids would be the same, a subscription whose dead-letter topic name
            would be longer than Pub/Sub allows (255 characters), or an upcaster between
            versions that are not declared, or two from the same version.
    """

    def __init__(
        self,
        topics: Iterable[Topic],
        consumers: Iterable[Consumer] = (),
        upcasters: Iterable[Upcaster] = (),
    ) -> None:
        self.topics: dict[str, Topic] = {}
        self.consumers: dict[str, Consumer] = {}
        self.registry = EventRegistry()
        self._topic_of_type: dict[str, str] = {}
        for topic in topics:
            self._add_topic(topic)
        for consumer in consumers:
            self._add_consumer(consumer)
        self.upcasters = chains(upcasters)
        """Event type -> the upcaster from it to its next version (see :mod:`shared.upcasting`)."""
        for upcaster in self.upcasters.values():
            for model in (upcaster.source, upcaster.target):
                if self._topic_of_type.get(model.event_type) is None:
                    raise TopologyError(
                        f"the upcaster from {upcaster.source.event_type} to "
                        f"{upcaster.target.event_type} names {model.event_type}, which no "
                        "topic declares; declare both versions on the topic"
                    )
        self.subscriptions: dict[str, Subscription] = {}
        for consumer in self.consumers.values():
            for topic_name in consumer.topics:
                name = subscription_name(topic_name, consumer.name)
                _check_subscription_name(name)
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
        for other in self.consumers.values():
            if other.service_account_id == consumer.service_account_id:
                raise TopologyError(
                    f"consumers {other.name!r} and {consumer.name!r} would share the service "
                    f"account id {consumer.service_account_id!r} (long names are shortened to "
                    f"{_ACCOUNT_HEAD} characters and a hash); rename one"
                )
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
                    "concurrency": c.function.concurrency,
                    "environment": dict(sorted(c.function.environment.items())),
                    "subscribes_to": sorted(c.topics),
                    "publishes_to": sorted(c.publishes),
                    "uses_store": c.uses_store,
                }
                for c in sorted(self.consumers.values(), key=lambda c: c.name)
            },
        }


def _duration(seconds: float) -> str:
    """Seconds as a protobuf Duration string ("1209600s", "0.5s"), as Terraform and GCP expect.

    Whole seconds and up to 9 decimals (nanoseconds, rounded), never an exponent ("1e+06s").
    """
    if isinstance(seconds, int):
        return f"{seconds}s"
    # "+ 0.0" turns -0.0 (which the range checks let through) into 0.0, so never "-0s".
    return f"{seconds + 0.0:.9f}".rstrip("0").rstrip(".") + "s"


def _check_name(
    kind: str, name: object, pattern: re.Pattern[str], shape: str, lo: int, hi: int
) -> None:
    if not isinstance(name, str) or not pattern.fullmatch(name) or not lo <= len(name) <= hi:
        length = f" ({len(name)} characters)" if isinstance(name, str) else ""
        raise TopologyError(
            f"{kind} name must be {shape}, {lo}-{hi} characters; found {name!r}{length}"
        )


def _check_subscription_name(subscription: str) -> None:
    # The dead-letter topic is the longest name derived from a subscription.
    longest = dead_letter_name(subscription)
    if len(longest) > MAX_PUBSUB_NAME:
        raise TopologyError(
            f"subscription {subscription!r} is too long: its dead-letter topic {longest!r} has "
            f"{len(longest)} characters and Pub/Sub allows {MAX_PUBSUB_NAME}; shorten the "
            f"topic or the consumer name"
        )


def _check_retry(owner: str, retry: RetryPolicy) -> None:
    _check_range(owner, "retry.minimum_backoff", retry.minimum_backoff, 0, 600, "s")
    _check_range(owner, "retry.maximum_backoff", retry.maximum_backoff, 0, 600, "s")
    if retry.maximum_backoff < retry.minimum_backoff:
        raise TopologyError(
            f"consumer {owner!r}: retry.maximum_backoff ({retry.maximum_backoff}) "
            f"is below retry.minimum_backoff ({retry.minimum_backoff})"
        )


def _check_function(owner: str, fn: FunctionSettings) -> None:
    if fn.runtime not in RUNTIMES:
        raise TopologyError(
            f"consumer {owner!r}: runtime must be one of {', '.join(RUNTIMES)}, "
            f"found {fn.runtime!r}"
        )
    if not isinstance(fn.memory, str) or not _MEMORY.fullmatch(fn.memory):
        raise TopologyError(
            f"consumer {owner!r}: memory must look like '256Mi' or '1Gi', found {fn.memory!r}"
        )
    _check_range(owner, "function.timeout", fn.timeout, 1, 540, "seconds")
    _check_range(owner, "function.max_instances", fn.max_instances, 1, 1000, "")
    _check_range(owner, "function.min_instances", fn.min_instances, 0, fn.max_instances, "")
    concurrency = fn.concurrency
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not (
            1 <= concurrency <= 1000  # Cloud Run's limit
        )
    ):
        raise TopologyError(
            f"consumer {owner!r}: function.concurrency (requests one instance handles at once, "
            f"Cloud Run's max_instance_request_concurrency) must be a whole number "
            f"1-1000, found {concurrency!r}"
        )
    for key, value in fn.environment.items():
        _check_environment(owner, key, value)


def _check_environment(owner: str, key: object, value: object) -> None:
    if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
        raise TopologyError(
            f"consumer {owner!r}: function.environment names must be identifiers like "
            f"'LOG_LEVEL', found {key!r}"
        )
    if key in _RESERVED_ENV or key.startswith("X_GOOGLE_"):
        raise TopologyError(
            f"consumer {owner!r}: function.environment may not set {key!r}, which Cloud Run "
            f"reserves ({', '.join(_RESERVED_ENV)}, X_GOOGLE_*)"
        )
    if not isinstance(value, str):
        raise TopologyError(
            f"consumer {owner!r}: function.environment values must be strings, "
            f"found {value!r} for {key!r}"
        )


def _check_range(owner: str, field: str, value: float, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise TopologyError(
            f"consumer {owner!r}: {field} must be {lo}-{hi}{' ' + unit if unit else ''}, "
            f"found {value!r}"
        )
