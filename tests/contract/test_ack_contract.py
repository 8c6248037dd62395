"""The ack contract (the table in :mod:`shared.runtime.pipeline`), case by case, on every runner.

Each case is written once and runs on the in-memory harness, the pull worker on the emulator and
the function over HTTP (the ``runner`` fixture). Each asserts three things: the answer (outcome,
ack or nack as the emulator shows it, or HTTP status), how many times the handler had run for the
event, and what reached the dead-letter topic with which reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from shared import wire
from shared.events import Event
from shared.runtime import Outcome
from shared.runtime.message import claim_key
from shared.stores.sqlite import SqliteStore
from tests.contract.conftest import Expected, Runner
from tests.contract.probe import (
    AUDIENCE,
    CONSUMER,
    MAX_EVENT_AGE,
    SUBSCRIPTION,
    Action,
    ProbeRequested,
    ProbeRequestedV2,
)

# The table in shared.runtime.pipeline; Pub/Sub push acks 102, 200, 201, 202 and 204 only.
HANDLED = Expected(Outcome.HANDLED, ack=True, http_status=204)
DUPLICATE = Expected(Outcome.DUPLICATE, ack=True, http_status=204)
FILTERED = Expected(Outcome.FILTERED, ack=True, http_status=204)
DEAD_LETTERED = Expected(Outcome.DEAD_LETTERED, ack=True, http_status=204)
BUSY = Expected(Outcome.BUSY, ack=False, http_status=503)
RETRY = Expected(Outcome.RETRY, ack=False, http_status=500)
DEAD_LETTER_FAILED = Expected(Outcome.DEAD_LETTER_FAILED, ack=False, http_status=500)


class Message(NamedTuple):
    """Message data and attributes, as they travel on the wire."""

    data: bytes
    attributes: dict[str, str]

    @property
    def event_id(self) -> str:
        return self.attributes[wire.ATTR_ID]


def probe(
    action: Action = "ok",
    *,
    model: type[ProbeRequested | ProbeRequestedV2] = ProbeRequested,
    time: datetime | None = None,
    audience: str = "probe",
) -> Message:
    """A probe event encoded as a publisher would, addressed to the probe consumer's filter."""
    event: Event = model(action=action)
    data, attributes = wire.encode(event, wire.new_envelope(event, source="/tests", time=time))
    return Message(data, {**attributes, AUDIENCE: audience})


def hand_made(data: bytes, event_type: str) -> Message:
    """A message from a producer that does not use the toolkit (for malformed input)."""
    attributes = {
        wire.ATTR_SPECVERSION: "1.0",
        wire.ATTR_ID: f"hand-made-{event_type}",
        wire.ATTR_TYPE: event_type,
        wire.ATTR_SOURCE: "/tests",
        AUDIENCE: "probe",
    }
    return Message(data, attributes)


# -- acked, handler run once ------------------------------------------------------------------


def test_a_handler_that_returns_acks_and_runs_once(runner: Runner) -> None:
    observed = runner.deliver(*probe("ok"))
    assert observed.answer == runner.answer_for(HANDLED)
    assert observed.handler_runs == 1
    assert observed.dead_letters == []


def test_a_duplicate_of_a_handled_event_acks_without_running_the_handler(runner: Runner) -> None:
    message = probe("ok")
    first = runner.deliver(*message)
    again = runner.deliver(*message)  # another Pub/Sub message, the same event (ce-id)
    assert first.answer == runner.answer_for(HANDLED)
    assert again.answer == runner.answer_for(DUPLICATE)
    assert again.handler_runs == 1
    assert again.dead_letters == []


def test_a_filtered_out_message_acks_without_running_the_handler(runner: Runner) -> None:
    observed = runner.deliver(*probe("ok", audience="elsewhere"))
    assert observed.answer == runner.answer_for(FILTERED)
    assert observed.handler_runs == 0
    assert observed.dead_letters == []


# -- nacked, redelivered ----------------------------------------------------------------------


def test_an_event_another_instance_is_handling_is_busy_and_nacked(
    runner: Runner, store: SqliteStore
) -> None:
    message = probe("ok")
    key = claim_key(CONSUMER, wire.decode_envelope(message.attributes))
    assert store.claim(key, lease=3600).value == "acquired"
    observed = runner.deliver(*message)
    assert observed.answer == runner.answer_for(BUSY)
    assert observed.handler_runs == 0
    assert observed.dead_letters == []


def test_a_retryable_error_nacks_for_redelivery(runner: Runner) -> None:
    observed = runner.deliver(*probe("retry"))
    assert observed.answer == runner.answer_for(RETRY)
    assert observed.handler_runs == 1
    assert observed.dead_letters == []


def test_an_unexpected_exception_nacks_for_redelivery(runner: Runner) -> None:
    observed = runner.deliver(*probe("crash"))
    assert observed.answer == runner.answer_for(RETRY)
    assert observed.handler_runs == 1
    assert observed.dead_letters == []


def test_when_dead_lettering_fails_the_message_is_nacked_never_acked(runner: Runner) -> None:
    runner.break_dead_lettering()
    observed = runner.deliver(*probe("permanent"))
    assert observed.answer == runner.answer_for(DEAD_LETTER_FAILED)
    assert observed.handler_runs == 1
    assert observed.dead_letters == []


# -- dead-lettered at once with the reason, then acked ----------------------------------------


def assert_dead_lettered_once(runner: Runner, message: Message, runs: int) -> str:
    """Deliver ``message``: dead-lettered and acked, intact; returns the dead letter's reason."""
    observed = runner.deliver(*message)
    assert observed.answer == runner.answer_for(DEAD_LETTERED)
    assert observed.handler_runs == runs
    [letter] = observed.dead_letters
    assert (letter.subscription, letter.event_id, letter.data) == (
        SUBSCRIPTION,
        message.event_id,
        message.data,
    )
    assert letter.reason is not None
    return letter.reason


def test_a_permanent_error_dead_letters_at_once_with_its_reason(runner: Runner) -> None:
    reason = assert_dead_lettered_once(runner, probe("permanent"), runs=1)
    assert reason == "PermanentError: probe asked to be dead-lettered"


def test_undecodable_data_is_dead_lettered_without_running_the_handler(runner: Runner) -> None:
    reason = assert_dead_lettered_once(runner, hand_made(b"{not json", "contract.probe.v1"), runs=0)
    assert reason == "contract.probe.v1: message data is not JSON"


def test_an_unknown_event_type_is_dead_lettered_without_running_the_handler(
    runner: Runner,
) -> None:
    reason = assert_dead_lettered_once(runner, hand_made(b"{}", "contract.unknown.v1"), runs=0)
    assert reason.startswith("unknown event type 'contract.unknown.v1'; registered types: ")


def test_an_event_type_the_handler_does_not_take_is_dead_lettered_as_unsupported(
    runner: Runner,
) -> None:
    reason = assert_dead_lettered_once(runner, probe("ok", model=ProbeRequestedV2), runs=0)
    assert reason == (
        f"unsupported event type 'contract.probe.v2'; {CONSUMER} accepts contract.probe.v1"
    )


def test_an_event_older_than_max_event_age_is_dead_lettered(runner: Runner) -> None:
    two_hours_ago = datetime.now(UTC) - timedelta(seconds=2 * MAX_EVENT_AGE)
    reason = assert_dead_lettered_once(runner, probe("ok", time=two_hours_ago), runs=0)
    assert reason.endswith(f"{CONSUMER} takes events up to 3600 s old (max_event_age)")
