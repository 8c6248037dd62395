"""Pull workers: the ack contract for services that are not functions.

    worker = PullWorker(TOPOLOGY, "timeline_enrichment", handle_like)
    worker.run()          # until SIGINT or SIGTERM; in-flight handlers finish first

A worker streams every subscription of its consumer, runs the handler through the same
pipeline as the Cloud Functions runtime (filter, decode, idempotency, dead-lettering; see
:mod:`shared.runtime.pipeline`), and acks or nacks by the outcome. Pub/Sub's redelivery, backoff
and dead-letter policy do the rest.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import config
from shared._clients import Lazy, subscriber_client
from shared.delivery import RawMessage
from shared.events import Event
from shared.observability import configure_logging, describe_exception
from shared.runtime import Handler, Pipeline, PubSubDeadLetterSink
from shared.stores import Store, open_store
from shared.topology import Topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient
    from google.cloud.pubsub_v1.subscriber.futures import StreamingPullFuture
    from google.cloud.pubsub_v1.subscriber.message import Message

log = logging.getLogger("pubsub_kit.worker")


class WorkerSettings(NamedTuple):
    """Flow control per subscription, mapped onto the library's ``FlowControl``."""

    max_messages: int = 100  # outstanding (leased, unanswered) messages
    max_bytes: int = 100 * 1024 * 1024  # outstanding bytes: 100 MiB
    # Seconds a handler may hold a message (the library extends its ack deadline meanwhile):
    # 10 minutes. Idempotency claims last as long, so a redelivery never runs beside a live
    # handler; a worker that dies mid-message delays that event's retry by as much.
    max_lease_duration: float = 600.0
    shutdown_timeout: float = 60.0  # seconds stop() waits for in-flight handlers


_DEFAULT_SETTINGS = WorkerSettings()


class OrderGate:
    """Holds the rest of an ordering key back behind one of its messages that failed.

    The client library hands over a key's messages one at a time, but releases the next one as
    soon as the previous is nacked, while the failed one comes back only after its backoff:
    without a gate the next would be handled first, out of order. After a nack, later messages
    of that key are nacked unhandled (they come back behind it) until the failed one is acked,
    or cannot come back because it used its last attempt (Pub/Sub dead-letters it), or ``hold``
    seconds passed (it was redelivered elsewhere).
    """

    def __init__(
        self, max_attempts: int, hold: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_attempts = max_attempts
        self.hold = hold
        self._clock = clock
        self._failed: dict[str, tuple[str, float]] = {}  # key -> (message id, since)
        self._lock = threading.Lock()

    def admit(self, raw: RawMessage) -> bool:
        """Whether ``raw`` may be handled now (False: nack it unhandled)."""
        key = raw.ordering_key
        with self._lock:
            failed = self._failed.get(key) if key else None
            if failed is None or failed[0] == raw.message_id:
                return True
            if self._clock() - failed[1] > self.hold:
                del self._failed[key]  # type: ignore[arg-type]
                return True
            return False

    def settle(self, raw: RawMessage, acked: bool) -> None:
        """Record how a message that was handled ended."""
        key = raw.ordering_key
        if not key:
            return
        with self._lock:
            last_attempt = raw.attempt is not None and raw.attempt >= self.max_attempts
            if acked or last_attempt:
                if self._failed.get(key, ("",))[0] == raw.message_id:
                    del self._failed[key]
            else:
                self._failed.setdefault(key, (raw.message_id, self._clock()))


def order_gates(topology: Topology, subscriptions: Iterable[str]) -> dict[str, OrderGate]:
    """An :class:`OrderGate` for each of ``subscriptions`` whose consumer is ``ordered``."""
    gates = {}
    for name in subscriptions:
        consumer = topology.subscription(name).consumer
        if consumer.ordered:
            hold = consumer.retry.maximum_backoff + consumer.handler_budget
            gates[name] = OrderGate(consumer.max_delivery_attempts, hold)
    return gates


class SubscriptionPump:
    """Streams several subscriptions into callbacks that answer ack (True) or nack (False).

    The machinery under :class:`PullWorker` (the local runtime has a pull loop of its own,
    :mod:`shared.tools.local_pull`). A subscriber client passed in belongs to the caller; one
    made here is closed by :meth:`stop`.
    """

    def __init__(
        self,
        project: str,
        callbacks: Mapping[str, Callable[[RawMessage], bool]],
        settings: WorkerSettings = _DEFAULT_SETTINGS,
        subscriber: SubscriberClient | None = None,
        gates: Mapping[str, OrderGate] | None = None,
    ) -> None:
        self.project = project
        self.callbacks = dict(callbacks)
        self.gates = dict(gates or {})  # ordered subscriptions: see OrderGate
        self.settings = settings
        self._subscriber: Lazy[SubscriberClient] = (
            Lazy(lambda: subscriber) if subscriber is not None else Lazy(subscriber_client, _close)
        )
        self._futures: list[StreamingPullFuture] = []

    def start(self) -> None:
        from google.cloud import pubsub_v1

        client = self._subscriber.get()
        flow = pubsub_v1.types.FlowControl(
            max_messages=self.settings.max_messages,
            max_bytes=self.settings.max_bytes,
            max_lease_duration=int(self.settings.max_lease_duration),
        )
        for name, callback in self.callbacks.items():
            path = f"projects/{self.project}/subscriptions/{name}"
            self._futures.append(
                client.subscribe(
                    path,
                    self._wrap(name, callback),
                    flow_control=flow,
                    await_callbacks_on_shutdown=True,
                )
            )

    def _wrap(self, name: str, callback: Callable[[RawMessage], bool]) -> Callable[[Message], None]:
        gate = self.gates.get(name)

        def on_message(message: Message) -> None:
            raw = RawMessage(
                data=bytes(message.data),
                attributes=dict(message.attributes),
                message_id=message.message_id,
                publish_time=message.publish_time,
                ordering_key=message.ordering_key or None,
                attempt=message.delivery_attempt,
                subscription=name,
            )
            if gate is not None and not gate.admit(raw):
                message.nack()  # behind a failed message of its key: it comes back after it
                return
            try:
                ok = callback(raw)
            except Exception as exc:  # noqa: BLE001 - a crashed callback must not lose the message
                log.error(
                    "delivery callback failed",
                    extra={"fields": {"subscription": name, "error": describe_exception(exc)}},
                )
                ok = False
            if gate is not None:
                gate.settle(raw, ok)
            if ok:
                message.ack()
            else:
                message.nack()

        return on_message

    def stop(self, timeout: float | None = None) -> None:
        """Stop pulling and wait for in-flight callbacks (each is acked or nacked).

        ``timeout`` (default ``settings.shutdown_timeout``) bounds the whole stop. Cancelling a
        stream can itself block (the emulator never closes a cancelled stream), so the streams
        are stopped in a helper thread; past the deadline the stop goes on without them, and
        whatever they held is redelivered after its ack deadline.
        """
        limit = timeout or self.settings.shutdown_timeout
        futures, self._futures = self._futures, []
        stopper = threading.Thread(
            target=_stop_streams, args=(futures, limit), name="pubsub-kit-stop", daemon=True
        )
        stopper.start()
        stopper.join(limit)
        if stopper.is_alive():
            log.warning(
                "streams did not stop in time; going on without them",
                extra={"fields": {"timeout_s": limit}},
            )
        self._subscriber.close()

    @property
    def running(self) -> bool:
        return any(not f.done() for f in self._futures)


def _stop_streams(futures: list[StreamingPullFuture], limit: float) -> None:
    deadline = time.monotonic() + limit
    for future in futures:
        future.cancel()
    for future in futures:
        # A cancelled stream may re-raise the error that ended it; stopping goes on regardless.
        with contextlib.suppress(Exception):
            future.result(timeout=max(0.0, deadline - time.monotonic()))


class PullWorker:
    """Runs a typed handler on every subscription of a consumer.

    Args:
        topology: the declarations.
        consumer: the consumer's name; its subscriptions are pulled.
        handler: ``handler(event)`` or ``handler(event, delivery)``; same contract as functions.
        store: idempotency store; default :func:`~shared.stores.open_store` when the consumer
            declares ``uses_store``.
        settings: flow control and shutdown.
        accepts: the event models the handler supports.
    """

    def __init__(
        self,
        topology: Topology,
        consumer: str,
        handler: Handler,
        *,
        store: Store | None = None,
        settings: WorkerSettings = _DEFAULT_SETTINGS,
        project: str | None = None,
        accepts: Iterable[type[Event]] | None = None,
    ) -> None:
        self.project = config.project_id(project)
        # A store passed in belongs to the caller; one opened here is closed by stop().
        self._store: Lazy[Store] = (
            Lazy(lambda: store) if store is not None else Lazy(open_store, Store.close)
        )
        self._dead_letters = PubSubDeadLetterSink(consumer, self.project)
        self.pipeline = Pipeline(
            topology,
            consumer,
            handler,
            store=self._store.get if topology.consumer(consumer).uses_store else None,
            dead_letters=self._dead_letters,
            accepts=accepts,
            lease=max(settings.max_lease_duration, topology.consumer(consumer).handler_budget),
        )

        def deliver(raw: RawMessage) -> bool:
            return self.pipeline.process(raw).ack

        names = [s.name for s in topology.subscriptions_of(consumer)]
        self._pump = SubscriptionPump(
            self.project,
            dict.fromkeys(names, deliver),
            settings,
            gates=order_gates(topology, names),
        )
        self._stopped = threading.Event()

    def start(self) -> None:
        """Start pulling in background threads."""
        self._pump.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop pulling; let in-flight handlers finish and answer their messages; close clients."""
        self._pump.stop(timeout)
        self._dead_letters.close()
        self._store.close()
        self._stopped.set()

    def run(self) -> None:
        """Start, block until SIGINT or SIGTERM, then stop gracefully."""
        configure_logging()
        previous: dict[int, Any] = {}

        def request_stop(signum: int, frame: Any) -> None:
            log.info("stopping: finishing in-flight messages", extra={"fields": {"signal": signum}})
            self._stopped.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
        try:
            self.start()
            # Short waits: a signal the kernel hands to another thread (gRPC's, say) runs its
            # Python handler only when the main thread wakes up.
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def __enter__(self) -> PullWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close(client: SubscriberClient) -> None:
    client.close()
