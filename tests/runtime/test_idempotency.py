"""The claim step: each event runs once per consumer, across instances, and a failure frees it."""

from __future__ import annotations

import pytest

from shared.runtime import Inflight, Outcome, Result
from shared.runtime.idempotency import Claim
from shared.stores.base import ClaimState, Store
from shared.stores.sqlite import SqliteStore
from tests.runtime._support import Raising, Rest, decoded, like
from tests.stores._support import FakeClock

LEASE = 120.0  # seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Store:
    return SqliteStore(":memory:", clock=clock)


def claim_step(store: Store) -> Claim:
    return Claim(lambda: store, LEASE)


def test_a_handled_event_is_a_duplicate_when_it_comes_again(store):
    step = claim_step(store)
    first = Rest()
    assert step(decoded(like(), event_id="e1"), first).outcome is Outcome.HANDLED
    again = Rest()
    result = step(decoded(like(), event_id="e1", attempt=2), again)
    assert (result.outcome, result.ack) == (Outcome.DUPLICATE, True)
    assert first.called and not again.called


def test_the_same_event_id_for_another_consumer_is_not_a_duplicate(store):
    step = claim_step(store)
    step(decoded(like(), "timeline_enrichment", event_id="e1"), Rest())
    rest = Rest()
    assert step(decoded(like(), "audit_log", event_id="e1"), rest).outcome is Outcome.HANDLED
    assert rest.called


def test_an_event_another_instance_is_handling_is_busy_and_not_run(store):
    assert store.claim("timeline_enrichment/%2Ftests/e1", LEASE) is ClaimState.ACQUIRED
    rest = Rest()
    result = claim_step(store)(decoded(like(), event_id="e1"), rest)
    assert (result.outcome, result.ack) == (Outcome.BUSY, False)
    assert result.reason == "another instance is handling this event"
    assert not rest.called


def test_while_the_handler_runs_other_instances_are_kept_out_for_the_lease(store, clock):
    answers: list[ClaimState] = []

    def handler_taking_its_time(message: Inflight) -> Result:
        clock.advance(LEASE - 1)
        answers.append(store.claim(message.event_key, LEASE))
        clock.advance(2)
        answers.append(store.claim(message.event_key, LEASE))  # the lease ran out
        return Result(Outcome.HANDLED)

    claim_step(store)(decoded(like(), event_id="e1"), handler_taking_its_time)
    assert answers == [ClaimState.BUSY, ClaimState.ACQUIRED]


@pytest.mark.parametrize(
    "outcome",
    [Outcome.RETRY, Outcome.REJECTED, Outcome.DEAD_LETTER_FAILED, Outcome.BUSY],
)
def test_any_answer_but_handled_frees_the_claim_so_a_retry_runs_at_once(store, outcome):
    step = claim_step(store)
    assert step(decoded(like(), event_id="e1"), Rest(outcome)).outcome is outcome
    retry = Rest()
    assert step(decoded(like(), event_id="e1", attempt=2), retry).outcome is Outcome.HANDLED
    assert retry.called


def test_the_store_is_opened_by_the_first_message_not_before():
    opened: list[Store] = []

    def open_store() -> Store:
        opened.append(SqliteStore(":memory:"))
        return opened[-1]

    step = Claim(open_store, LEASE)
    assert opened == []
    step(decoded(like()), Rest())
    assert len(opened) == 1


def test_a_step_below_that_raises_frees_the_claim_for_the_retry(store):
    step = claim_step(store)
    with pytest.raises(RuntimeError):
        step(decoded(like(), event_id="e1"), Raising(RuntimeError("store hiccup")))
    assert store.claim("timeline_enrichment/%2Ftests/e1", LEASE) is ClaimState.ACQUIRED
