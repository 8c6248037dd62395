"""Versions side by side: a function from an event type's older version to its next one.

A breaking change to a contract is published as a new version (``post.liked.v2``) on the same
topic, beside the old one, while producers move over. Declare once, in the topology, how an old
event becomes a new one::

    def like_v1_to_v2(event: PostLiked) -> PostLikedV2:
        return PostLikedV2(**event.model_dump(), reaction="like")

    TOPOLOGY = Topology(
        topics=[Topic("post-liked", events=[PostLiked, PostLikedV2])],
        consumers=[...],
        upcasters=[Upcaster(PostLiked, PostLikedV2, like_v1_to_v2)],
    )

A handler written for ``PostLikedV2`` then receives ``post.liked.v1`` events upcast (through
``v2``, ``v3``, ... as far as needed); one that takes both (``PostLiked | PostLikedV2``, or
``Event``) receives each as published. ``delivery.envelope.type`` always says what was
published, and so does the audit log.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from shared.errors import PermanentError, TopologyError
from shared.events import Event

_VERSION = re.compile(r"^(?P<family>.+)\.v(?P<version>[1-9][0-9]*)$")


@dataclasses.dataclass(frozen=True)
class Upcaster:
    """``convert`` turns a ``source`` event into the ``target`` version of the same event.

    Both must be versions of one event (``post.liked.v1`` to ``post.liked.v2``), the target the
    later one. ``convert`` must be deterministic: it runs on every delivery, redeliveries too.
    """

    source: type[Event]
    target: type[Event]
    convert: Callable[[Any], Event]

    def __post_init__(self) -> None:
        old, new = _version(self.source), _version(self.target)
        if old[0] != new[0] or old[1] >= new[1]:
            raise TopologyError(
                f"an upcaster goes from one version of an event to a later one of the same "
                f"event (post.liked.v1 to post.liked.v2); found {self.source.event_type} to "
                f"{self.target.event_type}"
            )


def chains(upcasters: Iterable[Upcaster]) -> dict[str, Upcaster]:
    """Source event type -> its upcaster; one per source, so every chain is unambiguous.

    Raises:
        TopologyError: two upcasters from the same event type.
    """
    by_source: dict[str, Upcaster] = {}
    for upcaster in upcasters:
        other = by_source.setdefault(upcaster.source.event_type, upcaster)
        if other is not upcaster:
            raise TopologyError(
                f"two upcasters from {upcaster.source.event_type}: to "
                f"{other.target.event_type} and to {upcaster.target.event_type}; "
                "declare one, and chain the versions (v1 to v2, v2 to v3)"
            )
    return by_source


def upcast(event: Event, accepts: Collection[str], by_source: Mapping[str, Upcaster]) -> Event:
    """``event`` as the first later version of it that ``accepts`` names (itself if accepted).

    Raises:
        PermanentError: no chain of upcasters leads to an accepted version, an upcaster raised,
            or it returned something else than its target (the message is dead-lettered; replay
            it once the upcaster is fixed).
    """
    current = event
    while current.event_type not in accepts:
        upcaster = by_source.get(current.event_type)
        if upcaster is None:
            return current  # the caller refuses it as an unsupported type
        try:
            converted = upcaster.convert(current)
        except Exception as exc:  # noqa: BLE001 - deterministic code: retrying cannot help
            # Its message may quote the event: only the type of the failure is said.
            raise PermanentError(
                f"upcasting {current.event_type} to {upcaster.target.event_type} failed: "
                f"{type(exc).__name__}"
            ) from None
        if type(converted) is not upcaster.target:
            raise PermanentError(
                f"the upcaster from {current.event_type} returned "
                f"{type(converted).__name__}, not {upcaster.target.__name__}"
            )
        current = converted
    return current


def _version(model: type[Event]) -> tuple[str, int]:
    match = _VERSION.match(model.event_type)
    if match is None:  # Event subclasses are checked to end in .vN when declared
        raise TopologyError(f"{model.event_type!r} does not end in a version")
    return match["family"], int(match["version"])
