"""Catch-up after an outage: drain a backlog through ``pubsub-kit dev``'s runtime.

Two sides, each a ``shared.tools.dev.LocalSystem`` serving one function, on its own topic:

- toolkit: ``bench/functions/bench_kit``, a ``shared.consumer(...).handler`` function (the same
  as the HTTP rows');
- raw: ``bench/functions/bench_bare``, a bare ``@functions_framework.cloud_event`` function fed
  by the same loop.

Two rows: every function taking one request at a time (``LocalSystem(concurrency=1)``, GCP's
default and so what most consumers run), and the concurrency both functions declare for the
HTTP rows (``bench/topologies.py``). Per round and side, delivery is stopped
(``LocalSystem.stop_delivery``: the runtime is down, the function is up and warm),
``args.backlog`` events are published and accepted, then the clock runs from
``start_delivery`` until the function reports every one of them by distinct message id
(``fn_counter``), so a redelivery cannot pass for a new message; a side that does not get there
within ``args.timeout`` fails the run. Sides run one at a time, in alternating order.

The ratio is what the toolkit's function runtime costs while a backlog drains; the events/s
themselves say how fast a developer's consumer catches up after a restart. With more requests
in flight the function process, not the loop, is what limits the drain, so the toolkit's own
work per message shows more in the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable

from harness import Results, Stopwatch, likes
from http_bench import FUNCTIONS_DIR, FunctionCount, function_path
from topologies import HTTP_BARE, HTTP_FUNCTION, HTTP_KIT

from shared import Publisher, Topology
from shared.events import Event
from shared.tools.dev import LocalSystem

ROW = "catch-up: LocalSystem drains {count:,} events -> toolkit fn vs bare fn, concurrency {n}"


class Side:
    """One function behind its own LocalSystem, and a publisher on its topic."""

    def __init__(
        self,
        name: str,
        topology: Topology,
        function: str,
        project: str,
        store_url: str,
        concurrency: int | None = None,
    ) -> None:
        self.name = name
        self.count = FunctionCount(f"catch-up {name} ({function})")
        self.publisher = Publisher(topology, project=project, source="/services/bench")
        self.system = LocalSystem(
            topology,
            project=project,
            store_url=store_url,
            port_base=0,
            functions=[function],
            functions_dir=FUNCTIONS_DIR,
            on_line=self.count.on_line,
            concurrency=concurrency,
        )

    def deliver(self, events: list[Event], timeout: float) -> None:
        """Publish ``events`` while delivering; return when all were handled."""
        target = self.count.count + len(events)
        self.publisher.publish_all(events)
        self.count.wait_for(target, timeout)

    def catch_up(self, events: list[Event], timeout: float) -> float:
        """Seconds to drain ``events`` published while delivery was stopped."""
        self.system.stop_delivery()
        target = self.count.count + len(events)
        self.publisher.publish_all(events)  # accepted: the backlog waits in the subscription
        with Stopwatch() as watch:
            self.system.start_delivery()
            self.count.wait_for(target, timeout)
        return watch.seconds


def run(args: argparse.Namespace, project: str, results: Results) -> None:
    """One row per concurrency: GCP's default (1) and the bench functions' declared one."""
    events: list[Event] = list(likes(max(args.backlog, args.warmup)))
    for concurrency, how in (
        (1, "LocalSystem(concurrency=1): one request at a time, GCP's default"),
        (HTTP_FUNCTION.concurrency, "the concurrency both functions declare"),
    ):
        row = ROW.format(count=args.backlog, n=concurrency)
        duplicates = _measure(args, project, results, row, events, concurrency)
        results.note(
            row,
            f"events/s from resuming delivery (LocalSystem.start_delivery) until every event "
            f"of a {args.backlog:,}-event backlog, published while delivery was stopped, was "
            f"handled (distinct message ids); raw = the same loop feeding a bare "
            f"functions-framework function; {how}; redeliveries seen: {duplicates}",
        )


def _measure(
    args: argparse.Namespace,
    project: str,
    results: Results,
    row: str,
    events: list[Event],
    concurrency: int,
) -> dict[str, int]:
    backlog: int = args.backlog
    timeout: float = args.timeout
    stops: list[Callable[[], None]] = []
    sides: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="pubsub-kit-bench-") as tmp, function_path():
        try:
            for name, topology, function in (
                ("toolkit", HTTP_KIT, "bench_kit"),
                ("raw", HTTP_BARE, "bench_bare"),
            ):
                side = Side(
                    name, topology, function, project, f"sqlite:///{tmp}/state.db", concurrency
                )
                stops.append(side.system.stop)
                side.system.start()
                sides.append(side)
            for side in sides:
                side.deliver(events[: args.warmup], timeout)
            for index in range(args.rounds):
                for side in sides if index % 2 == 0 else reversed(sides):
                    seconds = side.catch_up(events[:backlog], timeout)
                    results.record(row, side.name, backlog, seconds)
        finally:
            for stop in reversed(stops):
                with contextlib.suppress(Exception):  # best effort: the others must still stop
                    stop()
    return {side.name: side.count.duplicates for side in sides}
