"""Versions side by side: upcasters declared once, run by the pipeline for handlers of the newer.

On the emulator, through the functions, in tests/e2e/test_versions.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from shared import Delivery, Event, Outcome, Topic, Topology, TopologyError
from shared.system.events import PostLiked, PostLikedV2, post_liked_v1_to_v2
from shared.system.topology import TOPOLOGY
from shared.testing import HandlerHarness
from shared.upcasting import Upcaster

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)
V1 = PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=NOW)
V2 = PostLikedV2(post_id="p2", liker_id="u1", author_id="u2", liked_at=NOW, reaction="love")


class Seen:
    """A handler that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.published_as: list[str] = []

    def record(self, event: Event, delivery: Delivery) -> None:
        self.events.append(event)
        self.published_as.append(delivery.envelope.type)


def test_a_handler_written_for_v2_receives_v1_events_upcast():
    seen = Seen()

    def handler(event: PostLikedV2, delivery: Delivery) -> None:
        seen.record(event, delivery)

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", handler)
    assert harness.deliver(V1).outcome is Outcome.HANDLED
    assert harness.deliver(V2).outcome is Outcome.HANDLED
    assert seen.events == [post_liked_v1_to_v2(V1), V2]
    assert [type(e) for e in seen.events] == [PostLikedV2, PostLikedV2]
    assert seen.published_as == ["post.liked.v1", "post.liked.v2"]  # what was published


@pytest.mark.parametrize("annotation", ["union", "base"])
def test_a_handler_that_takes_both_versions_receives_each_as_published(annotation):
    seen = Seen()

    def both(event: PostLiked | PostLikedV2, delivery: Delivery) -> None:
        seen.record(event, delivery)

    def any_event(event: Event, delivery: Delivery) -> None:
        seen.record(event, delivery)

    handler = both if annotation == "union" else any_event
    consumer = "timeline_enrichment" if annotation == "union" else "audit_log"
    harness = HandlerHarness(TOPOLOGY, consumer, handler)
    harness.deliver(V1)
    harness.deliver(V2)
    assert seen.events == [V1, V2]


def test_a_v1_event_is_counted_once_whichever_version_it_arrives_as():
    def handler(event: PostLikedV2) -> None:
        pass

    harness = HandlerHarness(TOPOLOGY, "timeline_enrichment", handler)
    assert harness.deliver(V1, event_id="same").outcome is Outcome.HANDLED
    assert harness.deliver(V1, event_id="same").outcome is Outcome.DUPLICATE


class Liked(Event):
    event_type: ClassVar[str] = "thing.liked.v1"
    thing: str


class LikedV2(Event):
    event_type: ClassVar[str] = "thing.liked.v2"
    thing: str
    weight: int


class LikedV3(Event):
    event_type: ClassVar[str] = "thing.liked.v3"
    thing_id: str
    weight: int


def to_v2(event: Liked) -> LikedV2:
    return LikedV2(thing=event.thing, weight=1)


def to_v3(event: LikedV2) -> LikedV3:
    return LikedV3(thing_id=event.thing, weight=event.weight)


def things(*upcasters: Upcaster) -> Topology:
    return Topology(
        topics=[Topic("things", events=[Liked, LikedV2, LikedV3])],
        consumers=[],
        upcasters=upcasters,
    )


def harness_of(topology: Topology, handler: Any) -> HandlerHarness:
    from shared import Consumer

    with_consumer = Topology(
        topics=list(topology.topics.values()),
        consumers=[Consumer("ranking", topics=["things"])],
        upcasters=list(topology.upcasters.values()),
    )
    return HandlerHarness(with_consumer, "ranking", handler)


def test_versions_are_upcast_through_the_chain_as_far_as_the_handler_needs():
    got: list[Event] = []

    def handler(event: LikedV3) -> None:
        got.append(event)

    topology = things(Upcaster(Liked, LikedV2, to_v2), Upcaster(LikedV2, LikedV3, to_v3))
    harness = harness_of(topology, handler)
    assert harness.deliver(Liked(thing="t1")).outcome is Outcome.HANDLED
    assert harness.deliver(LikedV2(thing="t2", weight=5)).outcome is Outcome.HANDLED
    assert got == [LikedV3(thing_id="t1", weight=1), LikedV3(thing_id="t2", weight=5)]


def test_without_an_upcaster_an_old_version_is_dead_lettered_as_unsupported():
    harness = harness_of(things(), lambda event: None)
    handler_of_v2 = harness_of(things(), _takes_v2)
    result = handler_of_v2.deliver(Liked(thing="t1"))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert (
        result.reason == "unsupported event type 'thing.liked.v1'; ranking accepts thing.liked.v2"
    )
    assert harness.deliver(Liked(thing="t1")).outcome is Outcome.HANDLED  # takes every version


def _takes_v2(event: LikedV2) -> None:
    pass


SECRET = "canary-91b2@example.com"


def test_an_upcaster_that_fails_dead_letters_the_event_naming_only_the_failure():
    def broken(event: Liked) -> LikedV2:
        raise ValueError(f"cannot weigh {event.thing}")

    harness = harness_of(things(Upcaster(Liked, LikedV2, broken)), _takes_v2)
    result = harness.deliver(Liked(thing=SECRET))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.reason == "upcasting thing.liked.v1 to thing.liked.v2 failed: ValueError"
    assert harness.dead_letters[0].reason == result.reason


def test_an_upcaster_that_returns_another_type_dead_letters_the_event():
    harness = harness_of(things(Upcaster(Liked, LikedV2, lambda e: e)), _takes_v2)
    result = harness.deliver(Liked(thing="t1"))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.reason == "the upcaster from thing.liked.v1 returned Liked, not LikedV2"


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (LikedV2, Liked, "to a later one of the same event"),
        (Liked, PostLikedV2, "to a later one of the same event"),
    ],
)
def test_an_upcaster_goes_forward_within_one_event(source, target, message):
    with pytest.raises(TopologyError, match=message):
        Upcaster(source, target, lambda e: e)


def test_the_topology_refuses_upcasters_it_cannot_use():
    with pytest.raises(TopologyError, match=r"two upcasters from thing\.liked\.v1"):
        things(Upcaster(Liked, LikedV2, to_v2), Upcaster(Liked, LikedV3, lambda e: e))
    with pytest.raises(TopologyError, match=r"names thing\.liked\.v2, which no topic declares"):
        Topology(
            topics=[Topic("things", events=[Liked])], upcasters=[Upcaster(Liked, LikedV2, to_v2)]
        )
