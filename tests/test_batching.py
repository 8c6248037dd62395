"""The publisher's batcher on its own, with a recording ``send`` instead of Pub/Sub.

Its behaviour against the real emulator is in tests/test_publisher.py; these cover what is hard
to provoke there: several topics at once, a send that raises, an answer with too few ids.
"""

from __future__ import annotations

import concurrent.futures
import threading

import pytest
from google.pubsub_v1 import types

from shared._batching import Batcher
from shared.publisher import PublishFuture

Message = types.PubsubMessage.pb()
LATE = 600.0  # a max_latency no test waits for


class Recorder:
    """A ``send`` that records each batch and answers ids ``<topic>:<n>``."""

    def __init__(self, answer: int | None = None, error: BaseException | None = None) -> None:
        self.batches: list[tuple[str, list[bytes]]] = []
        self.lock = threading.Lock()
        self.answer, self.error = answer, error

    def __call__(self, topic: str, messages: list[object]) -> list[str]:
        data = [m.data for m in messages]  # type: ignore[attr-defined]
        with self.lock:
            self.batches.append((topic, data))
        if self.error is not None:
            raise self.error
        count = len(messages) if self.answer is None else self.answer
        return [f"{topic}:{d.decode()}" for d in data][:count]


def fail(future: object, error: BaseException) -> BaseException:
    return RuntimeError(f"failed: {error}")


def future(i: int) -> PublishFuture:
    return PublishFuture("t", f"e{i}", deadline=0.0)


def batcher(send: Recorder, **settings: float) -> Batcher:
    options = {"max_messages": 100, "max_bytes": 1_000_000, "max_latency": LATE, **settings}
    return Batcher(send, fail, **options)  # type: ignore[arg-type]


def test_each_topic_gets_its_own_batches() -> None:
    send = Recorder()
    b = batcher(send, max_messages=2)
    futures = {}
    for i in range(4):
        for topic in ("a", "b"):
            futures[topic, i] = f = future(i)
            b.add(topic, Message(data=str(i).encode()), f)
    done, _ = concurrent.futures.wait(futures.values(), timeout=30)
    assert len(done) == 8
    assert {f.result() for (topic, i), f in futures.items()} == {
        f"{topic}:{i}" for topic in "ab" for i in range(4)
    }
    assert all(len(data) == 2 and len({topic}) == 1 for topic, data in send.batches)
    assert sorted(t for t, _ in send.batches) == ["a", "a", "b", "b"]


def test_a_send_that_raises_fails_every_future_of_its_batch() -> None:
    b = batcher(Recorder(error=ConnectionError("gone")), max_messages=3)
    futures = [future(i) for i in range(3)]
    for i, f in enumerate(futures):
        b.add("t", Message(data=b"x%d" % i), f)
    for f in futures:
        with pytest.raises(RuntimeError, match="failed: gone"):
            f.result(timeout=30)


def test_an_answer_with_too_few_ids_fails_the_batch_rather_than_guess() -> None:
    b = batcher(Recorder(answer=1), max_messages=2)
    futures = [future(i) for i in range(2)]
    for i, f in enumerate(futures):
        b.add("t", Message(data=b"%d" % i), f)
    for f in futures:
        with pytest.raises(RuntimeError, match="1 message ids for 2 messages"):
            f.result(timeout=30)


def test_close_sends_what_is_open_and_then_refuses_more() -> None:
    send = Recorder()
    b = batcher(send)
    f = future(0)
    b.add("t", Message(data=b"0"), f)
    b.close()
    assert f.result(timeout=30) == "t:0"
    with pytest.raises(RuntimeError, match="closed"):
        b.add("t", Message(data=b"1"), future(1))


def test_a_message_bigger_than_max_bytes_goes_alone_and_at_once() -> None:
    send = Recorder()
    b = batcher(send, max_bytes=10)
    small, big = future(0), future(1)
    b.add("t", Message(data=b"s"), small)
    b.add("t", Message(data=b"b" * 50), big)  # the open batch cannot take it: both go
    assert big.result(timeout=30) == "t:" + "b" * 50
    assert small.result(timeout=30) == "t:s"
    assert sorted(len(data) for _, data in send.batches) == [1, 1]
