"""The one contract between the pipeline's steps.

A step receives the message and the rest of the pipeline (``call_next``). It may answer at once
(``Result(Outcome.FILTERED)``), pass the message on, possibly enriched
(``call_next(dataclasses.replace(message, event=...))``), or look at what the rest answered and
change it (the idempotency step completes or releases its claim by it). A new concern, such as a
span or a metric, is a new step, not an edit to the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from shared.runtime.message import Inflight
from shared.runtime.outcome import Result

Next = Callable[[Inflight], Result]
"""The rest of the pipeline after a step."""


class Step(Protocol):
    def __call__(self, message: Inflight, call_next: Next) -> Result: ...


def compose(steps: Sequence[Step], last: Next) -> Next:
    """``steps[0]`` around ``steps[1]`` around ... around ``last``."""
    run = last
    for step in reversed(steps):
        run = _bind(step, run)
    return run


def _bind(step: Step, call_next: Next) -> Next:
    def run(message: Inflight) -> Result:
        return step(message, call_next)

    return run
