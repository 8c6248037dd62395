"""The Cloud Functions runtime: one decorator turns a typed handler into a push endpoint.

``functions/timeline_enrichment/main.py``::

    import functions_framework
    from shared import Delivery, consumer
    from shared.system.events import PostLiked
    from shared.system.topology import TOPOLOGY
    from timeline import record_like

    app = consumer(TOPOLOGY, "timeline_enrichment")

    @functions_framework.http
    @app.handler
    def timeline_enrichment(event: PostLiked, delivery: Delivery) -> None:
        record_like(app.store, event, delivery)

The endpoint accepts a push subscription's body and Eventarc CloudEvents (binary and
structured), so the function works behind the topology's push subscriptions and behind
``gcloud functions deploy --trigger-topic`` alike.

The ack contract: return normally and the message is acknowledged (HTTP 204). Raise
:class:`~shared.errors.RetryableError`, or let any other exception escape, and it is redelivered
with the subscription's backoff (HTTP 503/500). Raise :class:`~shared.errors.PermanentError`
and it goes to the dead-letter topic at once with your reason (then HTTP 204). Undecodable data
and unknown event types are dead-lettered the same way.

Delivery is at least once: the same event can arrive twice, even on two instances at once.
The runtime claims each event id in the store before running the handler, so a handled event
is not handled again; make effects idempotent too (e.g. ``store.increment(..., once=...)``),
because an instance can die after the effect and before the claim is completed.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shared._dispatch import Dispatcher, Handler, Outcome, Result
from shared._push import parse_request
from shared.dead_letter import DeadLetterSink
from shared.delivery import RawMessage
from shared.errors import MalformedMessageError
from shared.events import Event
from shared.observability import configure_logging
from shared.publisher import Publisher, project_id
from shared.stores import Store, open_store
from shared.topology import Topology

if TYPE_CHECKING:
    import flask

# Status codes: Pub/Sub push treats 102, 200, 201, 202 and 204 as ack, anything else as nack.
_STATUS = {"retry": 500, "busy": 503}


class ConsumerApp:
    """A consumer's runtime: its store, its publisher and its HTTP handler.

    Everything is created on first use, after the worker process is forked, and only if used:
    a consumer that never publishes never imports the Pub/Sub client.
    """

    def __init__(self, topology: Topology, name: str, *, store: Store | None = None) -> None:
        self.topology = topology
        self.config = topology.consumer(name)
        self.name = name
        self._store = store
        self._store_pid: int | None = os.getpid() if store is not None else None
        self._publisher: Publisher | None = None
        self._dead_letters: DeadLetterSink | None = None
        self._lock = threading.Lock()
        configure_logging()

    @property
    def store(self) -> Store:
        """The store named by ``PUBSUB_KIT_STORE`` (SQLite locally, Firestore on GCP)."""
        with self._lock:  # the first requests arrive together on several threads
            if self._store is None or self._store_pid != os.getpid():
                self._store = open_store()
                self._store_pid = os.getpid()
            return self._store

    @property
    def publisher(self) -> Publisher:
        """Publishes follow-up events with this event's correlation id and trace."""
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(self.topology)
            return self._publisher

    @property
    def dead_letters(self) -> DeadLetterSink:
        with self._lock:
            if self._dead_letters is None:
                self._dead_letters = DeadLetterSink(project_id(), self.name)
            return self._dead_letters

    def dispatcher(self, handler: Handler, accepts: Iterable[type[Event]] | None = None) -> Dispatcher:
        return Dispatcher(
            self.topology,
            self.name,
            handler,
            store=(lambda: self.store) if self.config.uses_store else None,
            dead_letters=_LazySink(self),
            accepts=accepts,
        )

    def handler(
        self, fn: Handler | None = None, *, accepts: Iterable[type[Event]] | None = None
    ) -> Any:
        """Decorate ``fn(event[, delivery])`` into a functions-framework HTTP function.

        Args:
            accepts: the event models ``fn`` supports; others are dead-lettered as unsupported.
                Default: every event type on the consumer's topics.
        """

        def wrap(fn: Handler) -> Callable[[flask.Request], tuple[str, int]]:
            dispatcher = self.dispatcher(fn, accepts)

            @functools.wraps(fn)
            def endpoint(request: flask.Request) -> tuple[str, int]:
                try:
                    raw = parse_request(dict(request.headers), request.get_data())
                except MalformedMessageError as exc:
                    return f"bad request: {exc}\n", 400
                return respond(dispatcher.process(raw))

            endpoint.dispatcher = dispatcher  # type: ignore[attr-defined]
            return endpoint

        return wrap if fn is None else wrap(fn)

    def process(self, raw: RawMessage, handler: Handler) -> Result:
        """Run ``handler`` on one raw message under the ack contract (for tests and workers)."""
        return self.dispatcher(handler).process(raw)


class _LazySink(DeadLetterSink):
    """Defers reading the project id until a message is actually dead-lettered."""

    def __init__(self, app: ConsumerApp) -> None:  # noqa: D107 - no super(): nothing to set yet
        self._app = app

    def send(self, raw: RawMessage, subscription: str, reason: str, timeout: float = 30.0) -> str:
        return self._app.dead_letters.send(raw, subscription, reason, timeout)


def respond(result: Result) -> tuple[str, int]:
    if result.outcome is Outcome.ACK:
        return "", 204
    return f"{result.status}: {result.reason or ''}\n", _STATUS.get(result.status, 500)


def consumer(topology: Topology, name: str, *, store: Store | None = None) -> ConsumerApp:
    """The runtime of consumer ``name`` of ``topology`` (see the module docstring)."""
    return ConsumerApp(topology, name, store=store)
