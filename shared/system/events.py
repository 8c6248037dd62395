"""Event contracts of the example system (data only; the envelope is added on publish)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Event, Sensitive, SensitiveKeys

Id = Annotated[str, Field(min_length=1, max_length=128)]

# Profile fields whose old and new values must never be stored or logged.
SENSITIVE_PROFILE_FIELDS = ("email", "phone", "address")


class PostLiked(Event):
    """A user liked a post."""

    event_type: ClassVar[str] = "post.liked.v1"
    subject_field: ClassVar[str | None] = "post_id"
    actor_field: ClassVar[str | None] = "liker_id"

    post_id: Id
    liker_id: Id
    author_id: Id
    liked_at: datetime


# v1's fields are repeated, not inherited: a handler of PostLiked takes its subclasses, and must
# not be handed v2 events it was not written for.
class PostLikedV2(Event):
    """A user reacted to a post: v2 says how. Published beside v1 while producers move over;
    a v1 event is a v2 ``"like"`` (see :func:`post_liked_v1_to_v2`)."""

    event_type: ClassVar[str] = "post.liked.v2"
    subject_field: ClassVar[str | None] = "post_id"
    actor_field: ClassVar[str | None] = "liker_id"

    post_id: Id
    liker_id: Id
    author_id: Id
    liked_at: datetime
    reaction: Literal["like", "love", "laugh", "wow"]


def post_liked_v1_to_v2(event: PostLiked) -> PostLikedV2:
    """The upcaster from v1 to v2: every v1 like was a plain ``"like"``."""
    return PostLikedV2(**event.model_dump(), reaction="like")


class FieldChange(BaseModel):
    """The old and new value of one changed profile field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    old: Any = None
    new: Any = None


class UserUpdated(Event):
    """A user's profile changed; ``changes`` maps each field to its old and new value."""

    event_type: ClassVar[str] = "user.updated.v1"
    subject_field: ClassVar[str | None] = "user_id"
    actor_field: ClassVar[str | None] = "changed_by"

    user_id: Id
    changed_by: Id
    changes: Annotated[dict[str, FieldChange], SensitiveKeys(*SENSITIVE_PROFILE_FIELDS)]
    email: Annotated[str | None, Sensitive] = None


class OrderDispatched(Event):
    """An order left the warehouse."""

    event_type: ClassVar[str] = "order.dispatched.v1"
    subject_field: ClassVar[str | None] = "order_id"
    actor_field: ClassVar[str | None] = "customer_id"

    order_id: Id
    customer_id: Id
    carrier: Annotated[str, Field(min_length=1, max_length=64)]
    dispatched_at: datetime


class NotificationRequested(Event):
    """Somebody should tell a customer something."""

    event_type: ClassVar[str] = "notification.requested.v1"
    subject_field: ClassVar[str | None] = "customer_id"
    actor_field: ClassVar[str | None] = "customer_id"

    customer_id: Id
    channel: Literal["email", "sms", "push"]
    template: Annotated[str, Field(min_length=1, max_length=64)]
    order_id: Id | None = None
