"""The pipeline: which steps a consumer gets, in which order, and the ack contract end to end."""

from __future__ import annotations

import dataclasses
import logging
import types
from datetime import UTC, datetime, timedelta

import pytest

from shared.delivery import Delivery
from shared.errors import TopologyError
from shared.events import Event
from shared.runtime import Handler, Outcome, Pipeline
from shared.runtime import observe as observe_module
from shared.runtime.admission import AcceptTypes, MaxAge
from shared.runtime.dead_lettering import DeadLetter
from shared.runtime.decoding import Decode
from shared.runtime.filtering import Filter
from shared.runtime.idempotency import Claim
from shared.runtime.message import claim_key
from shared.runtime.observe import Observe
from shared.runtime.telemetry import HandlerTelemetry, MessageTelemetry
from shared.runtime.upcasting import Upcast
from shared.stores.base import ClaimState
from shared.stores.sqlite import SqliteStore
from shared.system.events import PostLiked, PostLikedV2, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.testing import RecordingSink
from shared.topology import Consumer, FunctionSettings, Topic, Topology
from tests.runtime._support import TWO_TOPICS, FailingSink, encoded, like, order, raw
from tests.stores._support import FakeClock


def ignore(event: Event) -> None:
    """A handler that takes every type and does nothing."""


def pipeline(
    consumer: str,
    handler: Handler = ignore,
    *,
    topology: Topology = TOPOLOGY,
    store: bool = True,
    accepts: list[type[Event]] | None = None,
) -> tuple[Pipeline, RecordingSink]:
    sink = RecordingSink()
    memory = SqliteStore(":memory:")
    built = Pipeline(
        topology,
        consumer,
        handler,
        store=(lambda: memory) if store else None,
        dead_letters=sink,
        accepts=accepts,
    )
    return built, sink


@pytest.mark.parametrize(
    ("consumer", "store", "steps"),
    [
        (
            "order_notifications",
            True,
            [
                MessageTelemetry,
                Observe,
                DeadLetter,
                Filter,
                Decode,
                AcceptTypes,
                Claim,
                HandlerTelemetry,
            ],
        ),
        (
            "timeline_enrichment",
            True,
            [
                MessageTelemetry,
                Observe,
                DeadLetter,
                Decode,
                AcceptTypes,
                MaxAge,
                Claim,
                HandlerTelemetry,
            ],
        ),
        (
            "audit_log",
            False,
            [MessageTelemetry, Observe, DeadLetter, Decode, AcceptTypes, HandlerTelemetry],
        ),
    ],
)
def test_a_consumer_gets_the_steps_its_declaration_asks_for_outermost_first(consumer, store, steps):
    built, _ = pipeline(consumer, store=store)
    assert [type(step) for step in built.steps] == steps


def test_a_claim_outlives_the_handlers_time_budget():
    slow = Topology(
        [Topic("post-liked", events=[PostLiked])],
        [Consumer("slow", topics=["post-liked"], function=FunctionSettings(timeout=300))],
    )
    assert pipeline("slow", topology=slow)[0].lease == 300.0
    assert pipeline("timeline_enrichment")[0].lease == 60.0  # the ack deadline


def test_a_claim_lasts_as_long_as_the_runner_says_it_may_hold_the_message():
    """The pull worker holds a message up to max_lease_duration, well past the ack deadline."""
    clock = FakeClock()
    store = SqliteStore(":memory:", clock=clock)
    answers: list[ClaimState] = []

    def handle(event: Event, delivery: Delivery) -> None:
        clock.advance(599)  # the ack deadline (60 s) is long past, the runner's lease is not
        answers.append(store.claim(claim_key("timeline_enrichment", delivery.envelope), 600))

    built = Pipeline(
        TOPOLOGY,
        "timeline_enrichment",
        handle,
        store=lambda: store,
        dead_letters=RecordingSink(),
        lease=600.0,
    )
    assert built.process(encoded(like(), time=datetime.now(UTC))).outcome is Outcome.HANDLED
    assert answers == [ClaimState.BUSY]  # no other instance took the event over


def test_handling_that_outlasts_the_consumers_ack_deadline_is_warned_about(caplog, monkeypatch):
    readings = iter([100.0, 161.0])  # timeline_enrichment's ack deadline is 60 s
    monkeypatch.setattr(
        observe_module, "time", types.SimpleNamespace(monotonic=lambda: next(readings))
    )
    built, _ = pipeline("timeline_enrichment")
    with caplog.at_level(logging.WARNING, logger="pubsub_kit.consumer"):
        assert built.process(encoded(like(), time=datetime.now(UTC))).outcome is Outcome.HANDLED
    assert [r.getMessage() for r in caplog.records] == [
        "handling took 61.0 s, longer than the ack deadline (60 s): "
        "Pub/Sub may have delivered it again meanwhile"
    ]


def test_a_handled_event_is_acked_and_its_redelivery_is_a_duplicate():
    calls: list[str] = []
    built, _ = pipeline("timeline_enrichment", lambda event: calls.append(event.post_id))
    first = encoded(like("p3"), event_id="e3", time=datetime.now(UTC))
    assert built.process(first).outcome is Outcome.HANDLED
    assert built.process(dataclasses.replace(first, attempt=2)).outcome is Outcome.DUPLICATE
    assert calls == ["p3"]


def test_a_pipeline_can_be_rebuilt_around_its_handler_with_other_parts():
    """As a runner does to swap the dead-letter sink (tests/contract does it)."""
    calls: list[str] = []
    built, _ = pipeline("timeline_enrichment", lambda event: calls.append(event.post_id))
    rebuilt = Pipeline(
        TOPOLOGY, built.consumer.name, built.handler, store=None, dead_letters=FailingSink()
    )
    assert rebuilt.process(encoded(like("p4"), time=datetime.now(UTC))).outcome is Outcome.HANDLED
    assert calls == ["p4"]


def test_the_filter_runs_before_decoding():
    built, sink = pipeline("order_notifications")
    result = built.process(raw(b"{nope", {"ce-type": "order.cancelled.v1"}))
    assert result.outcome is Outcome.FILTERED and sink.sent == []


def test_an_unsupported_type_from_an_eventarc_trigger_is_dead_lettered_where_it_came_from():
    built, sink = pipeline("activity", topology=TWO_TOPICS, accepts=[PostLiked])
    result = built.process(encoded(order(), subscription=None))
    assert (result.outcome, result.ack) == (Outcome.DEAD_LETTERED, True)
    [letter] = sink.sent
    assert letter.subscription == "order-dispatched--activity"
    assert letter.reason == (
        "unsupported event type 'order.dispatched.v1'; activity accepts post.liked.v1"
    )


def test_an_event_older_than_the_consumer_allows_is_dead_lettered_naming_the_limit():
    built, sink = pipeline("timeline_enrichment")
    result = built.process(encoded(like(), time=datetime.now(UTC) - timedelta(days=8)))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert sink.sent[0].reason.endswith(
        "s old; timeline_enrichment takes events up to 604800 s old (max_event_age)"
    )


def test_a_handler_for_a_type_the_consumer_never_receives_fails_when_declared():
    def handle(event: UserUpdated) -> None: ...

    with pytest.raises(TopologyError, match="the topics of consumer 'timeline_enrichment' carry"):
        pipeline("timeline_enrichment", handle)


def test_a_handler_of_the_wrong_shape_fails_when_declared():
    def handle() -> None: ...

    with pytest.raises(TypeError, match="must take \\(event\\) or \\(event, delivery\\)"):
        pipeline("timeline_enrichment", handle)


def test_a_handler_of_a_newer_version_gets_the_upcast_step_before_the_type_check():
    def handler(event: PostLikedV2) -> None:
        pass

    built, _ = pipeline("timeline_enrichment", handler)
    kinds = [type(step) for step in built.steps]
    assert kinds.index(Upcast) == kinds.index(AcceptTypes) - 1
    assert kinds.index(Decode) < kinds.index(Upcast)
