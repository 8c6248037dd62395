"""The last step: run the handler, and turn how it ended into the ack contract."""

from __future__ import annotations

import logging

import pytest

from shared import Delivery, PermanentError, RetryableError
from shared.runtime import Outcome
from shared.runtime.handling import Run
from shared.system.events import PostLiked
from tests.runtime._support import CANARY, decoded, like


def test_a_handler_that_returns_is_handled_and_got_the_event():
    received: list[PostLiked] = []
    result = Run(received.append)(decoded(like("p7")))
    assert (result.outcome, result.ack, result.reason) == (Outcome.HANDLED, True, None)
    assert [e.post_id for e in received] == ["p7"]


def test_a_handler_taking_the_delivery_gets_the_event_and_how_it_arrived():
    received: list[tuple[PostLiked, Delivery]] = []

    def handle(event: PostLiked, delivery: Delivery) -> None:
        received.append((event, delivery))

    assert Run(handle)(decoded(like("p7"), event_id="e7", attempt=4)).outcome is Outcome.HANDLED
    [(event, delivery)] = received
    assert event.post_id == "p7"
    assert (delivery.event_id, delivery.attempt) == ("e7", 4)


def test_what_the_handler_returns_does_not_matter():
    assert Run(lambda event: False)(decoded(like())).outcome is Outcome.HANDLED


class PostGone(PermanentError):
    """A handler's own kind of permanent failure."""


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermanentError("post was deleted"), "PermanentError: post was deleted"),
        (PostGone("post was deleted"), "PostGone: post was deleted"),
    ],
)
def test_a_permanent_error_is_rejected_with_its_kind_and_reason(error, reason):
    def handle(event: PostLiked) -> None:
        raise error

    result = Run(handle)(decoded(like()))
    assert (result.outcome, result.ack, result.reason) == (Outcome.REJECTED, False, reason)


def test_a_retryable_error_is_retried_with_its_reason():
    def handle(event: PostLiked) -> None:
        raise RetryableError("search index down")

    result = Run(handle)(decoded(like()))
    assert (result.outcome, result.ack, result.reason) == (
        Outcome.RETRY,
        False,
        "search index down",
    )


def test_an_unexpected_exception_is_retried_and_logged_by_type_and_place_only(caplog):
    def handle(event: PostLiked) -> None:
        raise ValueError(f"cannot mail {CANARY}")

    with caplog.at_level(logging.INFO, logger="pubsub_kit.consumer"):
        result = Run(handle)(decoded(like()))
    assert (result.outcome, result.ack, result.reason) == (Outcome.RETRY, False, "ValueError")
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "handler raised")
    error = record.fields["error"]
    assert error["type"] == "ValueError"
    assert error["raised_at"].endswith("in handle")
    assert "message" not in error
    assert record.exc_info is None
    assert CANARY not in repr(record.__dict__)
