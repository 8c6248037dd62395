"""The message in flight: raw until the decode step, typed after it."""

from __future__ import annotations

import pytest

from tests.runtime._support import NOW, decoded, encoded, inflight, like


def test_a_step_placed_before_decoding_fails_loudly_instead_of_reading_nothing():
    message = inflight(encoded(like()))
    with pytest.raises(RuntimeError, match="must come after the decode step"):
        message.decoded  # noqa: B018 - the property is what fails
    with pytest.raises(RuntimeError, match="must come after the decode step"):
        message.event_key  # noqa: B018


def test_the_idempotency_key_is_the_event_source_and_id_scoped_by_consumer():
    # percent-encoded, so "/" separates consumer, source and id unambiguously
    assert decoded(like(), "audit_log", event_id="e7").event_key == "audit_log/%2Ftests/e7"


def test_the_delivery_tells_the_handler_how_its_event_arrived():
    delivery = decoded(like(), attempt=3, event_id="e7").delivery
    assert (delivery.event_id, delivery.attempt, delivery.message_id) == ("e7", 3, "m1")
    assert delivery.subscription == "post-liked--timeline_enrichment"
    assert delivery.publish_time == NOW
