"""Event, trace and span ids: unique without a system call per id (shared/_random.py)."""

from __future__ import annotations

import multiprocessing
import random
import uuid

from shared import _random
from shared.observability import TraceContext


def test_event_ids_are_version_4_uuids_in_canonical_form() -> None:
    ids = [_random.uuid4() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_seeding_the_random_module_does_not_repeat_ids() -> None:
    """Tests seed ``random`` (hypothesis does); repeated ids would make consumers drop events."""
    random.seed(0)
    first = (_random.uuid4(), TraceContext.new().traceparent)
    random.seed(0)
    assert (_random.uuid4(), TraceContext.new().traceparent) != first


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([_random.uuid4() for _ in range(5)])


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    children = [context.Process(target=_child_ids, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    got = [queue.get(timeout=30) for _ in children]
    for child in children:
        child.join(30)
    parent = [_random.uuid4() for _ in range(5)]
    assert len({*got[0], *got[1], *parent}) == 15
