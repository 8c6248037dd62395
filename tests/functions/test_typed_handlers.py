"""A handler's annotation decides which event types it takes, checked when the function loads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from functions_framework import create_app

from shared import wire
from shared.system.events import FieldChange, OrderDispatched, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from tests.conftest import REPO
from tests.functions.conftest import push_body

FUNCTIONS = REPO / "tests" / "test_functions"
NOW = datetime.now(UTC)


def test_a_handler_naming_a_type_its_topics_do_not_carry_fails_at_import() -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - functions-framework may wrap it
        create_app(target="timeline_enrichment", source=str(FUNCTIONS / "wrong_type" / "main.py"))
    chain: list[str] = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = " | ".join(chain)
    assert "takes OrderDispatched" in text and "timeline_enrichment" in text
    assert "post.liked.v1" in text  # what its topics do carry


@pytest.mark.emulator
def test_a_union_annotation_takes_its_members_and_dead_letters_the_rest(
    project, store_url, store, pull_all
) -> None:
    provision(TOPOLOGY)
    app = create_app(target="audit_log", source=str(FUNCTIONS / "typed_union" / "main.py"))
    client = app.test_client()
    like = PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=NOW)
    update = UserUpdated(user_id="u1", changed_by="u1", changes={"name": FieldChange(new="A")})
    order = OrderDispatched(order_id="o1", customer_id="c1", carrier="dhl", dispatched_at=NOW)

    deliveries = [
        (like, "post-liked--audit_log"),
        (update, "user-updated--audit_log"),
        (order, "order-dispatched--audit_log"),
    ]
    for event, subscription in deliveries:
        response = client.post(
            "/", json=push_body(event, subscription=subscription, project=project)
        )
        assert response.status_code == 204, response.data

    assert store.counters("typed_union", "post.liked.v1") == {"handled": 1}
    assert store.counters("typed_union", "user.updated.v1") == {"handled": 1}
    assert store.counters("typed_union", "order.dispatched.v1") == {}
    [letter] = pull_all(project, "order-dispatched--audit_log--dlq", expect=1)
    assert letter.attributes[wire.ATTR_DLQ_REASON].startswith(
        "unsupported event type 'order.dispatched.v1'; "
        "audit_log accepts post.liked.v1, user.updated.v1"
    )
