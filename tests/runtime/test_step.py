"""The contract between steps: ``compose`` nests them, outermost first, around the last one."""

from __future__ import annotations

import dataclasses

from shared.runtime import Inflight, Next, Outcome, Result, compose
from tests.runtime._support import Rest, encoded, inflight, like


class Tag:
    """A step that records that it ran, then passes the message on with its name appended."""

    def __init__(self, name: str, trail: list[str]) -> None:
        self.name = name
        self.trail = trail

    def __call__(self, message: Inflight, call_next: Next) -> Result:
        self.trail.append(self.name)
        return call_next(dataclasses.replace(message, consumer=f"{message.consumer}>{self.name}"))


def test_steps_run_outermost_first_and_each_passes_on_what_it_enriched():
    trail: list[str] = []
    last = Rest()
    message = encoded(like())
    assert compose([Tag("a", trail), Tag("b", trail)], last)(inflight(message)) == Result(
        Outcome.HANDLED
    )
    assert trail == ["a", "b"]
    assert last.seen[0].consumer == "timeline_enrichment>a>b"
    assert last.seen[0].raw is message


def test_a_step_that_answers_stops_the_rest():
    def stop(message: Inflight, call_next: Next) -> Result:
        return Result(Outcome.FILTERED)

    trail: list[str] = []
    last = Rest()
    result = compose([stop, Tag("later", trail)], last)(inflight(encoded(like())))
    assert result.outcome is Outcome.FILTERED
    assert trail == [] and not last.called


def test_no_steps_is_the_last_one_alone():
    last = Rest(Outcome.RETRY)
    assert compose([], last)(inflight(encoded(like()))).outcome is Outcome.RETRY
