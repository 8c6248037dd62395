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

The annotation of ``event`` says which event types the handler takes (``PostLiked``, a union
``PostLiked | PostLikedV2``, or ``Event`` for all); one the consumer's topics do not carry fails
at import.

The ack contract (the table in :mod:`shared.runtime.pipeline`): return normally and the message
is acknowledged (HTTP 204). Raise :class:`~shared.errors.RetryableError`, or let any other
exception escape, and it is redelivered with the subscription's backoff (HTTP 500). Raise
:class:`~shared.errors.PermanentError` and it goes to the dead-letter topic at once with your
reason (then HTTP 204). Undecodable data and unknown event types are dead-lettered the same way.

Delivery is at least once: the same event can arrive twice, even on two instances at once.
The runtime claims each event id in the store before running the handler, so a handled event
is not handled again; make effects idempotent too (e.g. ``store.increment(..., once=...)``),
because an instance can die after the effect and before the claim is completed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, overload

from shared._clients import Lazy
from shared.delivery import RawMessage
from shared.errors import MalformedMessageError
from shared.events import Event
from shared.observability import configure_logging
from shared.push import parse_request
from shared.runtime import Handler, Pipeline, PubSubDeadLetterSink, Result
from shared.stores import Store, open_store
from shared.topology import Topology

if TYPE_CHECKING:
    import flask

    from shared.publisher import Publisher

HttpFunction = Callable[["flask.Request"], tuple[str, int]]


class ConsumerApp:
    """A consumer's runtime: its store, its publisher, its dead letters and its HTTP handler.

    Everything is created on first use, after the worker process is forked, and only if used:
    a consumer that never publishes never imports the Pub/Sub client. ``close()`` (or ``with``)
    releases what was created.
    """

    def __init__(self, topology: Topology, name: str, *, store: Store | None = None) -> None:
        self.topology = topology
        self.config = topology.consumer(name)
        self.name = name
        # A store passed in belongs to the caller, who closes it; one opened here is ours.
        self._store: Lazy[Store] = (
            Lazy(lambda: store) if store is not None else Lazy(open_store, _close_store)
        )
        self._publisher: Lazy[Publisher] = Lazy(lambda: _new_publisher(topology), _close_publisher)
        self.dead_letters = PubSubDeadLetterSink(name)
        configure_logging()

    @property
    def store(self) -> Store:
        """The store named by ``PUBSUB_KIT_STORE`` (SQLite locally, Firestore on GCP)."""
        return self._store.get()

    @property
    def publisher(self) -> Publisher:
        """Publishes follow-up events with this event's correlation id and trace."""
        return self._publisher.get()

    def pipeline(self, handler: Handler, accepts: Iterable[type[Event]] | None = None) -> Pipeline:
        """The message pipeline of ``handler`` with this app's store and dead letters."""
        return Pipeline(
            self.topology,
            self.name,
            handler,
            store=self._store.get if self.config.uses_store else None,
            dead_letters=self.dead_letters,
            accepts=accepts,
        )

    @overload
    def handler(
        self, fn: Handler, *, accepts: Iterable[type[Event]] | None = None
    ) -> HttpFunction: ...

    @overload
    def handler(
        self, fn: None = None, *, accepts: Iterable[type[Event]] | None = None
    ) -> Callable[[Handler], HttpFunction]: ...

    def handler(
        self, fn: Handler | None = None, *, accepts: Iterable[type[Event]] | None = None
    ) -> HttpFunction | Callable[[Handler], HttpFunction]:
        """Decorate ``fn(event[, delivery])`` into a functions-framework HTTP function.

        Args:
            accepts: the event models ``fn`` takes, for a handler without an annotation;
                others are dead-lettered as unsupported. Default: the annotation of ``event``,
                else every event type on the consumer's topics.

        Raises:
            TopologyError: the annotation names a type the consumer's topics do not carry.
        """

        def wrap(fn: Handler) -> HttpFunction:
            pipeline = self.pipeline(fn, accepts)

            @functools.wraps(fn)
            def endpoint(request: flask.Request) -> tuple[str, int]:
                try:
                    raw = parse_request(dict(request.headers), request.get_data())
                except MalformedMessageError as exc:
                    return f"bad request: {exc}\n", 400
                return respond(pipeline.process(raw))

            endpoint.pipeline = pipeline  # type: ignore[attr-defined]
            return endpoint

        return wrap if fn is None else wrap(fn)

    def process(self, raw: RawMessage, handler: Handler) -> Result:
        """Run ``handler`` on one raw message under the ack contract (for tests and workers)."""
        return self.pipeline(handler).process(raw)

    def close(self) -> None:
        """Flush and close the publisher, close the store and the dead-letter client."""
        self._publisher.close()
        self.dead_letters.close()
        self._store.close()

    def __enter__(self) -> ConsumerApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _new_publisher(topology: Topology) -> Publisher:
    # Imported on first publish: a consumer that never publishes does not load the module.
    from shared.publisher import Publisher

    return Publisher(topology)


def _close_publisher(publisher: Publisher) -> None:
    publisher.close()


def _close_store(store: Store) -> None:
    store.close()


def respond(result: Result) -> tuple[str, int]:
    """The HTTP answer for ``result``: 204 when acked, else the outcome's status and reason."""
    if result.ack:
        return "", result.outcome.http_status.value
    return f"{result.status}: {result.reason or ''}\n", result.outcome.http_status.value


def consumer(topology: Topology, name: str, *, store: Store | None = None) -> ConsumerApp:
    """The runtime of consumer ``name`` of ``topology`` (see the module docstring)."""
    return ConsumerApp(topology, name, store=store)
