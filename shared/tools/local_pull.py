"""The local runtime's pull loop: emulator messages, in batches, to each function's workers.

:class:`LocalSystem <shared.tools.dev.LocalSystem>` feeds its functions through this rather
than through the client library's streaming pull (:class:`shared.worker.SubscriptionPump`).
Measured on gcloud's emulator (0.8.20), one backlog of 5,000 messages:

- unary pulls of 100 drained it in 0.3 s of wall time and 0.3 s of the emulator's CPU, the
  library's streaming pull in 2.6 s and 0.7 s. Acks and nacks go out in one request per
  subscription for everything answered within :data:`ANSWER_LINGER`: sent one by one, they
  took the emulator 1.3-2.5 s of CPU for 2,000 messages published and delivered at
  concurrency 1, against 0.5-0.7 s batched;
- a streaming pull that was cancelled is never closed by the emulator, which keeps leasing
  messages to it, so a runtime stopped and started again on the same subscriptions stalls; a
  unary pull ends with its call.

Per subscription one thread pulls while fewer than ``settings.max_messages`` of its messages are
held (pulled and not answered yet), and pulls again once half of them are answered. Per function
``concurrency`` worker threads take the messages of all its subscriptions, as Cloud Run hands an
instance up to its concurrency of requests. Messages of one ordering key of an ordered
subscription go one after the other, in order, as Pub/Sub's client library hands them over,
and its :class:`~shared.worker.OrderGate` holds the rest of a key back behind one that failed.
One more thread sends the answers (ack for True; nack for False or an exception) and extends
the leases of messages held longer than a third of their ack deadline, for up to
``settings.max_lease_duration``: a function that is down keeps its messages without burning
delivery attempts.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, NamedTuple

from shared._clients import Lazy, subscriber_client
from shared.delivery import RawMessage
from shared.observability import describe_exception
from shared.worker import OrderGate, WorkerSettings

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient

log = logging.getLogger("pubsub_kit.dev")

# How a subscription is pulled, from what was measured on gcloud's emulator (0.8.20):
# - While messages come, each pull asks ``return_immediately``: the emulator answers at once
#   with what it has. An empty answer is followed by a pause (10 ms, doubling up to 100 ms): an
#   empty immediate pull costs the emulator about 0.8 ms of CPU, so polling an idle
#   subscription that way would keep it busy.
# - After a second without messages a pull waits instead: the emulator answers as soon as a
#   message comes, or empty one second before the pull's deadline, for about 1% of its CPU
#   per idle subscription. A waiting pull whose deadline passes first (an emulator too busy to
#   answer in time), or that is cancelled, still gets messages leased to it, and they come back
#   only after their ack deadline: after such a miss the subscription is only polled, and a
#   pull in progress is never cancelled (stop() waits for it, a second at most).
IDLE_PAUSES = (0.01, 0.1)  # seconds after an empty immediate pull: from 10 ms up to 100 ms
WAIT_AFTER = 1.0  # seconds without messages before pulls wait
WAITING_PULL = 2.0  # seconds: a waiting pull's deadline; the emulator answers within 1 s
PULL_TIMEOUT = 30.0  # seconds for an immediate pull, which the emulator answers at once
ANSWER_BATCH = 1000  # ack ids per acknowledge / modify_ack_deadline request
ANSWER_LINGER = 0.02  # seconds an answer waits for others to share its request: 20 ms
RETRY_PAUSE = 1.0  # seconds after a failed pull (the emulator restarting, say)

_DEFAULT_SETTINGS = WorkerSettings()


class Feed(NamedTuple):
    """One subscription to pull, and the function whose workers deliver its messages."""

    subscription: str  # short name, e.g. "post-liked--audit_log"
    deliver: Callable[[RawMessage], bool]  # True acks, False nacks
    function: str  # whose workers run ``deliver``
    ack_deadline: int  # seconds: the subscription's; a held lease is extended by as much
    ordered: bool = False
    gate: OrderGate | None = None


class _Held:
    """A pulled message until it is answered."""

    __slots__ = ("ack_id", "raw", "since", "source")

    def __init__(self, source: _Source, ack_id: str, raw: RawMessage, since: float) -> None:
        self.source = source
        self.ack_id = ack_id
        self.raw = raw
        self.since = since


class _Source:
    """One subscription's state: what it holds, and the ordering keys in delivery."""

    def __init__(self, feed: Feed, path: str, settings: WorkerSettings) -> None:
        self.feed = feed
        self.path = path
        self.refill = max(1, settings.max_messages // 2)  # free room that is worth a pull
        self.free = settings.max_messages
        self.held: dict[str, _Held] = {}
        self.acks: list[str] = []  # answered, to be sent
        self.nacks: list[str] = []
        self.changed = threading.Condition()
        self.keys: dict[str, collections.deque[_Held]] = {}  # key -> its messages still to go


class PullPump:
    """Pulls every feed's subscription and delivers its messages on its function's workers.

    Args:
        project: the emulator project.
        feeds: the subscriptions, each with its delivery callback and function.
        workers: threads per function (its concurrency); every feed's function must be here.
        settings: ``max_messages`` held per subscription, ``max_lease_duration``,
            ``shutdown_timeout``.
        subscriber: a client that belongs to the caller; by default one is made here and
            closed by :meth:`stop`.
    """

    def __init__(
        self,
        project: str,
        feeds: Sequence[Feed],
        workers: Mapping[str, int],
        settings: WorkerSettings = _DEFAULT_SETTINGS,
        subscriber: SubscriberClient | None = None,
    ) -> None:
        missing = sorted({f.function for f in feeds if workers.get(f.function, 0) < 1})
        if missing:
            raise ValueError(f"no worker for function(s) {', '.join(missing)}")
        self.settings = settings
        self._sources = [
            _Source(f, f"projects/{project}/subscriptions/{f.subscription}", settings)
            for f in feeds
        ]
        self._workers = {f.function: workers[f.function] for f in feeds}
        self._queues: dict[str, queue.SimpleQueue[_Held | None]] = {
            name: queue.SimpleQueue() for name in self._workers
        }
        self._answered = threading.Event()  # set by the first answer since the last requests
        self._done = threading.Event()  # the answerer sends what is left, then ends
        self._subscriber: Lazy[SubscriberClient] = (
            Lazy(lambda: subscriber) if subscriber is not None else Lazy(subscriber_client, _close)
        )
        self._stopping = threading.Event()
        self._pullers: list[threading.Thread] = []
        self._workers_threads: list[threading.Thread] = []
        self._answerer: threading.Thread | None = None
        deadlines = [f.ack_deadline for f in feeds] or [10]
        # Extend a lease well before it ends: a third of the shortest ack deadline.
        self._lease_every = max(1.0, min(deadlines) / 3)

    def start(self) -> None:
        """Start pulling and delivering in background threads (once: a stopped pump is done)."""
        self._subscriber.get()  # made here, not in a thread: a configuration error raises
        self._answerer = threading.Thread(
            target=self._answer_loop, name="pubsub-kit-answers", daemon=True
        )
        self._answerer.start()
        for name, count in self._workers.items():
            for index in range(count):
                thread = threading.Thread(
                    target=self._work,
                    args=(self._queues[name],),
                    name=f"pubsub-kit-{name}-{index}",
                    daemon=True,
                )
                thread.start()
                self._workers_threads.append(thread)
        for source in self._sources:
            thread = threading.Thread(
                target=self._pull_loop,
                args=(source,),
                name=f"pubsub-kit-pull-{source.feed.subscription}",
                daemon=True,
            )
            thread.start()
            self._pullers.append(thread)

    def stop(self, timeout: float | None = None) -> None:
        """Stop pulling, let deliveries in progress end, nack every message not answered yet.

        ``timeout`` (default ``settings.shutdown_timeout``) bounds the whole stop. A message not
        answered by then is left to its ack deadline: Pub/Sub delivers it again after it.
        """
        deadline = time.monotonic() + (timeout or self.settings.shutdown_timeout)
        self._stopping.set()
        for source in self._sources:
            with source.changed:
                source.changed.notify_all()
        for thread in self._pullers:  # a pull in progress ends within a second
            thread.join(max(0.0, deadline - time.monotonic()))
        for name, count in self._workers.items():
            for _ in range(count):
                self._queues[name].put(None)  # behind what is queued: that is nacked first
        for thread in self._workers_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for source in self._sources:  # queued behind an ordering key, or not yet released
            with source.changed:
                left = list(source.held.values())
            for held in left:
                self._answer(held, False)
        self._done.set()
        self._answered.set()
        if self._answerer is not None:
            self._answerer.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in [*self._pullers, *self._workers_threads] if t.is_alive()]
        if alive or (self._answerer is not None and self._answerer.is_alive()):
            log.warning(
                "delivery did not stop in time; going on without it",
                extra={"fields": {"threads": alive}},
            )
        self._pullers, self._workers_threads, self._answerer = [], [], None
        self._subscriber.close()

    # -- pulling ------------------------------------------------------------------------------

    def _pull_loop(self, source: _Source) -> None:
        client = self._subscriber.get()
        pause = 0.0
        idle_since: float | None = None
        may_wait = True  # until a waiting pull missed its deadline
        while not self._stopping.wait(pause):
            with source.changed:
                source.changed.wait_for(
                    lambda: self._stopping.is_set() or source.free >= source.refill
                )
                wanted = source.free
            if self._stopping.is_set():
                return
            now = time.monotonic()
            wait = may_wait and idle_since is not None and now - idle_since >= WAIT_AFTER
            request = {
                "subscription": source.path,
                "max_messages": wanted,
                "return_immediately": not wait,
            }
            try:
                response = client.pull(
                    request=request, timeout=WAITING_PULL if wait else PULL_TIMEOUT, retry=None
                )
            except Exception as exc:  # noqa: BLE001 - the emulator may come back; keep pulling
                missed = wait and _is_deadline(exc)
                may_wait = may_wait and not missed
                log.warning(
                    "a waiting pull missed its deadline; messages leased to it come back after "
                    "their ack deadline, and this subscription is polled from now on"
                    if missed
                    else "pull failed; trying again",
                    extra={
                        "fields": {
                            "subscription": source.feed.subscription,
                            "error": describe_exception(exc),
                        }
                    },
                )
                pause = 0.0 if missed else RETRY_PAUSE
                continue
            received = type(response).pb(response).received_messages
            if received:
                pause, idle_since = 0.0, None
                self._hold(source, received)
            else:
                idle_since = now if idle_since is None else idle_since
                pause = 0.0 if wait else min(max(pause * 2, IDLE_PAUSES[0]), IDLE_PAUSES[1])

    def _hold(self, source: _Source, received: Iterable[Any]) -> None:
        now = time.monotonic()
        name = source.feed.subscription
        batch = []
        for item in received:
            message = item.message
            raw = RawMessage(
                data=message.data,
                attributes=dict(message.attributes),
                message_id=message.message_id,
                publish_time=(
                    message.publish_time.ToDatetime(tzinfo=UTC)
                    if message.HasField("publish_time")
                    else None
                ),
                ordering_key=message.ordering_key or None,
                attempt=item.delivery_attempt or None,  # 0: no dead-letter policy, not counted
                subscription=name,
            )
            batch.append(_Held(source, item.ack_id, raw, now))
        with source.changed:
            source.free -= len(batch)
            for held in batch:
                source.held[held.ack_id] = held
        if self._stopping.is_set():
            for held in batch:
                self._answer(held, False)
            return
        work = self._queues[source.feed.function]
        if not source.feed.ordered:
            for held in batch:
                work.put(held)
            return
        with source.changed:
            for held in batch:
                key = held.raw.ordering_key
                if not key:
                    work.put(held)
                elif key in source.keys:
                    source.keys[key].append(held)  # after the one of its key in delivery
                else:
                    source.keys[key] = collections.deque()
                    work.put(held)

    # -- delivering ---------------------------------------------------------------------------

    def _work(self, work: queue.SimpleQueue[_Held | None]) -> None:
        while (held := work.get()) is not None:
            self._answer(held, False if self._stopping.is_set() else self._deliver(held))

    def _deliver(self, held: _Held) -> bool:
        feed = held.source.feed
        if feed.gate is not None and not feed.gate.admit(held.raw):
            return False  # behind a failed message of its key: it comes back after it
        try:
            ok = feed.deliver(held.raw)
        except Exception as exc:  # noqa: BLE001 - a crashed callback must not lose the message
            log.error(
                "delivery callback failed",
                extra={
                    "fields": {"subscription": feed.subscription, "error": describe_exception(exc)}
                },
            )
            ok = False
        if feed.gate is not None:
            feed.gate.settle(held.raw, ok)
        return ok

    def _answer(self, held: _Held, ok: bool) -> None:
        source = held.source
        following = None
        with source.changed:
            if source.held.pop(held.ack_id, None) is None:
                return  # answered already (stop() sweeps what is left)
            (source.acks if ok else source.nacks).append(held.ack_id)
            source.free += 1
            if source.free == source.refill:
                source.changed.notify_all()
            key = held.raw.ordering_key
            if key and source.feed.ordered:
                waiting = source.keys.get(key)
                if waiting:
                    following = waiting.popleft()
                else:
                    source.keys.pop(key, None)
        if not self._answered.is_set():
            self._answered.set()
        if following is not None:
            self._queues[source.feed.function].put(following)

    # -- answering ----------------------------------------------------------------------------

    def _answer_loop(self) -> None:
        client = self._subscriber.get()
        last_lease = time.monotonic()
        while not self._done.is_set():
            if self._answered.wait(self._lease_every) and not self._done.is_set():
                # What is answered in the next moments shares the requests: the emulator's
                # cost is per request far more than per ack id.
                time.sleep(ANSWER_LINGER)
            self._answered.clear()
            self._send_answers(client)
            now = time.monotonic()
            if now - last_lease >= self._lease_every:
                last_lease = now
                self._extend_leases(client, now)
        self._send_answers(client)

    def _send_answers(self, client: SubscriberClient) -> None:
        for source in self._sources:
            with source.changed:
                acks, source.acks = source.acks, []
                nacks, source.nacks = source.nacks, []
            for chunk in _chunks(acks):
                self._call(
                    "ack", source.path, len(chunk), client.acknowledge,
                    {"subscription": source.path, "ack_ids": chunk},
                )  # fmt: skip
            for chunk in _chunks(nacks):
                self._call(
                    "nack", source.path, len(chunk), client.modify_ack_deadline,
                    {"subscription": source.path, "ack_ids": chunk, "ack_deadline_seconds": 0},
                )  # fmt: skip

    def _extend_leases(self, client: SubscriberClient, now: float) -> None:
        limit = self.settings.max_lease_duration
        for source in self._sources:
            with source.changed:
                ids = [
                    h.ack_id
                    for h in source.held.values()
                    if self._lease_every <= now - h.since < limit
                ]
            for chunk in _chunks(ids):
                self._call(
                    "lease", source.path, len(chunk), client.modify_ack_deadline,
                    {
                        "subscription": source.path,
                        "ack_ids": chunk,
                        "ack_deadline_seconds": source.feed.ack_deadline,
                    },
                )  # fmt: skip

    @staticmethod
    def _call(
        what: str, path: str, count: int, method: Callable[..., Any], request: dict[str, Any]
    ) -> None:
        try:
            method(request=request, timeout=30)
        except Exception as exc:  # noqa: BLE001 - Pub/Sub delivers unanswered messages again
            log.warning(
                f"{what} failed; Pub/Sub delivers those messages again",
                extra={
                    "fields": {
                        "subscription": path.rsplit("/", 1)[-1],
                        "messages": count,
                        "error": describe_exception(exc),
                    }
                },
            )


def _is_deadline(exc: Exception) -> bool:
    from google.api_core import exceptions

    return isinstance(exc, exceptions.DeadlineExceeded)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    return (ids[i : i + ANSWER_BATCH] for i in range(0, len(ids), ANSWER_BATCH))


def _close(client: SubscriberClient) -> None:
    client.close()
