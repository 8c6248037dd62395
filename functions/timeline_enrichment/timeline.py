"""Timeline affinity: how often each user likes each author, used to rank their timeline."""

from __future__ import annotations

from shared import Delivery
from shared.stores import Store
from shared.system.events import PostLikedV2

AFFINITY = "timeline_affinity"


def record_like(store: Store, event: PostLikedV2, delivery: Delivery) -> bool:
    """Count one like of ``event.author_id`` by ``event.liker_id``, once per event, whatever
    the reaction (a v1 like arrives upcast as a ``"like"``).

    The count and its once-token are written in one atomic commit, so a redelivery, even one whose
    first attempt died after the write, does not count twice. Liking one's own post does not
    count: it says nothing about what the user wants to see.

    Returns:
        Whether the like was counted.
    """
    if event.liker_id == event.author_id:
        return False
    return store.increment(
        AFFINITY, event.liker_id, event.author_id, once=f"timeline_enrichment/{delivery.event_key}"
    )


def affinity(store: Store, user_id: str) -> dict[str, int]:
    """Author -> number of likes by ``user_id``, highest first."""
    counts = store.counters(AFFINITY, user_id)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
