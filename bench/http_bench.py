"""Local HTTP delivery: messages from the emulator to a functions-framework process.

Three paths, all running at once (idle while another is measured), each on its own topic:

- toolkit: ``shared.tools.dev.LocalSystem`` (pull loop + GCP-shaped push body over HTTP) serving
  ``bench/functions/bench_kit``, a ``shared.consumer(...).handler`` function with a trivial
  handler on a consumer with ``uses_store=False``. The function logs one JSON line per message,
  as every toolkit function does at the default INFO level.
- bare, same loop: the same ``LocalSystem`` feeding ``bench/functions/bench_bare``, a bare
  ``@functions_framework.cloud_event`` function. The ratio against it is the cost of the
  toolkit's function runtime alone.
- bare, emulator push: the emulator's own push subscription posting to the same bare function
  (the DESIGN baseline). The ratio of the toolkit path against it is what a developer gets
  from ``pubsub-kit dev`` compared with wiring the emulator's push by hand; the ratio of the
  bare path against it compares the two deliveries alone, to the same function.

Both functions declare the same concurrency (``HTTP_FUNCTION`` in ``bench/topologies.py``):
``LocalSystem`` posts that many requests at once to each and starts it with as many
``THREADS``; the function behind the emulator's push gets the same ``THREADS``, so all three
run the same server settings.

Each function prints how many distinct message ids it handled (``fn_counter``). A measurement
publishes N events (``Publisher.publish_all``, the same for every path) and runs from the first
publish until the function reports N more distinct ids; the count is read every 20 ms.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import BenchError, Results, Stopwatch, free_port, likes
from topologies import HTTP_BARE, HTTP_FUNCTION, HTTP_KIT, HTTP_PUSH

from shared import Publisher
from shared.tools.dev import FunctionProcess, LocalSystem
from shared.tools.provision import provision

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FUNCTIONS_DIR = BENCH_DIR / "functions"

ROW_SAME_LOOP = "http: LocalSystem -> toolkit fn vs same loop -> bare fn"
ROW_PUSH = "http: LocalSystem -> toolkit fn vs emulator push -> bare fn"
ROW_DELIVERY = "http: LocalSystem -> bare fn vs emulator push -> bare fn"

_CONCURRENCY = (
    f"both functions declare concurrency={HTTP_FUNCTION.concurrency} (bench/topologies.py): "
    f"{HTTP_FUNCTION.concurrency} requests in flight and THREADS={HTTP_FUNCTION.concurrency}"
)
NOTES = {
    ROW_SAME_LOOP: "raw = the same LocalSystem pull loop posting to a bare functions-framework "
    f"cloud_event function (cost of the toolkit's function runtime); {_CONCURRENCY}",
    ROW_PUSH: "raw = the emulator's push subscription posting to the bare function "
    f"(the DESIGN baseline), run with the same THREADS={HTTP_FUNCTION.concurrency}; "
    f"{_CONCURRENCY}",
    ROW_DELIVERY: "the delivery alone: toolkit = LocalSystem posting to the bare function, raw = "
    "the emulator's push posting to the same bare function (same code, same THREADS="
    f"{HTTP_FUNCTION.concurrency}); {_CONCURRENCY}",
}

_COUNT_LINE = re.compile(r"^bench-count (\d+) (\d+)$")


class FunctionCount:
    """Follows the ``bench-count <ids> <hits>`` lines of one function process.

    ``count`` is the distinct message ids the function handled; ``hits`` counts redeliveries too.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.hits = 0
        self._changed = threading.Condition()
        self._recent: collections.deque[str] = collections.deque(maxlen=15)

    @property
    def duplicates(self) -> int:
        return self.hits - self.count

    def on_line(self, function: str, line: str) -> None:
        if line.startswith("{"):  # the toolkit's JSON log lines: one per message
            return
        match = _COUNT_LINE.match(line)
        if match:
            with self._changed:
                self.count = max(self.count, int(match.group(1)))
                self.hits = max(self.hits, int(match.group(2)))
                self._changed.notify_all()
        else:  # keep the function's other output for errors
            self._recent.append(line)

    def wait_for(self, total: int, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.count >= total, timeout):
                recent = "\n    ".join(self._recent) or "(nothing)"
                raise BenchError(
                    f"{self.name}: handled {self.count} of {total} messages after {timeout:g} s; "
                    f"its last output:\n    {recent}"
                )


@contextlib.contextmanager
def function_path() -> Iterator[None]:
    """Let function processes import ``topologies`` and ``fn_counter`` (they inherit os.environ)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), str(BENCH_DIR), str(FUNCTIONS_DIR), before])
    )
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


class HttpPath:
    """One HTTP path: a publisher feeding a topic and the count of the function behind it."""

    def __init__(self, name: str, publisher: Publisher, count: FunctionCount, n: int) -> None:
        self.name = name
        self.publisher = publisher
        self.count = count
        self.events = likes(n)

    def deliver(self, n: int, timeout: float) -> None:
        """Publish ``n`` events and return when the function has handled ``n`` more."""
        target = self.count.count + n
        self.publisher.publish_all(self.events[:n])
        self.count.wait_for(target, timeout)


def run(
    project: str, messages: int, warmup: int, rounds: int, timeout: float, results: Results
) -> None:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    push_subscription = f"projects/{project}/subscriptions/bench-http-push--bare"
    stops: list[Callable[[], None]] = []
    n_events = max(messages, warmup)
    paths: list[HttpPath] = []
    with tempfile.TemporaryDirectory(prefix="pubsub-kit-bench-") as tmp, function_path():
        try:
            for name, topology, function_name in (
                ("kit", HTTP_KIT, "bench_kit"),
                ("bare", HTTP_BARE, "bench_bare"),
            ):
                count = FunctionCount(f"LocalSystem -> {function_name}")
                system = LocalSystem(
                    topology,
                    project=project,
                    store_url=f"sqlite:///{tmp}/state.db",
                    port_base=0,
                    functions=[function_name],
                    functions_dir=FUNCTIONS_DIR,
                    on_line=count.on_line,
                )
                stops.append(system.stop)
                system.start()
                publisher = Publisher(topology, project=project, source="/services/bench")
                paths.append(HttpPath(name, publisher, count, n_events))

            provision(HTTP_PUSH, project=project)
            count = FunctionCount("emulator push -> bench_bare")
            function = FunctionProcess("bench_bare", free_port(), {}, FUNCTIONS_DIR)
            # The same server settings as LocalSystem gives the bare function it feeds.
            threads = str(HTTP_FUNCTION.concurrency)
            function.env = {**os.environ, "PYTHONUNBUFFERED": "1", "THREADS": threads}
            stops.append(function.stop)
            function.start(count.on_line)
            function.wait_ready()
            subscriber.create_subscription(
                request={
                    "name": push_subscription,
                    "topic": f"projects/{project}/topics/bench-http-push",
                    "push_config": {
                        "push_endpoint": f"{function.url}projects/{project}/topics/bench-http-push"
                    },
                    "ack_deadline_seconds": 60,
                }
            )
            stops.append(
                lambda: subscriber.delete_subscription(request={"subscription": push_subscription})
            )
            publisher = Publisher(HTTP_PUSH, project=project, source="/services/bench")
            paths.append(HttpPath("push", publisher, count, n_events))

            for path in paths:
                path.deliver(warmup, timeout)
            for index in range(rounds):
                seconds = {}
                for path in paths if index % 2 == 0 else reversed(paths):
                    with Stopwatch() as watch:
                        path.deliver(messages, timeout)
                    seconds[path.name] = watch.seconds
                for row, kit, raw in (
                    (ROW_SAME_LOOP, "kit", "bare"),
                    (ROW_PUSH, "kit", "push"),
                    (ROW_DELIVERY, "bare", "push"),
                ):
                    results.record(row, "toolkit", messages, seconds[kit])
                    results.record(row, "raw", messages, seconds[raw])
        finally:
            for stop in reversed(stops):
                with contextlib.suppress(Exception):  # best effort: the others must still stop
                    stop()
            subscriber.close()
    duplicates = {path.name: path.count.duplicates for path in paths}
    for row, text in NOTES.items():
        results.note(row, f"{text}; redeliveries seen (kit, bare, push): {duplicates}")
