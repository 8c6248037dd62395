"""What every benchmark needs: the emulator, events, counting, bounded waits, clean-up."""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.system.events import PostLiked
from shared.tools import emulator as emulators
from shared.tools import ports

# Every topic the bench declares has this in its name, and so has every subscription on one.
BENCH_MARK = "bench-"


class BenchError(Exception):
    """A benchmark could not complete (timeout, lost or failed messages); the message says which."""


def emulator(private: bool = False) -> contextlib.AbstractContextManager[str]:
    """The Pub/Sub emulator's host:port (see :func:`shared.tools.emulator.emulator`)."""
    return emulators.emulator("pubsub", private=private)


def delete_bench_resources(project: str) -> int:
    """Delete the bench's subscriptions and topics (names with ``bench-``) in ``project``.

    Returns how many subscriptions were deleted.

    Cancelled streaming pulls stay registered in the emulator (it never processes the client's
    RST_STREAM). While their subscription still holds messages, the emulator's pusher thread
    for each spins and can take a whole core, for every user of a shared emulator, until the
    subscription is deleted. So a run leaves nothing behind, even after a failed measurement.
    """
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()
    deleted = 0
    try:
        for sub in subscriber.list_subscriptions(request={"project": f"projects/{project}"}):
            if BENCH_MARK not in sub.name.rsplit("/", 1)[-1]:
                continue
            with contextlib.suppress(exceptions.NotFound):
                subscriber.delete_subscription(request={"subscription": sub.name}, timeout=30)
                deleted += 1
        for topic in publisher.list_topics(request={"project": f"projects/{project}"}):
            if BENCH_MARK not in topic.name.rsplit("/", 1)[-1]:
                continue
            with contextlib.suppress(exceptions.NotFound):
                publisher.delete_topic(request={"topic": topic.name}, timeout=30)
    finally:
        subscriber.close()
    return deleted


def free_port() -> int:
    return ports.free_ports()[0]


def likes(count: int) -> list[PostLiked]:
    """``count`` distinct, valid events of a realistic size (about 130 bytes of JSON)."""
    now = datetime.now(UTC)
    return [
        PostLiked(
            post_id=f"post-{i}", liker_id=f"user-{i % 97}", author_id=f"user-{i % 89}", liked_at=now
        )
        for i in range(count)
    ]


def wait_futures(
    futures: Sequence[concurrent.futures.Future[Any]], timeout: float, what: str
) -> None:
    """Wait for every future; raise :class:`BenchError` on a timeout or a failed publish."""
    done, not_done = concurrent.futures.wait(futures, timeout=timeout)
    if not_done:
        raise BenchError(
            f"{what}: {len(not_done)} of {len(futures)} not settled after {timeout:g} s"
        )
    failed = [f for f in done if f.exception() is not None]
    if failed:
        raise BenchError(
            f"{what}: {len(failed)} of {len(futures)} failed: {failed[0].exception()!r}"
        )


class Counter:
    """Counts handled messages from many threads and wakes a waiter at a target.

    Distinct ids are tracked too, so a redelivery cannot pass for a new message.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self.count = 0
        self._target = 0
        self._reached = threading.Event()

    def hit(self, message_id: str) -> None:
        with self._lock:
            self.count += 1
            self._ids.add(message_id)
            if len(self._ids) >= self._target:
                self._reached.set()

    def expect(self, target: int) -> None:
        """Arm for ``target`` distinct messages in total (count from zero)."""
        with self._lock:
            self._target = target
            self._reached.clear()
            if len(self._ids) >= target:
                self._reached.set()

    def wait(self, timeout: float, what: str) -> None:
        if not self._reached.wait(timeout):
            raise BenchError(
                f"{what}: {len(self._ids)} of {self._target} messages after {timeout:g} s"
            )

    @property
    def duplicates(self) -> int:
        with self._lock:
            return self.count - len(self._ids)


class Stopwatch:
    """Wall-clock seconds on the monotonic clock."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


class Results:
    """Per (row, side) over rounds: msg/s (:meth:`record`) or seconds (:meth:`record_time`).

    Rows keep the order they were first recorded in.
    """

    def __init__(self) -> None:
        self.rates: dict[str, dict[str, list[float]]] = {}
        self.times: dict[str, dict[str, list[float]]] = {}
        self.notes: dict[str, str] = {}

    def record(self, row: str, side: str, messages: int, seconds: float) -> float:
        rate = messages / seconds if seconds > 0 else float("inf")
        self.rates.setdefault(row, {}).setdefault(side, []).append(rate)
        return rate

    def record_time(self, row: str, side: str, seconds: float) -> None:
        """A duration where less is better (a cold start), reported as seconds."""
        self.times.setdefault(row, {}).setdefault(side, []).append(seconds)

    def note(self, row: str, text: str) -> None:
        self.notes[row] = text

    def median(self, row: str, side: str) -> float | None:
        values = self.rates.get(row, {}).get(side)
        return statistics.median(values) if values else None

    def median_time(self, row: str, side: str) -> float | None:
        values = self.times.get(row, {}).get(side)
        return statistics.median(values) if values else None

    def spread(self, row: str, side: str) -> str:
        values = self.rates.get(row, {}).get(side) or []
        return ", ".join(f"{v:,.0f}" for v in values)

    def spread_time(self, row: str, side: str) -> str:
        values = self.times.get(row, {}).get(side) or []
        return ", ".join(f"{v:.3f}" for v in values)
