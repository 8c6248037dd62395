"""Publish typed events: validated before any I/O, flushed before the process exits.

    publisher = Publisher(TOPOLOGY)
    publisher.publish(PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=now))
    publisher.publish_all(events)          # waits until every one is accepted

``publish`` returns a future of the message id. Messages are batched by the client library;
a process that returns without waiting still delivers everything it published, because the
publisher flushes at interpreter exit (the library alone drops its last batch).

Inside a handler, published events inherit the handled event's correlation id and continue its
trace, so a chain of events can be followed across services.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Iterable
from datetime import datetime
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import config, telemetry, wire
from shared._clients import Lazy
from shared.errors import PublishError, ToolkitError
from shared.events import Event
from shared.observability import TraceContext, current_context
from shared.topology import Topology

if TYPE_CHECKING:  # the client costs ~0.4 s to import; consumers that never publish skip it
    from google.cloud.pubsub_v1 import PublisherClient
    from opentelemetry.trace import Span


class PublisherSettings(NamedTuple):
    """Batching and timeouts, mapped onto the library's own ``BatchSettings``."""

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

    def __init__(self, topic: str, event_id: str, deadline: float) -> None:
        super().__init__()
        self.topic = topic
        self.event_id = event_id
        self.deadline = deadline  # monotonic() by which it is settled, one way or another

    def settle(self, result: str | None = None, error: BaseException | None = None) -> None:
        """Set the outcome unless it is set already (by the deadline, or the library)."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if error is None:
                self.set_result(result or "")
            else:
                self.set_exception(error)


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
        self._client: Lazy[PublisherClient] = Lazy(self._make_client, _close_client)
        self._lock = threading.Lock()
        self._pending: set[PublishFuture] = set()
        self._watching = False  # a thread fails what outlives its deadline

    @property
    def project(self) -> str:
        if self._project is None:
            self._project = config.project_id()
        return self._project

    @property
    def client(self) -> PublisherClient:
        """The library client, created on first use and again in a forked child."""
        return self._client.get()

    def _make_client(self) -> PublisherClient:
        from google.cloud import pubsub_v1

        batch = pubsub_v1.types.BatchSettings(
            max_messages=self.settings.max_messages,
            max_bytes=self.settings.max_bytes,
            max_latency=self.settings.max_latency,
        )
        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        client = pubsub_v1.PublisherClient(batch, publisher_options=options)
        with self._lock:
            self._pending = set()  # a forked child inherits none of its parent's messages
        _flush_at_exit(self)
        return client

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

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
            inner = self.client.publish(path, data, ordering_key=ordering_key or "", **attributes)
        except BaseException as exc:
            _end_span(span, None, exc)
            raise
        outer = PublishFuture(topic, envelope.id, monotonic() + self.settings.timeout)
        with self._lock:
            self._pending.add(outer)
            if not self._watching:
                self._watching = True
                threading.Thread(
                    target=_watch_deadlines, args=(weakref.ref(self),), daemon=True
                ).start()

        def settle(done: Any) -> None:
            try:
                message_id = done.result()
                _end_span(span, message_id, None)
                outer.settle(message_id)
            except BaseException as exc:  # noqa: BLE001 - surfaced through the future
                _end_span(span, None, exc)
                if ordering_key:
                    # The library pauses a key after a failure; later publishes on it would all
                    # fail until resumed. The caller sees this failure and may retry in order.
                    self.client.resume_publish(path, ordering_key)
                outer.settle(error=PublishError(topic, envelope.id, exc))
            finally:
                with self._lock:
                    self._pending.discard(outer)

        inner.add_done_callback(settle)
        return outer

    def publish_all(self, events: Iterable[Event], *, ordering_key: str | None = None) -> list[str]:
        """Publish every event and wait for all of them; returns their message ids in order.

        Raises:
            PublishError: the first failure, after every publish has settled, or the messages
                that were not accepted within ``settings.timeout``.
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
        return [f.result(timeout=0) for f in futures]

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every message published so far is accepted or failed.

        Returns:
            How many were still outstanding when the timeout ran out (0 when all settled).
        """
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return 0
        _, not_done = concurrent.futures.wait(pending, timeout=timeout or self.settings.timeout)
        return len(not_done)

    def close(self, timeout: float | None = None) -> int:
        """Flush (up to ``timeout``, default ``settings.flush_timeout``), then release the client.

        Returns:
            How many messages were still outstanding when the flush gave up (0 when none).
        """
        if self._client.peek() is None:
            return 0
        outstanding = self.flush(timeout or self.settings.flush_timeout)
        self._client.close()
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
        telemetry.fail(span, type(error).__name__)
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
        if publisher._client.peek() is not None:
            publisher.flush(publisher.settings.flush_timeout)


def _watch_deadlines(ref: weakref.ref[Publisher], interval: float = 0.25) -> None:
    """Fail each publish still unsettled at its deadline; ends when none is pending."""
    while (publisher := ref()) is not None:
        with publisher._lock:
            pending = [f for f in publisher._pending if not f.done()]
            if not pending:
                publisher._watching = False
                return
        now = monotonic()
        for future in pending:
            if now >= future.deadline:
                future.settle(
                    error=PublishError(
                        future.topic,
                        future.event_id,
                        f"not accepted within {publisher.settings.timeout:g} s; is Pub/Sub (or "
                        "PUBSUB_EMULATOR_HOST) reachable? It may still arrive: publishing again "
                        "with the same event_id is safe, consumers drop the duplicate",
                    )
                )
        del publisher  # hold no reference while waiting: an unused publisher can go
        sleep(interval)


def _close_client(client: PublisherClient) -> None:
    client.stop()  # sends what is batched; flush() has waited for it
    client.transport.close()
