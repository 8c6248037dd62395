"""Dead letters: count, inspect, replay and purge what a subscription gave up on.

What reaches a dead-letter topic, and how, is told in :mod:`shared.runtime.dead_lettering`.
Either road keeps the original data and attributes, so :func:`replay` can publish the message
again to its original topic once the cause is fixed.

Reading a dead-letter subscription is a *peek*: pull what is there, then hand it straight back
(ack deadline 0), so :func:`inspect` and :func:`queues` change nothing but the delivery count on
the dead-letter subscription, which has no policy of its own. On the emulator every pull asks
``return_immediately``: an empty subscription answers in 1-5 ms, where the waiting pull this
replaced took 4 s (measured on the emulator, gcloud's 0.8.20). GCP discourages that flag (it may
answer empty while messages wait), so there a pull waits, and an empty subscription is one pull
that waited :data:`EMPTY_WAIT` seconds.

:func:`replay` and :func:`purge` act on the dead letters that were there when they started (a
peek), and only on those: what is dead-lettered meanwhile, a replayed event that fails again
included, waits for the next run. Each dead letter is acked only after its re-publish succeeded,
so a run that is interrupted loses nothing, and running it again re-publishes what was not
acked; the consumers drop what they already handled by its ``ce-id``.

A replay keeps what its peek pulled (leased, see :data:`LEASE`, and renewed while it runs)
instead of handing it back and pulling it again, publishes the selection :data:`PUBLISH_BATCH`
at a time, and acks in batches, within :data:`ACK_DELAY` of each re-publish being accepted:
a pull per hundred dead letters, a lease and an ack call per thousand or fewer. Pulling
everything twice and acking each dead letter on its own made it run at a sixth of the speed of
a plain pull-publish-ack loop (bench/replay_bench.py). While a replay runs, what it selected is
leased to it: ``dlq list`` and ``dlq inspect`` elsewhere do not see it, and a second replay
does not publish it again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from shared import config, wire
from shared._clients import subscriber_client
from shared.errors import EventError, ToolkitError, UnknownEventTypeError
from shared.events import EventRegistry
from shared.topology import DLQ_SUFFIX, Subscription, Topology

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

CALL_TIMEOUT = 10.0  # seconds for one call to Pub/Sub, retries included
EMPTY_WAIT = 2.0  # seconds a pull waits on GCP before a subscription counts as empty
PUBLISH_TIMEOUT = 30.0  # seconds for Pub/Sub to accept one re-published dead letter
LEASE = 10  # seconds a replay or purge holds what it pulled: what a killed run leaves hidden
BATCH = 100  # messages per pull (the emulator hands out at most 100 per pull anyway)
PUBLISH_BATCH = 1000  # re-publishes in flight at once; a replay stops after a batch that failed
ACK_DELAY = 0.1  # seconds an accepted re-publish may wait for its ack, batched with others
PEEK_LIMIT = 10_000  # dead letters one replay or purge considers; run it again for more
LIST_LIMIT = 1_000  # dead letters counted per subscription by queues(); more shows as "1000+"

# Attributes added on the way to the dead-letter topic; removed again on replay.
_ADDED_ATTRIBUTES = (
    wire.ATTR_DLQ_REASON,
    wire.ATTR_DLQ_CONSUMER,
    wire.ATTR_DLQ_SUBSCRIPTION,
    wire.ATTR_DLQ_MESSAGE_ID,
    wire.ATTR_DLQ_ATTEMPT,
)
_PUBSUB_DLQ_PREFIX = "CloudPubSubDeadLetterSource"


class DeadLetterQueueNotFound(ToolkitError, LookupError):
    """A dead-letter subscription does not exist in the project (the topology is not there).

    Attributes:
        subscription: the dead-letter subscription's name.
        project: the project.
    """

    def __init__(self, subscription: str, project: str) -> None:
        self.subscription = subscription
        self.project = project
        super().__init__(
            f"subscription {subscription!r} does not exist in project {project!r}; create the "
            f"topology there first: pubsub-kit provision --project {project}"
        )


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message, as :func:`inspect` shows it."""

    subscription: str  # the source subscription
    message_id: str  # the original message's id, when the dead letter says; else its own
    event_id: str | None
    event_type: str | None
    reason: str
    attempts: int | None
    data: bytes = dataclasses.field(repr=False)
    attributes: Mapping[str, str] = dataclasses.field(repr=False)
    ack_id: str = dataclasses.field(repr=False, default="")
    dead_letter_id: str = ""  # the message id on the dead-letter subscription
    dead_lettered_at: datetime | None = None  # when it reached the dead-letter topic

    def age(self, now: datetime | None = None) -> timedelta | None:
        """How long it has been waiting on the dead-letter subscription."""
        if self.dead_lettered_at is None:
            return None
        return max(timedelta(0), (now or datetime.now(UTC)) - self.dead_lettered_at)

    def redacted_data(self, registry: EventRegistry) -> tuple[dict[str, Any] | None, str | None]:
        """The event's data with every sensitive value replaced, or why it cannot be shown.

        Decoded as a consumer reads it (fields of a newer version set aside). Data that does not
        decode is never shown, not even in part: nothing says which of it is sensitive.
        """
        try:
            event, _ = wire.decode(self.data, self.attributes, registry)
        except UnknownEventTypeError as exc:
            return None, f"unknown event type {exc.event_type!r}" if exc.event_type else str(exc)
        except EventError as exc:  # the message names fields and rules, never values
            return None, str(exc)
        return event.redacted(), None


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on; every one when nothing is given.

    Attributes:
        types: event types (``ce-type``); any when empty.
        ids: event ids (``ce-id``) or message ids; any when empty.
        older_than: only those waiting on the dead-letter subscription longer than this.
    """

    types: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    older_than: timedelta | None = None

    def __call__(self, letter: DeadLetter, now: datetime) -> bool:
        if self.types and letter.event_type not in self.types:
            return False
        if self.ids and not ({letter.event_id, letter.message_id} & self.ids):
            return False
        if self.older_than is not None:
            age = letter.age(now)
            return age is not None and age > self.older_than
        return True

    @property
    def everything(self) -> bool:
        return not (self.types or self.ids or self.older_than is not None)


EVERY = Selection()


@dataclasses.dataclass(frozen=True)
class QueueStats:
    """What waits on one dead-letter subscription, as :func:`queues` counted it."""

    subscription: str  # the dead-letter subscription
    source: str  # the subscription whose dead letters these are
    count: int
    complete: bool  # False: counting stopped at the limit; there are at least ``count``
    oldest: datetime | None  # when the oldest one counted was dead-lettered
    provisioned: bool = True


@dataclasses.dataclass
class ReplayReport:
    """What :func:`replay` did, or with ``dry_run`` would do."""

    selected: list[DeadLetter]  # chosen to be replayed, in the order they were found
    skipped: int = 0  # found but not selected (filters, --limit)
    replayed: int = 0
    failed: int = 0  # re-publish refused or timed out; they stay dead letters
    # Selected, then gone before they could be acted on. A replay keeps what it selected until
    # it is done, so this stays 0; kept for callers that print it.
    missing: int = 0
    untried: int = 0  # selected, not tried because the replay stopped at a failure
    error: str | None = None  # why the replay stopped before the end
    more: bool = False  # the peek stopped at PEEK_LIMIT: run it again for the rest


@dataclasses.dataclass
class PurgeReport:
    """What :func:`purge` deleted."""

    deleted: int = 0
    missing: int = 0  # selected, then gone before they could be pulled again


def resolve(topology: Topology, name: str) -> Subscription:
    """The subscription ``name`` means: a source subscription, or its dead-letter subscription.

    ``post-liked--audit_log--dlq`` means ``post-liked--audit_log``, unless a subscription of
    that very name is declared (then it is that one).

    Raises:
        TopologyError: neither; the message lists the declared subscriptions.
    """
    short = name.rsplit("/", 1)[-1]
    if short not in topology.subscriptions and short.endswith(DLQ_SUFFIX):
        source = topology.subscriptions.get(short[: -len(DLQ_SUFFIX)])
        if source is not None:
            return source
    return topology.subscription(name)


def inspect(
    topology: Topology,
    subscription: str,
    *,
    project: str,
    subscriber: SubscriberClient | None = None,
    max_messages: int = 100,
    select: Selection = EVERY,
    timeout: float = CALL_TIMEOUT,
) -> list[DeadLetter]:
    """Read up to ``max_messages`` dead letters of ``subscription`` without removing them.

    Args:
        subscription: the source subscription, or its dead-letter subscription.
        select: only these (up to :data:`PEEK_LIMIT` dead letters are looked at).
        timeout: seconds for each call to Pub/Sub.

    Returns:
        The dead letters, oldest first.

    Raises:
        TopologyError: no such subscription in the topology.
        DeadLetterQueueNotFound: the dead-letter subscription does not exist in ``project``.
        ToolkitError: Pub/Sub refused or did not answer.
    """
    source = resolve(topology, subscription)
    with _subscriber(subscriber) as client:
        queue = _Queue(client, project, source, timeout)
        if select.everything:
            letters, _ = queue.peek(max_messages)
        else:
            found, _ = queue.peek(PEEK_LIMIT)
            now = datetime.now(UTC)
            letters = [letter for letter in found if select(letter, now)][:max_messages]
    return letters


def queues(
    topology: Topology,
    *,
    project: str,
    subscriber: SubscriberClient | None = None,
    limit: int = LIST_LIMIT,
    timeout: float = CALL_TIMEOUT,
) -> list[QueueStats]:
    """Count what waits on every dead-letter subscription of ``topology`` (a peek each).

    A subscription that does not exist in ``project`` is reported with ``provisioned=False``.
    """
    stats = []
    with _subscriber(subscriber) as client:
        for source in sorted(topology.subscriptions.values(), key=lambda s: s.name):
            queue = _Queue(client, project, source, timeout)
            try:
                letters, complete = queue.peek(limit)
            except DeadLetterQueueNotFound:
                stats.append(QueueStats(queue.name, source.name, 0, True, None, False))
                continue
            times = [d.dead_lettered_at for d in letters if d.dead_lettered_at is not None]
            stats.append(
                QueueStats(
                    queue.name, source.name, len(letters), complete, min(times, default=None)
                )
            )
    return stats


def replay(
    topology: Topology,
    subscription: str,
    *,
    project: str,
    select: Selection = EVERY,
    limit: int | None = None,
    dry_run: bool = False,
    rate: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    subscriber: SubscriberClient | None = None,
    publisher: PublisherClient | None = None,
    timeout: float = CALL_TIMEOUT,
) -> ReplayReport:
    """Publish dead letters of ``subscription`` to its topic again, removing each once it is.

    The original data and attributes (``ce-id`` included) are published unchanged but for the
    dead-letter attributes, so consumers that already handled an event see a duplicate and drop
    it, and the consumer that dead-lettered it handles it. A dead letter is acked on the
    dead-letter subscription only after its re-publish succeeded: an interrupted replay loses
    nothing, and running it again re-publishes what was not acked.

    Args:
        subscription: the source subscription, or its dead-letter subscription.
        select: which dead letters; the others stay where they are.
        limit: at most this many.
        dry_run: only say what would be replayed (``selected``); change nothing.
        rate: at most this many re-publishes per second (spare a consumer that just recovered).
        on_progress: called with (done, total) after each dead letter.

    Returns:
        What was replayed, skipped and failed. It stops at the first batch with a failure
        (Pub/Sub is likely down or the topic gone) and says why in ``error``.

    Raises:
        TopologyError: no such subscription in the topology.
        DeadLetterQueueNotFound: the dead-letter subscription does not exist in ``project``.
        ToolkitError: Pub/Sub refused or did not answer while pulling.
    """
    source = resolve(topology, subscription)
    topic_path = f"projects/{project}/topics/{source.topic.name}"
    with _subscriber(subscriber) as client:
        queue = _Queue(client, project, source, timeout)
        if dry_run:
            found, complete = queue.peek(PEEK_LIMIT)
            chosen = _choose(found, select, limit)
            return ReplayReport(chosen, skipped=len(found) - len(chosen), more=not complete)
        with queue.keeping() as held:
            found, complete = held.take(PEEK_LIMIT)
            chosen = _choose(found, select, limit)
            report = ReplayReport(chosen, skipped=len(found) - len(chosen), more=not complete)
            # What is not replayed is handed back at once, for other readers.
            held.release(held.ids() - {d.dead_letter_id for d in chosen})
            if chosen:
                with _publisher(publisher) as push:
                    _republish(push, topic_path, source, chosen, held, report, rate, on_progress)
    return report


def _choose(found: list[DeadLetter], select: Selection, limit: int | None) -> list[DeadLetter]:
    now = datetime.now(UTC)
    chosen = [letter for letter in found if select(letter, now)]
    return chosen if limit is None else chosen[:limit]


def _republish(
    push: PublisherClient,
    topic_path: str,
    source: Subscription,
    chosen: list[DeadLetter],
    held: _Held,
    report: ReplayReport,
    rate: float | None,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Publish ``chosen`` to ``topic_path``, acking each on ``held`` once Pub/Sub accepted it.

    Unlimited, :data:`PUBLISH_BATCH` are in flight at once; with a ``rate``, one at a time, at
    most one per ``1 / rate`` seconds. Stops after a batch with a failure (``report.error``).
    """
    interval = 1 / rate if rate else 0.0
    size = 1 if rate else PUBLISH_BATCH
    acks = _Acks(held)
    try:
        for start in range(0, len(chosen), size):
            started = time.monotonic()
            batch = [(d, _publish(push, topic_path, d)) for d in chosen[start : start + size]]
            for letter, future in batch:
                error = _outcome(future, held, acks)
                if error is None:
                    acks.add(letter.dead_letter_id)
                    report.replayed += 1
                else:  # it stays held, and is handed back at the end
                    report.failed += 1
                    report.error = report.error or _publish_failure(source, error)
                if on_progress is not None:
                    on_progress(report.replayed + report.failed, len(chosen))
            if report.failed:
                report.untried = len(chosen) - report.replayed - report.failed
                return
            acks.flush()
            _pause(started + interval, held, acks)
    finally:
        # Accepted re-publishes are acked even when the run is interrupted (Ctrl-C, SIGTERM):
        # fewer duplicates next time. Best effort: what stays is re-published again, not lost.
        with contextlib.suppress(ToolkitError):
            acks.flush()


def _outcome(future: Any, held: _Held, acks: _Acks) -> BaseException | None:
    """Wait up to :data:`PUBLISH_TIMEOUT` for a re-publish, keeping leases and acks moving;
    what it failed with, or ``None`` once it is accepted."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    while not future.done():
        left = deadline - time.monotonic()
        if left <= 0:
            return TimeoutError()
        concurrent.futures.wait([future], timeout=min(left, ACK_DELAY))
        acks.flush_if_due()
        held.renew()
    error: BaseException | None = future.exception()
    return error


def _pause(until: float, held: _Held, acks: _Acks) -> None:
    """Sleep until ``until`` (monotonic), keeping leases and acks moving."""
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, ACK_DELAY))
        acks.flush_if_due()
        held.renew()


def purge(
    topology: Topology,
    subscription: str,
    *,
    project: str,
    select: Selection = EVERY,
    confirm: Callable[[list[DeadLetter]], bool] = lambda letters: True,
    subscriber: SubscriberClient | None = None,
    timeout: float = CALL_TIMEOUT,
) -> PurgeReport:
    """Delete (ack) the selected dead letters of ``subscription``, after ``confirm`` agreed.

    ``confirm`` sees exactly what will be deleted; what is dead-lettered after it answered is
    left alone. When it refuses, nothing changes and the report says 0.
    """
    source = resolve(topology, subscription)
    with _subscriber(subscriber) as client:
        queue = _Queue(client, project, source, timeout)
        found, _ = queue.peek(PEEK_LIMIT)
        now = datetime.now(UTC)
        chosen = [letter for letter in found if select(letter, now)]
        report = PurgeReport()
        if not chosen or not confirm(chosen):
            return report
        with queue.holding({d.dead_letter_id for d in chosen}) as work:
            for received in work.batches(BATCH):
                work.ack_all(received)
                report.deleted += len(received)
            report.missing = len(work.pending)
    return report


def _publish(push: PublisherClient, topic_path: str, letter: DeadLetter) -> Any:
    return push.publish(topic_path, letter.data, **_original(letter.attributes))


def _publish_failure(source: Subscription, exc: BaseException) -> str:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        reason = f"not accepted within {PUBLISH_TIMEOUT:g} s"
    return f"re-publishing to topic {source.topic.name!r} failed: {reason}"


def _original(attributes: Mapping[str, str]) -> dict[str, Any]:
    return {
        k: v
        for k, v in attributes.items()
        if k not in _ADDED_ATTRIBUTES and not k.startswith(_PUBSUB_DLQ_PREFIX)
    }


def _reason(attributes: Mapping[str, str]) -> str:
    if wire.ATTR_DLQ_REASON in attributes:
        return attributes[wire.ATTR_DLQ_REASON]
    count = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount")
    if count:
        return f"delivery failed {count} times (max_delivery_attempts reached)"
    return "unknown"


def _attempts(attributes: Mapping[str, str]) -> int | None:
    value = attributes.get(f"{_PUBSUB_DLQ_PREFIX}DeliveryCount") or attributes.get(
        wire.ATTR_DLQ_ATTEMPT
    )
    return int(value) if value and value.isdigit() else None


class _Timestamp(Protocol):
    def ToDatetime(self, tzinfo: tzinfo | None = None) -> datetime: ...


class _Message(Protocol):
    data: bytes
    attributes: Mapping[str, str]
    message_id: str
    publish_time: _Timestamp

    def HasField(self, name: str) -> bool: ...


class _Received(Protocol):
    """A pulled message as protobuf has it. Read so, 10,000 dead letters take 0.11 s where the
    library's proto-plus wrappers took 0.25 s, an eighth of a whole replay's time (bench/)."""

    ack_id: str
    message: _Message


def _letter(source: str, received: _Received) -> DeadLetter:
    message = received.message
    attributes = dict(message.attributes)
    published = message.publish_time.ToDatetime(UTC) if message.HasField("publish_time") else None
    return DeadLetter(
        subscription=source,
        message_id=attributes.get(wire.ATTR_DLQ_MESSAGE_ID, message.message_id),
        event_id=attributes.get(wire.ATTR_ID),
        event_type=attributes.get(wire.ATTR_TYPE),
        reason=_reason(attributes),
        attempts=_attempts(attributes),
        data=bytes(message.data),
        attributes=attributes,
        ack_id=received.ack_id,
        dead_letter_id=message.message_id,
        dead_lettered_at=published,
    )


class _Queue:
    """One dead-letter subscription, read through ``client``; Google's errors become sentences."""

    def __init__(
        self, client: SubscriberClient, project: str, source: Subscription, timeout: float
    ) -> None:
        self.client = client
        self.project = project
        self.source = source
        self.name = source.dead_letter_subscription
        self.path = f"projects/{project}/subscriptions/{self.name}"
        self.timeout = timeout
        self.emulated = config.emulator_host() is not None

    def pull(self, max_messages: int) -> list[_Received]:
        """What is there now, up to ``max_messages``; ``[]`` when empty (see the module doc)."""
        from google.api_core import exceptions

        request = {
            "subscription": self.path,
            "max_messages": max_messages,
            "return_immediately": self.emulated,
        }
        try:
            response = self._call(
                self.client.pull,
                request,
                timeout=self.timeout if self.emulated else EMPTY_WAIT,
                empty_on_deadline=True,
            )
        except exceptions.DeadlineExceeded:
            return []  # on GCP: nothing came within EMPTY_WAIT
        return list(type(response).pb(response).received_messages)

    def peek(self, limit: int) -> tuple[list[DeadLetter], bool]:
        """Up to ``limit`` dead letters, handed straight back; and whether that was all of them.

        Pulled until an empty answer (one pull may return fewer than are there), then all are
        released at once: releasing earlier would pull the same messages again.
        """
        ack_ids: list[str] = []
        try:
            return self.collect(limit, lambda received: ack_ids.extend(r.ack_id for r in received))
        finally:
            self.modify(ack_ids, 0, quiet=True)

    def collect(
        self, limit: int, on_pull: Callable[[list[_Received]], None]
    ) -> tuple[list[DeadLetter], bool]:
        """Pull until an empty answer or ``limit`` dead letters, each pull shown to ``on_pull``;
        the dead letters, oldest first, and whether that was all of them."""
        letters: dict[str, DeadLetter] = {}
        while len(letters) < limit:
            received = self.pull(min(BATCH, limit - len(letters)))
            if not received:
                return sorted(letters.values(), key=_oldest_first), True
            on_pull(received)
            for item in received:
                if item.message.message_id not in letters:
                    letters[item.message.message_id] = _letter(self.source.name, item)
        return sorted(letters.values(), key=_oldest_first), False

    def modify(self, ack_ids: Sequence[str], seconds: int, *, quiet: bool = False) -> None:
        """Set the ack deadline of ``ack_ids`` (0 hands them back); ``quiet`` ignores failures:
        what cannot be handed back returns by itself when its lease ends."""
        for chunk in _chunks(ack_ids):
            request = {
                "subscription": self.path,
                "ack_ids": chunk,
                "ack_deadline_seconds": seconds,
            }
            try:
                self._call(self.client.modify_ack_deadline, request)
            except ToolkitError:
                if not quiet:
                    raise

    def ack(self, ack_ids: Sequence[str]) -> None:
        for chunk in _chunks(ack_ids):
            self._call(self.client.acknowledge, {"subscription": self.path, "ack_ids": chunk})

    @contextlib.contextmanager
    def keeping(self) -> Iterator[_Held]:
        held = _Held(self)
        try:
            yield held
        finally:
            held.close()

    @contextlib.contextmanager
    def holding(self, pending: set[str]) -> Iterator[_Work]:
        work = _Work(self, pending)
        try:
            yield work
        finally:
            work.close()

    def _call(
        self,
        method: Callable[..., Any],
        request: Mapping[str, Any],
        *,
        timeout: float | None = None,
        empty_on_deadline: bool = False,
    ) -> Any:
        from google.api_core import exceptions

        try:
            return method(
                request=request, retry=_retry(self.timeout), timeout=timeout or self.timeout
            )
        except exceptions.NotFound:
            raise DeadLetterQueueNotFound(self.name, self.project) from None
        except exceptions.DeadlineExceeded:
            if empty_on_deadline:
                raise  # a pull on GCP that found nothing
            raise self._unanswered("DeadlineExceeded") from None
        except exceptions.PermissionDenied:
            raise ToolkitError(
                f"permission denied on subscription {self.name!r} in project {self.project!r}; "
                "the account needs roles/pubsub.subscriber there"
            ) from None
        except exceptions.RetryError as exc:
            cause = type(exc.cause).__name__ if exc.cause is not None else "no answer"
            raise self._unanswered(cause) from None
        except exceptions.GoogleAPICallError as exc:
            raise self._unanswered(f"{type(exc).__name__}: {exc.message}") from None

    def _unanswered(self, why: str) -> ToolkitError:
        return ToolkitError(
            f"Pub/Sub did not answer for subscription {self.name!r} in project "
            f"{self.project!r} ({why}); is the emulator or the network up?"
        )


class _Work:
    """Pulls the dead letters whose ids are ``pending`` again, to act on them (a purge).

    Everything else it pulls meanwhile (not selected, or dead-lettered after the peek) is held
    until :meth:`close` and then handed back, so that the next pull brings other messages.
    Whatever it holds is leased for :data:`LEASE` seconds at a time: a killed run's dead letters
    return within that.
    """

    def __init__(self, queue: _Queue, pending: set[str]) -> None:
        self.queue = queue
        self.pending = set(pending)
        self._held: dict[str, str] = {}  # message id -> ack id, handed back at close
        self._current: dict[str, str] = {}  # the batch being worked on: message id -> ack id
        self._seen: set[str] = set()

    def batches(self, size: int) -> Iterator[list[_Received]]:
        """Batches of pending messages, until none is pending or a pull brings nothing new."""
        while self.pending:
            received = self.queue.pull(size)
            if not received:
                return
            self.queue.modify([r.ack_id for r in received], LEASE)
            new = {r.message.message_id for r in received} - self._seen
            self._seen |= new
            mine = [r for r in received if r.message.message_id in self.pending]
            for r in received:
                if r.message.message_id not in self.pending:
                    self._held[r.message.message_id] = r.ack_id
            if not new and not mine:
                return  # only what is held came back: the pending ones are gone
            self._current = {r.message.message_id: r.ack_id for r in mine}
            if mine:
                yield mine
            self._current = {}

    def ack_all(self, items: Iterable[_Received]) -> None:
        items = list(items)
        self.queue.ack([i.ack_id for i in items])
        for item in items:
            self._done(item)

    def _done(self, item: _Received) -> None:
        self.pending.discard(item.message.message_id)
        self._current.pop(item.message.message_id, None)
        self._held.pop(item.message.message_id, None)

    def close(self) -> None:
        """Hand back everything held or not yet acked, so a next run sees it at once."""
        self.queue.modify([*self._held.values(), *self._current.values()], 0, quiet=True)
        self._held.clear()
        self._current.clear()


class _Held:
    """The dead letters a replay pulled and keeps until it acks them or hands them back.

    Each is leased for :data:`LEASE` seconds at a time and renewed while the replay runs, so a
    killed run's dead letters return within that; :meth:`close` hands back what is left at once.
    """

    def __init__(self, queue: _Queue) -> None:
        self.queue = queue
        self._ack_ids: dict[str, str] = {}  # dead-letter message id -> its latest ack id
        self._fresh: list[str] = []  # ack ids still on the subscription's own ack deadline
        self._fresh_since = 0.0
        self._leased_at: float | None = None  # when the oldest lease still running began

    def take(self, limit: int) -> tuple[list[DeadLetter], bool]:
        """Like :meth:`_Queue.peek`, but keeps everything pulled (leased) instead."""
        taken = self.queue.collect(limit, self._add)
        self.renew(fresh=True)
        return taken

    def ids(self) -> set[str]:
        return set(self._ack_ids)

    def renew(self, *, fresh: bool = False) -> None:
        """Lease what was pulled since the last call once a chunk or a second of it gathered
        (all of it with ``fresh``), and renew every lease when half of the oldest has passed."""
        now = time.monotonic()
        if self._ack_ids and self._leased_at is not None and now - self._leased_at > LEASE / 2:
            self.queue.modify(list(self._ack_ids.values()), LEASE)
            self._fresh.clear()
            self._leased_at = now
        elif self._fresh and (fresh or len(self._fresh) >= 1000 or now - self._fresh_since > 1):
            self.queue.modify(self._fresh, LEASE)
            self._fresh.clear()
            if self._leased_at is None:
                self._leased_at = now

    def ack(self, ids: Iterable[str]) -> None:
        self.queue.ack([self._ack_ids.pop(i) for i in ids])

    def release(self, ids: Iterable[str]) -> None:
        """Hand ``ids`` back now: their lease ends, any reader can pull them."""
        self.queue.modify([self._ack_ids.pop(i) for i in ids], 0, quiet=True)

    def close(self) -> None:
        self.release(list(self._ack_ids))

    def _add(self, received: list[_Received]) -> None:
        if not self._fresh:
            self._fresh_since = time.monotonic()
        for item in received:
            self._ack_ids[item.message.message_id] = item.ack_id
            self._fresh.append(item.ack_id)
        self.renew()


class _Acks:
    """Dead letters whose re-publish was accepted, acked together: at :meth:`flush`, or once
    the oldest has waited :data:`ACK_DELAY` seconds or :data:`PUBLISH_BATCH` gathered."""

    def __init__(self, held: _Held) -> None:
        self.held = held
        self._ids: list[str] = []
        self._since = 0.0

    def add(self, dead_letter_id: str) -> None:
        if not self._ids:
            self._since = time.monotonic()
        self._ids.append(dead_letter_id)
        self.flush_if_due()

    def flush_if_due(self) -> None:
        if self._ids and (
            len(self._ids) >= PUBLISH_BATCH or time.monotonic() - self._since >= ACK_DELAY
        ):
            self.flush()

    def flush(self) -> None:
        ids, self._ids = self._ids, []
        if ids:
            self.held.ack(ids)


def _oldest_first(letter: DeadLetter) -> tuple[float, str]:
    moment = letter.dead_lettered_at
    return (moment.timestamp() if moment else 0.0, letter.dead_letter_id)


def _chunks(ack_ids: Sequence[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(ack_ids), size):
        yield list(ack_ids[start : start + size])


def _retry(timeout: float) -> Retry:
    """The library's retry of transient errors, but within ``timeout`` instead of 60 s."""
    from google.api_core import exceptions
    from google.api_core.retry import Retry, if_exception_type

    return Retry(
        initial=0.1,
        maximum=1.0,
        multiplier=1.3,
        predicate=if_exception_type(
            exceptions.Aborted,
            exceptions.InternalServerError,
            exceptions.ServiceUnavailable,
            exceptions.Unknown,
        ),
        timeout=timeout,
    )


@contextlib.contextmanager
def _subscriber(given: SubscriberClient | None) -> Iterator[SubscriberClient]:
    """``given``, or a client of our own that is closed afterwards."""
    if given is not None:
        yield given
        return
    with subscriber_client() as client:
        yield client


@contextlib.contextmanager
def _publisher(given: PublisherClient | None) -> Iterator[PublisherClient]:
    if given is not None:
        yield given
        return
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    try:
        yield client
    finally:
        client.stop()
        client.transport.close()
