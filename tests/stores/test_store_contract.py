"""The store contract, written once and run against every backend (see ``conftest.py``).

Each test is a sentence of the contract in :mod:`shared.stores.base`; a backend that fails one
breaks what consumers rely on (at-most-once effects, exactly one worker per message).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from shared.stores.base import DONE_RETENTION, AuditEntry, ClaimState, Store
from tests.stores._support import FakeClock, StoreSpec, claim_in_process

T = TypeVar("T")

LEASE = 60.0  # seconds
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ODD_KEYS = [
    "orders/42/lines/7",  # "/" separates Firestore path segments
    "a%2Fb",  # what "a/b" percent-encodes to: must stay a different key
    ".",
    "..",
    "__reserved__",
    "ünïcødé ✓ 注文 🚀",
    "spaces and\ttabs\nand newlines",
    "x" * 1000,  # the longest key allowed
    "é" * 1000,  # the longest, and over Firestore's 1500-byte id limit once encoded
]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(event_id: str, minutes: float = 0, **fields: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "event_type": "user.updated.v1",
        "source": "//pubsub-kit/tests",
        "subject": None,
        "actor": None,
        "correlation_id": None,
        "data": {},
        "recorded_at": at(minutes) + timedelta(seconds=1),
    }
    values.update(fields)
    return AuditEntry(event_id=event_id, time=at(minutes), **values)


def at_once(count: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(0..count-1)`` in ``count`` threads released together."""
    start = threading.Barrier(count)

    def run(index: int) -> T:
        start.wait()
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


# -- claims --------------------------------------------------------------------------------------


def test_first_claim_acquires_and_a_second_is_busy_while_the_lease_lives(
    store: Store, clock: FakeClock
) -> None:
    assert store.claim("k", LEASE) is ClaimState.ACQUIRED
    assert store.claim("k", LEASE) is ClaimState.BUSY
    clock.advance(LEASE - 1)
    assert store.claim("k", LEASE) is ClaimState.BUSY


def test_claims_of_different_keys_are_independent(store: Store) -> None:
    assert store.claim("a", LEASE) is ClaimState.ACQUIRED
    assert store.claim("b", LEASE) is ClaimState.ACQUIRED


def test_completed_claim_answers_done(store: Store) -> None:
    store.claim("k", LEASE)
    store.complete("k")
    assert store.claim("k", LEASE) is ClaimState.DONE


def test_done_claim_stays_done_long_after_its_lease(store: Store, clock: FakeClock) -> None:
    store.claim("k", LEASE)
    store.complete("k")
    clock.advance(7 * 24 * 3600)  # as long as Pub/Sub may redeliver
    assert store.claim("k", LEASE) is ClaimState.DONE
    assert store.claim("k", LEASE) is ClaimState.DONE


def test_done_claim_is_forgotten_after_the_retention(store: Store, clock: FakeClock) -> None:
    store.claim("k", LEASE)
    store.complete("k")
    clock.advance(DONE_RETENTION + 1)
    assert store.claim("k", LEASE) is ClaimState.ACQUIRED


def test_release_lets_the_next_claim_acquire_at_once(store: Store) -> None:
    store.claim("k", LEASE)
    store.release("k")
    assert store.claim("k", LEASE) is ClaimState.ACQUIRED
    assert store.claim("k", LEASE) is ClaimState.BUSY


def test_release_does_not_undo_a_completion(store: Store) -> None:
    store.claim("k", LEASE)
    store.complete("k")
    store.release("k")
    assert store.claim("k", LEASE) is ClaimState.DONE


def test_release_of_an_unknown_key_does_nothing(store: Store) -> None:
    store.release("never-claimed")
    assert store.claim("never-claimed", LEASE) is ClaimState.ACQUIRED


def test_expired_lease_is_taken_over_with_a_fresh_lease(store: Store, clock: FakeClock) -> None:
    store.claim("k", LEASE)  # its holder dies without completing or releasing
    clock.advance(LEASE + 1)
    assert store.claim("k", 10) is ClaimState.ACQUIRED
    clock.advance(9)
    assert store.claim("k", LEASE) is ClaimState.BUSY
    clock.advance(2)
    assert store.claim("k", LEASE) is ClaimState.ACQUIRED


def test_exactly_one_of_many_threads_acquires(store: Store) -> None:
    answers = at_once(10, lambda _: store.claim("race", LEASE))
    assert sorted(a.name for a in answers) == ["ACQUIRED"] + ["BUSY"] * 9


def test_exactly_one_of_many_threads_takes_over_an_expired_lease(
    store: Store, clock: FakeClock
) -> None:
    store.claim("race", LEASE)
    clock.advance(LEASE + 1)
    answers = at_once(10, lambda _: store.claim("race", LEASE))
    assert sorted(a.name for a in answers) == ["ACQUIRED"] + ["BUSY"] * 9


def test_exactly_one_of_several_processes_acquires(spec: StoreSpec) -> None:
    # Separate processes, like function instances: no lock in this process can help them.
    count = 3
    context = multiprocessing.get_context("spawn")  # fork would copy this process's gRPC threads
    start, results = context.Barrier(count), context.Queue()
    workers = [
        context.Process(target=claim_in_process, args=(spec, "race", LEASE, start, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    answers = sorted(results.get(timeout=180) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert answers == ["ACQUIRED"] + ["BUSY"] * (count - 1)


# -- audit log ----------------------------------------------------------------------------------


def test_record_audit_is_idempotent_per_event_id(store: Store) -> None:
    first = entry("e1", data={"attempt": 1})
    assert store.record_audit(first) is True
    assert store.record_audit(entry("e1", data={"attempt": 2})) is False
    assert store.query_audit() == [first]


def test_the_same_event_id_from_another_source_is_another_entry(store: Store) -> None:
    """CloudEvents identify an event by source and id; two producers may both number from 1."""
    web = AuditEntry(**{**vars(entry("1")), "source": "/services/web"})
    mobile = AuditEntry(**{**vars(entry("1")), "source": "/services/mobile"})
    assert store.record_audit(web) is True
    assert store.record_audit(mobile) is True
    assert store.record_audit(web) is False
    assert sorted(e.source for e in store.query_audit()) == ["/services/mobile", "/services/web"]


def test_audit_entry_round_trips_exactly(store: Store) -> None:
    recorded = entry(
        "e1",
        subject="user/42",
        actor="admin@example.com",
        correlation_id="c-9",
        data={
            "user_id": "42",
            "changes": {"email": {"old": "[redacted]", "new": "[redacted]"}, "tags": ["a", "b"]},
            "count": 3,
            "ratio": 0.25,
            "flag": False,
            "nothing": None,
            "nested": {"deeper": {"deepest": [1, {"x": "y"}]}},
            "unicode": "ünïcødé ✓",
        },
    )
    store.record_audit(recorded)
    [back] = store.query_audit()
    assert back == recorded
    assert type(back.time) is datetime and type(back.recorded_at) is datetime
    assert back.time.utcoffset() == timedelta(0)


def test_audit_data_without_a_document_form_still_round_trips(store: Store) -> None:
    # JSON allows what a Firestore map does not: arrays in arrays, reserved or empty keys, big ints.
    data = {
        "matrix": [[1, 2], [3]],
        "__meta__": {"v": 1},
        "": "empty key",
        "big": 2**70,
        "map": {"a.b": 1},
    }
    store.record_audit(entry("e1", data=data))
    assert store.query_audit()[0].data == data


def test_audit_times_in_other_zones_are_the_same_instants(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    store.record_audit(entry("e1", 0))
    store.record_audit(AuditEntry(**{**vars(entry("e2", 0)), "time": at(10).astimezone(plus_two)}))
    [back] = store.query_audit(since=at(5).astimezone(plus_two))
    assert back.event_id == "e2" and back.time == at(10)


@pytest.fixture
def audit_log(store: Store) -> Store:
    """Five entries, recorded out of time order: two subjects, two actors, two event types, two
    at one instant."""
    dispatched = "order.dispatched.v1"
    for recorded in [
        entry("e3", 20, subject="order/1", actor="bob", event_type=dispatched),
        entry("e1", 0, subject="order/1", actor="alice"),
        entry("e5", 40, subject="order/2", actor="alice"),
        entry("e2b", 10, subject="order/2", actor="bob", event_type=dispatched),
        entry("e2a", 10, subject="order/1", actor="alice"),
    ]:
        store.record_audit(recorded)
    return store


def ids(entries: list[AuditEntry]) -> list[str]:
    return [e.event_id for e in entries]


def test_query_audit_returns_everything_oldest_first_then_by_event_id(audit_log: Store) -> None:
    assert ids(audit_log.query_audit()) == ["e1", "e2a", "e2b", "e3", "e5"]


def test_query_audit_by_subject(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(subject="order/1")) == ["e1", "e2a", "e3"]
    assert audit_log.query_audit(subject="order/404") == []


def test_query_audit_by_actor(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(actor="alice")) == ["e1", "e2a", "e5"]


def test_query_audit_since_is_inclusive_and_until_exclusive(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(since=at(10), until=at(40))) == ["e2a", "e2b", "e3"]
    assert ids(audit_log.query_audit(since=at(10) + timedelta(microseconds=1))) == ["e3", "e5"]
    assert ids(audit_log.query_audit(until=at(10))) == ["e1"]


def test_query_audit_combines_every_criterion(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(subject="order/1", actor="alice")) == ["e1", "e2a"]
    assert ids(
        audit_log.query_audit(subject="order/1", actor="alice", since=at(5), until=at(30))
    ) == ["e2a"]
    assert ids(audit_log.query_audit(actor="bob", since=at(15))) == ["e3"]


def test_query_audit_limit_keeps_the_oldest(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(limit=2)) == ["e1", "e2a"]
    assert ids(audit_log.query_audit(subject="order/2", limit=1)) == ["e2b"]


def test_query_audit_by_event_type(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(event_type="order.dispatched.v1")) == ["e2b", "e3"]
    assert ids(audit_log.query_audit(event_type="user.updated.v1")) == ["e1", "e2a", "e5"]
    assert audit_log.query_audit(event_type="order.cancelled.v1") == []


def test_query_audit_by_event_type_combines_with_the_other_criteria(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(event_type="order.dispatched.v1", subject="order/1")) == ["e3"]
    assert ids(audit_log.query_audit(event_type="user.updated.v1", actor="alice", since=at(5))) == [
        "e2a",
        "e5",
    ]


def test_query_audit_newest_first_is_the_exact_reverse(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(newest_first=True)) == ["e5", "e3", "e2b", "e2a", "e1"]
    assert ids(audit_log.query_audit(actor="alice", until=at(40), newest_first=True)) == [
        "e2a",
        "e1",
    ]


def test_query_audit_newest_first_limit_keeps_the_newest(audit_log: Store) -> None:
    assert ids(audit_log.query_audit(newest_first=True, limit=2)) == ["e5", "e3"]
    assert ids(audit_log.query_audit(subject="order/1", newest_first=True, limit=2)) == [
        "e3",
        "e2a",
    ]
    assert ids(
        audit_log.query_audit(event_type="order.dispatched.v1", newest_first=True, limit=1)
    ) == ["e3"]


# -- idempotent counters ------------------------------------------------------------------------


def test_increment_applies_once_per_token(store: Store) -> None:
    assert store.increment("likes", "post/1", "count", 5, once="e1") is True
    assert store.increment("likes", "post/1", "count", 5, once="e1") is False
    assert store.counters("likes", "post/1") == {"count": 5}


def test_different_tokens_add_up(store: Store) -> None:
    store.increment("likes", "post/1", "count", once="e1")
    store.increment("likes", "post/1", "count", 2, once="e2")
    store.increment("likes", "post/1", "shares", once="e3")
    store.increment("likes", "post/2", "count", 7, once="e4")
    assert store.counters("likes", "post/1") == {"count": 3, "shares": 1}
    assert store.counters("likes", "post/2") == {"count": 7}


def test_a_token_is_once_per_collection(store: Store) -> None:
    assert store.increment("likes", "post/1", "count", once="e1") is True
    assert store.increment("views", "post/1", "count", once="e1") is True
    assert store.counters("views", "post/1") == {"count": 1}


def test_increment_with_one_token_from_many_threads_applies_once(store: Store) -> None:
    applied = at_once(10, lambda _: store.increment("likes", "post/1", "count", 3, once="e1"))
    assert sorted(applied) == [False] * 9 + [True]
    assert store.counters("likes", "post/1") == {"count": 3}


def test_increments_with_distinct_tokens_from_many_threads_all_apply(store: Store) -> None:
    applied = at_once(10, lambda i: store.increment("likes", "post/1", "count", i, once=f"e{i}"))
    assert applied == [True] * 10
    assert store.counters("likes", "post/1") == {"count": sum(range(10))}


def test_counters_of_an_unknown_key_are_empty(store: Store) -> None:
    assert store.counters("likes", "post/404") == {}


# -- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.claim("", LEASE), id="claim"),
        pytest.param(lambda s: s.complete(""), id="complete"),
        pytest.param(lambda s: s.release(""), id="release"),
        pytest.param(lambda s: s.record_audit(entry("")), id="record_audit"),
        pytest.param(
            lambda s: s.increment("likes", "post/1", "count", once=""), id="increment-once"
        ),
        pytest.param(
            lambda s: s.increment("", "post/1", "count", once="e1"), id="increment-collection"
        ),
        pytest.param(lambda s: s.increment("likes", "", "count", once="e1"), id="increment-key"),
        pytest.param(lambda s: s.increment("likes", "post/1", "", once="e1"), id="increment-field"),
        pytest.param(lambda s: s.counters("likes", ""), id="counters-key"),
        pytest.param(lambda s: s.counters("", "post/1"), id="counters-collection"),
        pytest.param(lambda s: s.claim("x" * 1001, LEASE), id="claim-too-long"),
    ],
)
def test_invalid_keys_are_refused_before_any_io(
    store: Store, forbid_io: None, call: Callable[[Store], object]
) -> None:
    with pytest.raises(ValueError, match="non-empty string of at most 1000 characters"):
        call(store)


def test_odd_keys_are_distinct_claim_keys(store: Store) -> None:
    for key in ODD_KEYS:
        assert store.claim(key, LEASE) is ClaimState.ACQUIRED, key
    store.complete(ODD_KEYS[0])
    assert [store.claim(key, LEASE) for key in ODD_KEYS] == [ClaimState.DONE] + [
        ClaimState.BUSY
    ] * (len(ODD_KEYS) - 1)
    store.release(ODD_KEYS[1])
    assert store.claim(ODD_KEYS[1], LEASE) is ClaimState.ACQUIRED


def test_odd_keys_work_as_event_ids_subjects_and_actors(store: Store) -> None:
    for minute, key in enumerate(ODD_KEYS):
        # Subjects and actors up to 500 characters: Firestore cannot query a longer one.
        assert store.record_audit(entry(key, minute, subject=key[:500], actor=key[:500])) is True
    assert ids(store.query_audit()) == ODD_KEYS
    for key in ODD_KEYS:
        assert ids(store.query_audit(subject=key[:500], actor=key[:500])) == [key]
    assert all(store.record_audit(entry(key)) is False for key in ODD_KEYS)


def test_odd_keys_work_as_counter_names_and_tokens(store: Store) -> None:
    for key in ODD_KEYS:
        assert store.increment(key, key, key, 2, once=key) is True
        assert store.increment(key, key, key, 2, once=key) is False
    for key in ODD_KEYS:
        assert store.counters(key, key) == {key: 2}
    # Field names that mean something in a Firestore field path are plain names here.
    for field in ["a.b", "`tick`", "x/y", "__name__"]:
        store.increment("likes", "post/1", field, once=f"t-{field}")
    assert store.counters("likes", "post/1") == {"a.b": 1, "`tick`": 1, "x/y": 1, "__name__": 1}
