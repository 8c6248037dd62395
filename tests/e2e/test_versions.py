"""post.liked.v1 and post.liked.v2 side by side on one topic, through the functions over HTTP.

timeline_enrichment is written for v2 and gets v1 likes upcast; audit_log takes every event and
records each as it was published.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import Publisher
from shared.stores import open_store
from shared.system.events import PostLiked, PostLikedV2
from shared.system.topology import TOPOLOGY
from tests.conftest import wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]


def test_both_versions_flow_the_new_handler_counts_both_and_the_audit_keeps_what_was_sent(
    local_system, tmp_path, project, pull_all
) -> None:
    local_system(TOPOLOGY, ["timeline_enrichment", "audit_log"])
    now = datetime.now(UTC)
    v1 = PostLiked(post_id="p1", liker_id="ann", author_id="bob", liked_at=now)
    v2 = PostLikedV2(post_id="p2", liker_id="ann", author_id="bob", liked_at=now, reaction="love")
    with Publisher(TOPOLOGY) as publisher:
        publisher.publish_all([v1, v2])
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    wait_until(
        lambda: len(store.query_audit(subject="p1")) + len(store.query_audit(subject="p2")) == 2,
        timeout=60,
        interval=0.2,
        what="both likes in the audit log",
    )
    wait_until(
        lambda: store.counters("timeline_affinity", "ann").get("bob") == 2,
        timeout=60,
        interval=0.2,
        what="both likes counted by the v2 handler",
    )
    [first] = store.query_audit(subject="p1")
    [second] = store.query_audit(subject="p2")
    assert (first.event_type, second.event_type) == ("post.liked.v1", "post.liked.v2")
    assert "reaction" not in first.data and second.data["reaction"] == "love"
    assert pull_all(project, "post-liked--timeline_enrichment--dlq", quiet=1) == []
