"""The consumer runtime: one message through a pipeline of small steps, and its outcome.

:class:`Pipeline` composes the steps (see :mod:`shared.runtime.pipeline` for the order and the
ack contract); the runners around it (the HTTP endpoint of :mod:`shared.consumer`, the
:class:`~shared.worker.PullWorker`, the :class:`~shared.testing.HandlerHarness`) only turn a raw
message into :meth:`Pipeline.process` and its :class:`Outcome` into an answer.
"""

from shared.runtime.dead_lettering import DeadLetterSink, PubSubDeadLetterSink
from shared.runtime.handlers import Handler
from shared.runtime.message import Inflight
from shared.runtime.outcome import Outcome, Result
from shared.runtime.pipeline import Pipeline
from shared.runtime.step import Next, Step, compose

__all__ = [
    "DeadLetterSink",
    "Handler",
    "Inflight",
    "Next",
    "Outcome",
    "Pipeline",
    "PubSubDeadLetterSink",
    "Result",
    "Step",
    "compose",
]
