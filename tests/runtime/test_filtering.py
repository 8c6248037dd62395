"""The filter step: what the subscription's filter does not want is acked and goes no further."""

from __future__ import annotations

from shared.filters import compile_filter
from shared.runtime import Outcome
from shared.runtime.filtering import Filter
from tests.runtime._support import Rest, inflight, raw

ONLY_DISPATCHED = Filter(compile_filter('attributes.ce-type = "order.dispatched.v1"'))


def test_a_wanted_message_goes_on_unchanged_and_its_answer_comes_back():
    message = inflight(raw(attributes={"ce-type": "order.dispatched.v1"}))
    rest = Rest(Outcome.RETRY)
    assert ONLY_DISPATCHED(message, rest).outcome is Outcome.RETRY
    assert rest.seen == [message]


def test_an_unwanted_message_is_acked_as_filtered_without_running_anything():
    rest = Rest()
    result = ONLY_DISPATCHED(inflight(raw(attributes={"ce-type": "order.cancelled.v1"})), rest)
    assert (result.outcome, result.ack, result.reason) == (Outcome.FILTERED, True, None)
    assert not rest.called


def test_the_filter_reads_attributes_only_so_undecodable_data_can_still_be_filtered():
    rest = Rest()
    message = inflight(raw(b"not json at all", {"ce-type": "order.cancelled.v1"}))
    assert ONLY_DISPATCHED(message, rest).outcome is Outcome.FILTERED
