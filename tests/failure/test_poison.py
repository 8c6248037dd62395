"""Poison mixed into good traffic, through the real local runtime (emulator -> HTTP -> function).

Two hundred good likes are published with one message of each kind of poison between them. Each
poison message must reach the dead-letter topic exactly once with a reason that names its
problem, every good like must be applied exactly once, and nothing may stay on the subscription.

A message that kills its function's process is the one poison the runtime cannot name (it dies
with the process): local delivery counts the dropped connection as a failed attempt, so the
emulator dead-letters it after the declared attempts, with its own attributes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared import wire
from shared.stores import Store, open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.dev import LocalSystem
from tests.conftest import REPO, wait_until
from tests.failure.conftest import Tally

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

GOOD = 200
USERS = [f"user-{i:02d}" for i in range(15)]  # 210 ordered pairs: one pair per good like
KIND = "x-poison-test-kind"  # a producer's own attribute: which message of the stream this is
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
MAX_VALUE = 1024  # bytes: the largest attribute value Pub/Sub takes
MAX_KEY = 256  # bytes: the largest attribute key Pub/Sub takes
CRASH = "crash"

# What each poison message's dead-letter reason must say: the problem, not just "rejected".
REASONS: dict[str, str] = {
    "bad-json": r"^post\.liked\.v1: message data is not JSON$",
    "wrong-types": r"^post\.liked\.v1: data does not fit the model \(.*post_id.*liker_id.*"
    r"author_id.*liked_at",
    "unknown-type": r"^unknown event type 'post\.shared\.v1'",
    "missing-ce": r"^message is not a CloudEvent: missing attribute\(s\) ce-id, ce-source$",
    "oversized": r"^unknown event type 'post\.liked\.v1\.é",
    "wrong-content-type": r"^unsupported ce-datacontenttype 'application/xml'",
    "deep": r"^post\.liked\.v1: message data .*(nest|deep)",
    "huge-int": r"^post\.liked\.v1: message data .*(digit|integer|number)",
}


@dataclasses.dataclass(frozen=True)
class Message:
    """One message of the stream, as a producer publishes it."""

    kind: str
    data: bytes
    attributes: dict[str, str]


def good_likes(count: int = GOOD) -> list[PostLiked]:
    """Likes with distinct (liker, author) pairs, so each one's effect is a counter of its own."""
    now = datetime.now(UTC)
    pairs = [(a, b) for a, b in itertools.permutations(USERS, 2)][:count]
    return [
        PostLiked(post_id=f"post-{i}", liker_id=liker, author_id=author, liked_at=now)
        for i, (liker, author) in enumerate(pairs)
    ]


def encoded(event: PostLiked, kind: str, event_id: str) -> Message:
    data, attributes = wire.encode(
        event, wire.new_envelope(event, source="/tests/poison", event_id=event_id)
    )
    return Message(kind, data, {**attributes, KIND: kind})


def poison_messages() -> list[Message]:
    """One of each kind the runtime must dead-letter at once, each otherwise a valid like."""
    like = PostLiked(
        post_id="poison", liker_id="poisoner", author_id="victim", liked_at=datetime.now(UTC)
    )
    valid = encoded(like, "", "unused")
    data = json.loads(valid.data)

    def variant(
        kind: str,
        body: bytes = valid.data,
        *,
        drop: tuple[str, ...] = (),
        **changes: str,
    ) -> Message:
        attributes = {k: v for k, v in valid.attributes.items() if k not in drop}
        attributes.update({KIND: kind, wire.ATTR_ID: f"poison-{kind}"})
        attributes.update({k.replace("_", "-"): v for k, v in changes.items()})
        return Message(kind, body, {k: v for k, v in attributes.items() if k not in drop})

    huge_key = "x-producer-" + "k" * (MAX_KEY - len("x-producer-"))
    oversized = variant(
        "oversized",
        ce_type="post.liked.v1." + "é" * ((MAX_VALUE - len("post.liked.v1.")) // 2),
        ce_subject="é" * (MAX_VALUE // 2),
    )
    oversized.attributes[huge_key] = "ü" * (MAX_VALUE // 2)
    wrong = {"post_id": 7, "liker_id": ["u"], "author_id": None, "liked_at": "yesterday"}
    return [
        variant("bad-json", b'{"post_id": "p", oops'),
        variant("wrong-types", json.dumps(wrong).encode()),
        variant("unknown-type", ce_type="post.shared.v1"),
        variant("missing-ce", drop=(wire.ATTR_ID, wire.ATTR_SOURCE)),
        oversized,
        variant("wrong-content-type", ce_datacontenttype="application/xml"),
        variant("deep", json.dumps(data).replace('"poison"', nested(1000), 1).encode()),
        variant("huge-int", json.dumps(data).replace('"poison"', "9" * 5000, 1).encode()),
    ]


def nested(depth: int) -> str:
    """JSON objects ``depth`` deep (built as text: the encoder would hit the recursion limit)."""
    return '{"a": ' * depth + '"bottom"' + "}" * depth


def crash_message() -> Message:
    like = PostLiked(
        post_id="crash-1", liker_id="crasher", author_id="victim", liked_at=datetime.now(UTC)
    )
    return encoded(like, CRASH, "crash-1")


def mixed_stream(poison: list[Message]) -> list[Message]:
    """The good likes with the poison spread evenly between them."""
    good = [encoded(like, "good", f"good-{i}") for i, like in enumerate(good_likes())]
    step = len(good) // (len(poison) + 1)
    stream: list[Message] = []
    for i, message in enumerate(poison):
        stream += [*good[i * step : (i + 1) * step], message]
    return stream + good[len(poison) * step :]


def publish(project: str, stream: list[Message]) -> None:
    """Publish every message, in order, as another producer would (no validation on the way)."""
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    topic = client.topic_path(project, "post-liked")
    futures = [client.publish(topic, m.data, **m.attributes) for m in stream]
    for future in futures:
        future.result(timeout=30)


class FunctionLog:
    """The JSON log lines of the served functions: one per message they settled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.other: list[str] = []

    def __call__(self, name: str, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        with self._lock:
            if isinstance(record, dict):
                self.records.append(record)
            else:
                self.other.append(f"{name}: {line}")

    def statuses(self) -> list[str]:
        with self._lock:
            return [str(r["status"]) for r in self.records if "status" in r]


@dataclasses.dataclass
class Settled:
    """What became of the stream on one consumer."""

    letters: dict[str, list[Any]]  # kind -> dead letters of that kind
    leftovers: int  # messages still on the subscription after the run
    statuses: list[str]  # each settled delivery's status, from the function's log


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def settle(
    local: LocalSystem,
    log: FunctionLog,
    pull_all: Callable[..., list[Any]],
    project: str,
    subscription: str,
    *,
    letters: int,
    applied: Callable[[], bool],
) -> Settled:
    """Wait for the good traffic and the dead letters, stop delivery, then look for leftovers.

    A good like that never gets applied is not a reason to stop here: the tally says where it
    went (dead-lettered, or lost).
    """
    with contextlib.suppress(pytest.fail.Exception):
        wait_until(applied, timeout=30, interval=0.2, what="every good like applied")
    dead = pull_all(project, f"{subscription}--dlq", expect=letters, timeout=60, quiet=2)
    local.stop()
    leftovers = pull_all(project, subscription, quiet=2)
    dead += pull_all(project, f"{subscription}--dlq", quiet=1)  # a late second copy
    by_kind: dict[str, list[Any]] = {}
    for letter in dead:
        by_kind.setdefault(letter.attributes.get(KIND, "?"), []).append(letter)
    return Settled(by_kind, len(leftovers), log.statuses())


def fill(
    tally: Tally,
    stream: list[Message],
    settled: Settled,
    effects: dict[str, int],
    failed_attempts: int = 0,
) -> None:
    """The tally of one run: ``effects`` maps each good like's id to how often it was applied.

    ``delivered`` counts the deliveries the function logged an outcome for, the attempts of
    what the emulator dead-lettered (a process that dies logs nothing) and ``failed_attempts``
    (other deliveries that died with the process).
    """
    poison = [m.kind for m in stream if m.kind != "good"]
    letters = settled.letters
    good_letters = [letter.attributes.get(wire.ATTR_ID) for letter in letters.get("good", [])]
    unlogged = sum(
        int(letter.attributes.get(DELIVERY_COUNT, 0))
        for kind in letters.values()
        for letter in kind
        if wire.ATTR_DLQ_REASON not in letter.attributes
    )
    tally.published = len(stream)
    tally.delivered = len(settled.statuses) + unlogged + failed_attempts
    tally.applied = sum(1 for n in effects.values() if n > 0)
    tally.dead_lettered = sum(len(v) for v in letters.values())
    # A good like may be both applied and dead-lettered: its process died after the effect.
    dead_goods = {f"post-{str(event_id).removeprefix('good-')}" for event_id in good_letters}
    tally.lost = sum(1 for post, n in effects.items() if n == 0 and post not in dead_goods)
    tally.lost += sum(1 for kind in poison if not letters.get(kind))
    # An effect applied twice, or one message dead-lettered twice.
    tally.duplicates = sum(n - 1 for n in effects.values() if n > 1)
    tally.duplicates += len(good_letters) - len(set(good_letters))
    tally.duplicates += sum(len(letters[kind]) - 1 for kind in poison if letters.get(kind))
    tally.notes["good_dead_lettered"] = len(set(good_letters))
    tally.notes["leftovers"] = settled.leftovers
    tally.notes["statuses"] = dict(sorted(_count(settled.statuses).items()))
    tally.notes["reasons"] = {kind: reason_of(v[0])[:48] for kind, v in sorted(letters.items())}


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def reason_of(letter: Any) -> str:
    attributes = letter.attributes
    if wire.ATTR_DLQ_REASON in attributes:
        return str(attributes[wire.ATTR_DLQ_REASON])
    return f"{DELIVERY_COUNT}={attributes.get(DELIVERY_COUNT)}"


def check_letters(stream: list[Message], letters: dict[str, list[Any]]) -> None:
    """Each dead letter keeps the original data and attributes, so it can be replayed."""
    for message in stream:
        for letter in letters.get(message.kind, []):
            assert letter.data == message.data, message.kind
            kept = {k: letter.attributes.get(k) for k in message.attributes}
            assert kept == message.attributes, message.kind


def wrong_reasons(letters: dict[str, list[Any]]) -> dict[str, str]:
    """Poison kinds whose dead-letter reason does not name their problem, with that reason."""
    wrong = {}
    for kind, pattern in REASONS.items():
        reason = reason_of(letters[kind][0]) if letters.get(kind) else "<not dead-lettered>"
        if not re.search(pattern, reason) or len(reason.encode()) > MAX_VALUE:
            wrong[kind] = reason[:160]
    return wrong


def test_poison_is_dead_lettered_once_with_its_reason_while_good_likes_are_applied_once(
    local_system, project, tmp_path, pull_all, tally
) -> None:
    log = FunctionLog()
    local = local_system(TOPOLOGY, ["timeline_enrichment"], on_line=log)
    stream = mixed_stream(poison_messages())
    publish(project, stream)
    store = open_store(store_url(tmp_path))
    settled = settle(
        local,
        log,
        pull_all,
        project,
        "post-liked--timeline_enrichment",
        letters=len(REASONS),
        applied=lambda: sum(affinities(store).values()) >= GOOD,
    )
    counts = affinities(store)
    effects = {
        like.post_id: counts.get((like.liker_id, like.author_id), 0) for like in good_likes()
    }
    fill(tally, stream, settled, effects)
    tally.check()
    assert tally.applied == GOOD and tally.notes["good_dead_lettered"] == 0
    assert settled.leftovers == 0
    assert sorted(settled.letters) == sorted(REASONS)
    assert {k: len(v) for k, v in settled.letters.items()} == dict.fromkeys(REASONS, 1)
    assert {reason_of(v[0]) != "" for v in settled.letters.values()} == {True}
    assert {v[0].attributes.get(wire.ATTR_DLQ_ATTEMPT) for v in settled.letters.values()} == {"1"}
    check_letters(stream, settled.letters)
    assert wrong_reasons(settled.letters) == {}


def affinities(store: Store) -> dict[tuple[str, str], int]:
    return {
        (liker, author): n
        for liker in [*USERS, "poisoner", "crasher"]
        for author, n in store.counters("timeline_affinity", liker).items()
    }


def last_attempt(store: Store, post_id: str) -> int:
    return max((int(n) for n in store.counters("attempts", post_id)), default=0)


def test_a_message_that_kills_its_function_is_dead_lettered_after_the_declared_attempts(
    local_system, project, tmp_path, pull_all, tally
) -> None:
    from tests.test_functions.crashy_likes.crashy_topology import TOPOLOGY as CRASHY

    attempts = CRASHY.consumer("crashy_likes").max_delivery_attempts
    log = FunctionLog()
    local = local_system(
        CRASHY, ["crashy_likes"], functions_dir=REPO / "tests" / "test_functions", on_line=log
    )
    stream = mixed_stream([*poison_messages(), crash_message()])
    publish(project, stream)
    store = open_store(store_url(tmp_path))
    likes = good_likes()
    settled = settle(
        local,
        log,
        pull_all,
        project,
        "post-liked--crashy_likes",
        letters=len(REASONS) + 1,
        applied=lambda: all(store.counters("applied", like.post_id) for like in likes),
    )
    effects = {
        like.post_id: store.counters("applied", like.post_id).get("count", 0) for like in likes
    }
    crashes = store.counters("attempts", "crash-1")
    # The attempt a good like was handled on: the attempts before it died with the process.
    handled_on = {like.post_id: last_attempt(store, like.post_id) for like in likes}
    retried = {post: n for post, n in handled_on.items() if n > 1}
    fill(tally, stream, settled, effects, failed_attempts=sum(n - 1 for n in retried.values()))
    tally.notes["crash_attempts"] = ",".join(sorted(crashes))
    tally.notes["good_retried"] = dict(sorted(retried.items()))
    tally.check()
    assert tally.applied == GOOD and tally.notes["good_dead_lettered"] == 0
    assert settled.leftovers == 0
    assert {k: len(v) for k, v in settled.letters.items()} == dict.fromkeys([*REASONS, CRASH], 1)
    [letter] = settled.letters[CRASH]
    # The process died on every attempt: each dropped connection was one failed attempt.
    assert crashes == {str(n): 1 for n in range(1, attempts + 1)}
    assert letter.attributes[DELIVERY_COUNT] == str(attempts)
    assert wire.ATTR_DLQ_REASON not in letter.attributes
    check_letters(stream, settled.letters)
    assert wrong_reasons(settled.letters) == {}
