"""The outcome of one message: what the pull worker, the push endpoint and the log line say."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest

from shared.runtime import Outcome, Result

# Pub/Sub push counts these answers as an ack and redelivers on anything else.
PUSH_ACK_STATUSES = {102, 200, 201, 202, 204}


@pytest.mark.parametrize(
    ("outcome", "status", "ack", "http_status", "severity"),
    [
        (Outcome.HANDLED, "handled", True, HTTPStatus.NO_CONTENT, logging.INFO),
        (Outcome.DUPLICATE, "duplicate", True, HTTPStatus.NO_CONTENT, logging.INFO),
        (Outcome.FILTERED, "filtered", True, HTTPStatus.NO_CONTENT, logging.INFO),
        (Outcome.DEAD_LETTERED, "dead_lettered", True, HTTPStatus.NO_CONTENT, logging.ERROR),
        (Outcome.BUSY, "busy", False, HTTPStatus.SERVICE_UNAVAILABLE, logging.INFO),
        (Outcome.RETRY, "retry", False, HTTPStatus.INTERNAL_SERVER_ERROR, logging.WARNING),
        (Outcome.REJECTED, "rejected", False, HTTPStatus.INTERNAL_SERVER_ERROR, logging.ERROR),
        (
            Outcome.DEAD_LETTER_FAILED,
            "dead_letter_failed",
            False,
            HTTPStatus.INTERNAL_SERVER_ERROR,
            logging.ERROR,
        ),
    ],
)
def test_each_outcome_carries_its_ack_http_answer_and_log_severity(
    outcome, status, ack, http_status, severity
):
    result = Result(outcome, "why")
    assert (result.status, result.ack, result.reason) == (status, ack, "why")
    assert (outcome.http_status, outcome.severity) == (http_status, severity)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_the_push_answer_agrees_with_the_pull_ack(outcome):
    assert (outcome.http_status in PUSH_ACK_STATUSES) is outcome.ack


def test_plain_outcomes_need_no_reason():
    assert Result(Outcome.HANDLED).reason is None
