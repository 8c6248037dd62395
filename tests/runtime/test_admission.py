"""Admission: event types the handler does not take, and events too old, are rejected."""

from __future__ import annotations

from datetime import timedelta

from shared.runtime import Outcome
from shared.runtime.admission import AcceptTypes, MaxAge
from tests.runtime._support import NOW, Rest, decoded, like, order

AUDIT = AcceptTypes("audit_log", ["post.liked.v1", "notification.requested.v1"])


def test_an_accepted_type_goes_on():
    rest = Rest()
    message = decoded(like(), "audit_log")
    assert AUDIT(message, rest).outcome is Outcome.HANDLED
    assert rest.seen == [message]


def test_another_type_is_rejected_naming_the_consumer_and_what_it_accepts():
    rest = Rest()
    result = AUDIT(decoded(order(), "audit_log"), rest)
    assert result.outcome is Outcome.REJECTED
    assert result.reason == (
        "unsupported event type 'order.dispatched.v1'; audit_log accepts "
        "notification.requested.v1, post.liked.v1"
    )
    assert not rest.called


def max_age(seconds: float) -> MaxAge:
    return MaxAge("timeline_enrichment", seconds, clock=lambda: NOW)


def test_an_event_exactly_as_old_as_allowed_goes_on():
    rest = Rest()
    message = decoded(like(), time=NOW - timedelta(hours=1))
    assert max_age(3600)(message, rest).outcome is Outcome.HANDLED
    assert rest.seen == [message]


def test_an_older_event_is_rejected_with_its_age_and_the_limit():
    rest = Rest()
    result = max_age(3600)(decoded(like(), time=NOW - timedelta(seconds=3601)), rest)
    assert result.outcome is Outcome.REJECTED
    assert result.reason == (
        "event is 3601 s old; timeline_enrichment takes events up to 3600 s old (max_event_age)"
    )
    assert not rest.called


def test_an_event_stamped_in_the_future_is_not_too_old():
    rest = Rest()
    assert max_age(60)(decoded(like(), time=NOW + timedelta(minutes=5)), rest).outcome is (
        Outcome.HANDLED
    )
