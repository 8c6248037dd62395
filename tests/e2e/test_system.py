"""The real path: emulator -> local runtime -> HTTP -> function process -> store.

Each test runs functions-framework processes on free ports against its own emulator project.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import urllib.request
from datetime import UTC, datetime

import pytest

from shared import Publisher
from shared.stores import open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.dev import LocalSystem
from tests.conftest import REPO, wait_until
from tests.functions.conftest import push_body

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

USERS = [f"user-{i}" for i in range(10)]


def likes(count: int, seed: int = 1) -> list[PostLiked]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        PostLiked(post_id=f"post-{i}", liker_id=liker, author_id=author, liked_at=now)
        for i, (liker, author) in enumerate(rng.sample(USERS, 2) for _ in range(count))
    ]


def total_affinity(store) -> int:
    return sum(sum(store.counters("timeline_affinity", user).values()) for user in USERS)


def test_a_consumer_that_is_down_loses_nothing(local_system, tmp_path, pull_all, project) -> None:
    """Timeline down, 1,000 likes published, timeline back: all applied exactly once."""
    local = local_system(TOPOLOGY, ["timeline_enrichment"])
    local.stop_function("timeline_enrichment")
    events = likes(1000)
    Publisher(TOPOLOGY).publish_all(events)
    local.start_function("timeline_enrichment")
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    wait_until(
        lambda: total_affinity(store) >= 1000,
        timeout=180,
        interval=0.5,
        what="1,000 likes applied after the outage",
    )
    local.stop()
    assert total_affinity(store) == 1000
    expected: dict[tuple[str, str], int] = {}
    for e in events:
        expected[(e.liker_id, e.author_id)] = expected.get((e.liker_id, e.author_id), 0) + 1
    for (liker, author), n in expected.items():
        assert store.counters("timeline_affinity", liker)[author] == n
    assert pull_all(project, "post-liked--timeline_enrichment", quiet=2) == []
    assert pull_all(project, "post-liked--timeline_enrichment--dlq", quiet=1) == []


def test_poison_messages_dead_letter_in_one_attempt_while_good_ones_flow(
    local_system, tmp_path, pull_all, project
) -> None:
    local_system(TOPOLOGY, ["timeline_enrichment"])
    publisher = Publisher(TOPOLOGY)
    topic = publisher.topic_path("post-liked")
    base = {
        "ce-specversion": "1.0",
        "ce-source": "/tests",
        "ce-datacontenttype": "application/json",
    }
    publisher.publish_all(likes(20, seed=2))
    publisher.client.publish(
        topic, b"{oops", **base, **{"ce-id": "malformed", "ce-type": "post.liked.v1"}
    ).result()
    publisher.client.publish(
        topic, b"{}", **base, **{"ce-id": "unknown", "ce-type": "post.shared.v1"}
    ).result()
    publisher.publish_all(likes(20, seed=3))
    letters = {
        m.attributes["ce-id"]: m
        for m in pull_all(project, "post-liked--timeline_enrichment--dlq", expect=2)
    }
    assert set(letters) == {"malformed", "unknown"}
    assert (
        letters["malformed"].attributes["pubsubkit-dlq-reason"]
        == "post.liked.v1: message data is not JSON"
    )
    assert (
        letters["unknown"]
        .attributes["pubsubkit-dlq-reason"]
        .startswith("unknown event type 'post.shared.v1'")
    )
    assert {m.attributes["pubsubkit-dlq-attempt"] for m in letters.values()} == {"1"}
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    wait_until(lambda: total_affinity(store) == 40, timeout=60, what="the 40 good likes")


def test_a_retryable_failure_succeeds_on_the_third_attempt_with_one_effect(
    local_system, tmp_path, project
) -> None:
    from tests.test_functions.flaky_likes.flaky_topology import TOPOLOGY as FLAKY

    local_system(FLAKY, ["flaky_likes"], functions_dir=REPO / "tests" / "test_functions")
    Publisher(FLAKY).publish(likes(1)[0]).result()
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    wait_until(lambda: store.counters("applied", "post-0"), timeout=60, what="the third attempt")
    assert store.counters("applied", "post-0") == {"count": 1}
    assert store.counters("attempts", "post-0") == {"1": 1, "2": 1, "3": 1}


def test_a_message_that_keeps_failing_is_dead_lettered_after_the_declared_attempts(
    local_system, project, pull_all
) -> None:
    from tests.test_functions.flaky_likes.flaky_topology import TOPOLOGY as FLAKY

    local_system(FLAKY, ["flaky_likes"], functions_dir=REPO / "tests" / "test_functions")
    doomed = PostLiked(
        post_id="doomed-1", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC)
    )
    Publisher(FLAKY).publish(doomed, event_id="doomed").result()
    [letter] = pull_all(project, "post-liked--flaky_likes--dlq", expect=1, timeout=60)
    attempts = FLAKY.consumer("flaky_likes").max_delivery_attempts
    assert letter.attributes["ce-id"] == "doomed"
    assert letter.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(attempts)


def test_two_instances_receiving_the_same_push_at_once_apply_it_once(
    local_system, tmp_path, project
) -> None:
    """Two function processes share the store, as two Cloud Functions instances share Firestore."""
    local = local_system(TOPOLOGY, ["timeline_enrichment"])
    second = LocalSystem(
        TOPOLOGY,
        project=project,
        store_url=f"sqlite:///{tmp_path / 'state.db'}",
        port_base=0,
        functions=["timeline_enrichment"],
    )
    second.env = local.env
    second.start_function("timeline_enrichment")
    try:
        body = json.dumps(
            push_body(likes(1)[0], subscription="post-liked--timeline_enrichment", project=project)
        ).encode()
        urls = [
            local.functions["timeline_enrichment"].url,
            second.functions["timeline_enrichment"].url,
        ]

        def post(i: int) -> int:
            request = urllib.request.Request(
                urls[i % 2], data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status: int = response.status
                    return status
            except urllib.error.HTTPError as error:
                return error.code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(16)))
    finally:
        second.stop()
    assert 204 in statuses and set(statuses) <= {204, 503}
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    assert total_affinity(store) == 1


@pytest.mark.firestore
def test_the_system_runs_on_firestore_as_on_gcp(project, firestore_emulator) -> None:
    """The GCP store behind real function processes, on the Firestore emulator."""
    from shared.stores.firestore import FirestoreStore
    from shared.system.events import FieldChange, UserUpdated

    local = LocalSystem(
        TOPOLOGY,
        project=project,
        store_url="firestore",
        port_base=0,
        functions=["timeline_enrichment", "audit_log"],
    )
    local.start()
    try:
        publisher = Publisher(TOPOLOGY)
        publisher.publish_all(likes(30, seed=4))
        canary = "canary-0f4e@example.com"
        publisher.publish(
            UserUpdated(
                user_id="u7",
                changed_by="u7",
                email=canary,
                changes={"email": FieldChange(old="x@example.com", new=canary)},
            )
        ).result()
        store = FirestoreStore(project=project)
        wait_until(
            lambda: total_affinity(store) == 30 and len(store.query_audit()) == 31,
            timeout=60,
            interval=0.5,
            what="30 likes and 31 audit entries in Firestore",
        )
        [entry] = store.query_audit(subject="u7")
        assert canary not in json.dumps(entry.data)
    finally:
        local.stop()
