"""Batches of unordered messages, sent with the client library's own Publish call.

Why not the library's batching (``PublisherClient.publish``): it is built for any caller, so
for every message it copies and type-checks the attributes, wraps the protobuf in a proto-plus
message and a tracing wrapper, passes flow control, a sequencer and two locks, and makes a
future whose callback makes ours. Measured on the emulator (bench/, docs/performance.md): 56 µs
of CPU per message with CloudEvents attributes, 30 µs with this module, which makes the plain
protobuf message at once and settles our own future. The sending itself is the library's: its
generated ``Publish`` method, with its channel, credentials, emulator settings and retry codes.

Messages with an ordering key still go through the library's client, whose per-key pausing and
resuming this module does not try to copy.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from google.pubsub_v1.types import PubsubMessage


class Settles(Protocol):
    """What a batch needs of each message's future."""

    def settle(self, result: str | None = None, error: BaseException | None = None) -> None: ...


# (topic path, messages) -> their message ids, in order; raises when Pub/Sub refused the batch.
Send = Callable[[str, list["PubsubMessage"]], Sequence[str]]


@dataclasses.dataclass
class _Batch:
    topic: str
    opened: float  # monotonic(); the batch is sent max_latency after this at the latest
    messages: list[PubsubMessage] = dataclasses.field(default_factory=list)
    futures: list[Settles] = dataclasses.field(default_factory=list)
    size: int = 0  # bytes of the serialized messages


class Batcher:
    """Collects messages per topic and sends each batch when it is full or old enough.

    Args:
        send: sends one batch (blocking) and returns its message ids.
        fail: the error a future gets when its batch failed with ``exc``.
        max_messages, max_bytes, max_latency: when a batch is sent (``PublisherSettings``).
        senders: batches in flight at once, each on its own daemon thread. Daemon threads keep
            running while ``atexit`` hooks run, so the publisher's exit flush still sends.
    """

    def __init__(
        self,
        send: Send,
        fail: Callable[[Settles, BaseException], BaseException],
        *,
        max_messages: int,
        max_bytes: int,
        max_latency: float,
        senders: int = 8,
    ) -> None:
        self._send = send
        self._fail = fail
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_latency = max_latency
        self._senders = senders
        self._open: dict[str, _Batch] = {}
        self._ready: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._changed = threading.Condition()  # guards _open; wakes the clock
        self._threads: list[threading.Thread] = []
        self._closed = False

    def add(self, topic: str, message: PubsubMessage, future: Settles) -> None:
        """Queue ``message`` for ``topic``; ``future`` settles when its batch is sent."""
        size = message.ByteSize()
        with self._changed:
            if self._closed:
                raise RuntimeError("publisher is closed")
            if not self._threads:
                self._start()
            batch = self._open.get(topic)
            if batch is not None and batch.size + size > self._max_bytes:
                self._ready.put(self._open.pop(topic))  # this one would not fit: send it first
                batch = None
            if batch is None:
                batch = self._open[topic] = _Batch(topic, monotonic())
                self._changed.notify()  # the clock may be waiting for a first batch
            batch.messages.append(message)
            batch.futures.append(future)
            batch.size += size
            if len(batch.messages) >= self._max_messages or batch.size >= self._max_bytes:
                self._ready.put(self._open.pop(topic))

    def send_open(self) -> None:
        """Send every batch now, full or not (a flush need not wait for their age)."""
        with self._changed:
            for batch in self._open.values():
                self._ready.put(batch)
            self._open.clear()

    def close(self) -> None:
        """Send what is open, then stop the threads once every batch has been sent."""
        self.send_open()
        with self._changed:
            self._closed = True
            self._changed.notify()
        for _ in range(self._senders):
            self._ready.put(None)  # each sender stops at one of these, after the batches

    def _start(self) -> None:
        self._threads = [
            threading.Thread(target=self._sender, name=f"pubsub-kit-send-{i}", daemon=True)
            for i in range(self._senders)
        ]
        self._threads.append(
            threading.Thread(target=self._clock, name="pubsub-kit-batch-clock", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def _clock(self) -> None:
        """Hand each batch to the senders once it is ``max_latency`` old."""
        with self._changed:
            while not self._closed:
                if not self._open:
                    self._changed.wait()
                    continue
                now = monotonic()
                due = [t for t, b in self._open.items() if now - b.opened >= self._max_latency]
                for topic in due:
                    self._ready.put(self._open.pop(topic))
                if self._open:
                    oldest = min(b.opened for b in self._open.values())
                    self._changed.wait(max(oldest + self._max_latency - now, 0.0))

    def _sender(self) -> None:
        while (batch := self._ready.get()) is not None:
            try:
                message_ids = self._send(batch.topic, batch.messages)
            except BaseException as exc:  # noqa: BLE001 - each future carries it to its caller
                for future in batch.futures:
                    future.settle(error=self._fail(future, exc))
            else:
                if len(message_ids) != len(batch.futures):  # never seen; not worth a lost message
                    error = RuntimeError(
                        f"Pub/Sub answered {len(message_ids)} message ids for "
                        f"{len(batch.futures)} messages"
                    )
                    for future in batch.futures:
                        future.settle(error=self._fail(future, error))
                    continue
                for future, message_id in zip(batch.futures, message_ids, strict=True):
                    future.settle(message_id)
