"""Publish typed events: validated before any I/O, flushed before the process exits.

    publisher = Publisher(TOPOLOGY)
    publisher.publish(PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=now))
    publisher.publish_all(events)          # waits until every one is accepted

``publish`` returns a future of the message id. Messages are batched (``PublisherSettings``)
and sent with the client library's Publish call; messages with an ordering key go through the
library's own ordered publishing. A process that returns without waiting still delivers
everything it published, because the publisher flushes at interpreter exit (the library alone
drops its last batch).

Inside a handler, published events inherit the handled event's correlation id and continue its
trace, so a chain of events can be followed across services.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import config, telemetry, wire
from shared._batching import Batcher
from shared._clients import Lazy
from shared.errors import PublishError, ToolkitError
from shared.events import Event
from shared.observability import TraceContext, current_context
from shared.topology import Topology

if TYPE_CHECKING:  # the client costs ~0.4 s to import; consumers that never publish skip it
    from google.api_core.retry import Retry
    from google.cloud.pubsub_v1 import PublisherClient
    from opentelemetry.trace import Span


class PublisherSettings(NamedTuple):
    """Batching and timeouts; the same meaning as the library's own ``BatchSettings``."""

    max_messages: int = 100  # per batch
    max_bytes: int = 1_000_000  # per batch, 1 MB
    max_latency: float = 0.01  # seconds a batch waits to fill: 10 ms
    timeout: float = 60.0  # seconds to wait for the service to accept a message
    flush_timeout: float = 30.0  # seconds the exit hook waits for outstanding messages


_DEFAULT_SETTINGS = PublisherSettings()


class PublishFuture(concurrent.futures.Future[str]):
    """The outcome of one publish: the message id, or a :class:`PublishError`.

    It settles within the publisher's ``settings.timeout``: the client library alone keeps
    retrying an unreachable Pub/Sub for up to 10 minutes.
    """

    def __init__(
        self, topic: str, event_id: str, deadline: float, span: Span | None = None
    ) -> None:
        super().__init__()
        self.topic = topic
        self.event_id = event_id
        self.deadline = deadline  # monotonic() by which it is settled, one way or another
        self._span = span  # the producer span, ended with the outcome

    def settle(self, result: str | None = None, error: BaseException | None = None) -> None:
        """Set the outcome unless it is set already (by the deadline, or by Pub/Sub)."""
        try:
            if error is None:
                self.set_result(result or "")
            else:
                self.set_exception(error)
        except concurrent.futures.InvalidStateError:
            return
        if self._span is not None:
            _end_span(self._span, result, error)


class _Sender(NamedTuple):
    """What sends unordered messages in one process: the library client and our batches."""

    client: PublisherClient
    batcher: Batcher
    message: type[Any]  # the plain protobuf PubsubMessage

    def close(self) -> None:
        self.batcher.close()
        _close_client(self.client)


class Publisher:
    """Publishes events of a topology to their topics.

    Args:
        topology: where each event type is published.
        settings: batching and timeouts.
        project: GCP project id; defaults to :func:`shared.config.project_id` at first publish.
        source: ``ce-source`` of the events; defaults to :func:`shared.config.event_source`.

    Close it (``publisher.close()`` or ``with Publisher(...) as publisher``) to flush and release
    the client; a publisher that is not closed is still flushed at interpreter exit.
    """

    def __init__(
        self,
        topology: Topology,
        settings: PublisherSettings = _DEFAULT_SETTINGS,
        *,
        project: str | None = None,
        source: str | None = None,
    ) -> None:
        self.topology = topology
        self.settings = settings
        self._project = project
        self._source = source or config.event_source()  # read once: it does not change
        # Unordered messages are batched here and sent with the library's Publish call (see
        # shared/_batching.py for why); messages with an ordering key go through the library's
        # own client with ordering, made for the first message that has a key.
        self._sender: Lazy[_Sender] = Lazy(self._make_sender, _Sender.close)
        self._ordered: Lazy[PublisherClient] = Lazy(self._make_ordered_client, _close_client)
        self._paths: dict[str, str] = {}
        self._lock = threading.Lock()
        # Unsettled publishes in the order they were made, which is also the order of their
        # deadlines: the watcher looks at the oldest only, whatever the number in flight.
        self._pending: deque[PublishFuture] = deque()
        self._watching = False  # a thread fails what outlives its deadline

    @property
    def project(self) -> str:
        if self._project is None:
            self._project = config.project_id()
        return self._project

    @property
    def client(self) -> PublisherClient:
        """The library client, created on first use and again in a forked child."""
        return self._sender.get().client

    def _make_client(self, ordered: bool) -> PublisherClient:
        from google.cloud import pubsub_v1

        batch = pubsub_v1.types.BatchSettings(
            max_messages=self.settings.max_messages,
            max_bytes=self.settings.max_bytes,
            max_latency=self.settings.max_latency,
        )
        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=ordered)
        client = pubsub_v1.PublisherClient(batch, publisher_options=options)
        _flush_at_exit(self)
        return client

    def _make_ordered_client(self) -> PublisherClient:
        return self._make_client(ordered=True)

    def _make_sender(self) -> _Sender:
        from google.pubsub_v1 import types
        from google.pubsub_v1.services.publisher.client import PublisherClient as Generated

        client = self._make_client(ordered=False)
        retry = _publish_retry(self.settings.timeout)
        timeout = self.settings.timeout
        request_type = types.PublishRequest.pb()

        def send(topic: str, messages: list[Any]) -> Sequence[str]:
            request = types.PublishRequest.wrap(request_type(topic=topic, messages=messages))
            # The generated method: the library's channel and credentials, our batches.
            response = Generated.publish(client, request=request, retry=retry, timeout=timeout)
            return list(response.message_ids)

        batcher = Batcher(
            send,
            self._failure,
            max_messages=self.settings.max_messages,
            max_bytes=self.settings.max_bytes,
            max_latency=self.settings.max_latency,
        )
        return _Sender(client, batcher, types.PubsubMessage.pb())

    def _failure(self, future: Any, error: BaseException) -> PublishError:
        from google.api_core import exceptions

        if isinstance(error, exceptions.RetryError | exceptions.DeadlineExceeded):
            return PublishError(future.topic, future.event_id, self._late())
        return PublishError(future.topic, future.event_id, error)

    def _late(self) -> str:
        return (
            f"not accepted within {self.settings.timeout:g} s; is Pub/Sub (or "
            "PUBSUB_EMULATOR_HOST) reachable? It may still arrive: publishing again "
            "with the same event_id is safe, consumers drop the duplicate"
        )

    def topic_path(self, topic: str) -> str:
        path = self._paths.get(topic)
        if path is None:
            path = self._paths[topic] = f"projects/{self.project}/topics/{topic}"
        return path

    def publish(
        self,
        event: Event,
        *,
        ordering_key: str | None = None,
        correlation_id: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> PublishFuture:
        """Publish one event to its topic.

        Args:
            event: the event; its type decides the topic.
            ordering_key: messages with the same key are delivered in publish order.
            correlation_id: defaults to the handled event's, else the new event's id.
            event_id: ``ce-id``; a fresh UUID by default. Reuse an id only to re-send the
                *same* event: consumers treat a repeated id as a duplicate.
            time: ``ce-time``; now by default.

        Returns:
            A future whose result is the Pub/Sub message id (it raises :class:`PublishError`),
            with the event's ``topic`` and ``event_id`` as attributes.

        Raises:
            ToolkitError: the event is not valid for this topology (before any I/O).
        """
        if not isinstance(event, Event):
            raise ToolkitError(
                f"publish() takes an Event model instance; found {type(event).__name__}"
            )
        topic = self.topology.topic_for(event).name
        span = _producer_span(topic, ordering_key)
        try:
            data, attributes, envelope = self._prepare(event, correlation_id, event_id, time, span)
            path = self.topic_path(topic)
            if ordering_key:
                return self._publish_ordered(
                    topic, path, data, attributes, envelope, ordering_key, span
                )
            sender = self._sender.get()
            message = sender.message(data=data, attributes=attributes)
            future = PublishFuture(topic, envelope.id, monotonic() + self.settings.timeout, span)
            sender.batcher.add(path, message, future)
        except BaseException as exc:
            _end_span(span, None, exc)
            raise
        self._track(future)  # settled already, perhaps: the watcher drops what is done
        return future

    def _publish_ordered(
        self,
        topic: str,
        path: str,
        data: bytes,
        attributes: dict[str, str],
        envelope: wire.Envelope,
        ordering_key: str,
        span: Span | None,
    ) -> PublishFuture:
        client = self._ordered.get()
        inner = client.publish(path, data, ordering_key, **attributes)
        outer = PublishFuture(topic, envelope.id, monotonic() + self.settings.timeout, span)
        self._track(outer)

        def settle(done: Any) -> None:
            try:
                message_id = done.result()
            except BaseException as exc:  # noqa: BLE001 - surfaced through the future
                # The library pauses a key after a failure; later publishes on it would all
                # fail until resumed. The caller sees this failure and may retry in order.
                client.resume_publish(path, ordering_key)
                outer.settle(error=PublishError(topic, envelope.id, exc))
            else:
                outer.settle(message_id)

        inner.add_done_callback(settle)
        return outer

    def _track(self, future: PublishFuture) -> None:
        """Keep ``future`` for flush() and the deadline watcher."""
        with self._lock:
            self._pending.append(future)
            if not self._watching:
                self._watching = True
                threading.Thread(
                    target=_watch_deadlines, args=(weakref.ref(self),), daemon=True
                ).start()

    def publish_all(self, events: Iterable[Event], *, ordering_key: str | None = None) -> list[str]:
        """Publish every event and wait for all of them; returns their message ids in order.

        Raises:
            PublishError: once every publish has settled, the failure (or how many failed and
                the first one's reason); or how many were not accepted within
                ``settings.timeout``.
        """
        futures = [self.publish(e, ordering_key=ordering_key) for e in events]
        concurrent.futures.wait(futures, timeout=self.settings.timeout)
        late = [f for f in futures if not f.done()]
        if late:
            raise PublishError(
                late[0].topic,
                late[0].event_id,
                f"{len(late)} of {len(futures)} messages were not accepted within "
                f"{self.settings.timeout:g} s; is Pub/Sub (or PUBSUB_EMULATOR_HOST) reachable?",
            )
        failed = [error for f in futures if isinstance(error := f.exception(), PublishError)]
        if len(failed) > 1:
            first = failed[0]
            raise PublishError(
                first.topic,
                first.event_id,
                f"{len(failed)} of {len(futures)} messages failed, the first: {first.reason}",
            )
        return [f.result(timeout=0) for f in futures]

    def flush(self, timeout: float | None = None) -> int:
        """Send what is batched now and wait until every message published so far is accepted
        or failed.

        Returns:
            How many were still outstanding when the timeout ran out (0 when all settled).
        """
        sender = self._sender.peek()
        if sender is not None:
            sender.batcher.send_open()
        with self._lock:
            snapshot = list(self._pending)  # one step: the watcher may be taking from it
        pending = [future for future in snapshot if not future.done()]
        if not pending:
            return 0
        _, not_done = concurrent.futures.wait(pending, timeout=timeout or self.settings.timeout)
        return len(not_done)

    def close(self, timeout: float | None = None) -> int:
        """Flush (up to ``timeout``, default ``settings.flush_timeout``), then release the client.

        Returns:
            How many messages were still outstanding when the flush gave up (0 when none).
        """
        if self._sender.peek() is None and self._ordered.peek() is None:
            return 0
        outstanding = self.flush(timeout or self.settings.flush_timeout)
        self._sender.close()
        self._ordered.close()
        return outstanding

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare(
        self,
        event: Event,
        correlation_id: str | None,
        event_id: str | None,
        time: datetime | None,
        span: Span | None,
    ) -> tuple[bytes, dict[str, str], wire.Envelope]:
        context = current_context()
        if span is not None:  # the next hop's parent is this publish's span
            traceparent, tracestate = telemetry.traceparent_of(span)
        else:
            trace = context.trace.child() if context and context.trace else TraceContext.new()
            traceparent, tracestate = trace.traceparent, context.tracestate if context else None
        envelope = wire.new_envelope(
            event,
            source=self._source,
            event_id=event_id,
            time=time,
            correlation_id=correlation_id or (context.correlation_id if context else None),
            traceparent=traceparent,
            tracestate=tracestate,
        )
        data, attributes = wire.encode(event, envelope)
        if span is not None:
            span.set_attributes(
                {
                    telemetry.EVENT_ID: envelope.id,
                    telemetry.EVENT_TYPE: envelope.type,
                    telemetry.EVENT_SOURCE: envelope.source,
                    telemetry.BODY_SIZE: len(data),
                }
            )
        return data, attributes, envelope


def _producer_span(topic: str, ordering_key: str | None) -> Span | None:
    """The span ``send <topic>`` of one publish, a child of the active span; None when off."""
    tracer = telemetry.tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    attributes = {
        telemetry.SYSTEM: telemetry.GCP_PUBSUB,
        telemetry.DESTINATION: topic,
        telemetry.OPERATION_TYPE: "send",
        telemetry.OPERATION_NAME: "send",
    }
    if ordering_key:
        attributes[telemetry.ORDERING_KEY] = ordering_key
    return tracer.start_span(f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes)


def _end_span(span: Span | None, message_id: str | None, error: BaseException | None) -> None:
    if span is None:
        return
    if message_id:
        span.set_attribute(telemetry.MESSAGE_ID, message_id)
    if error is not None:
        cause = error.cause if isinstance(error, PublishError) and error.cause else error
        telemetry.fail(span, type(cause).__name__)
    span.end()


# Publishers with a client in this process, flushed at exit. Weak: a publisher nobody holds is
# collected once its messages settled (until then the library's futures keep it alive).
_live: weakref.WeakSet[Publisher] = weakref.WeakSet()
_hook_registered = False


def _flush_at_exit(publisher: Publisher) -> None:
    """Flush ``publisher`` when the interpreter exits, so a script loses nothing it published.

    One hook for every publisher, registered after the client library is imported, so it runs
    before the library's own exit hooks (atexit runs hooks last-in, first-out).
    """
    global _hook_registered
    _live.add(publisher)
    if not _hook_registered:
        atexit.register(_flush_all)
        _hook_registered = True


def _flush_all() -> None:
    for publisher in list(_live):
        if publisher._sender.peek() is not None or publisher._ordered.peek() is not None:
            publisher.flush(publisher.settings.flush_timeout)


def _forget_parents_messages() -> None:
    """In a forked child: the parent's messages are the parent's to flush, and its watcher
    thread does not exist here."""
    for publisher in list(_live):
        publisher._lock = threading.Lock()
        publisher._pending = deque()
        publisher._watching = False


os.register_at_fork(after_in_child=_forget_parents_messages)


def _watch_deadlines(ref: weakref.ref[Publisher], interval: float = 0.25) -> None:
    """Fail each publish still unsettled at its deadline; ends when none is pending."""
    while (publisher := ref()) is not None:
        pending, now = publisher._pending, monotonic()
        # Oldest first: settled ones leave, the first still within its deadline stops the look.
        while pending and (pending[0].done() or now >= pending[0].deadline):
            future = pending.popleft()
            if not future.done():
                future.settle(error=PublishError(future.topic, future.event_id, publisher._late()))
        with publisher._lock:
            if not pending:
                publisher._watching = False
                return
        del publisher  # hold no reference while waiting: an unused publisher can go
        sleep(interval)


def _publish_retry(timeout: float) -> Retry:
    """The library's retry for Publish (same codes and backoff), given up after ``timeout``.

    The library's own deadline is 10 minutes; a publish here settles within ``timeout``.
    """
    from google.api_core import exceptions
    from google.api_core.retry import Retry, if_exception_type

    return Retry(
        initial=0.1,
        maximum=60.0,
        multiplier=4,
        predicate=if_exception_type(
            exceptions.Aborted,
            exceptions.Cancelled,
            exceptions.DeadlineExceeded,
            exceptions.InternalServerError,
            exceptions.ResourceExhausted,
            exceptions.ServiceUnavailable,
            exceptions.Unknown,
        ),
        timeout=timeout,
    )


def _close_client(client: PublisherClient) -> None:
    client.stop()  # sends what is batched; flush() has waited for it
    client.transport.close()
