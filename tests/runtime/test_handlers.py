"""Handlers: their shape, and the event types their annotation (or ``accepts=``) says they take."""

from __future__ import annotations

import typing
from typing import Any, ClassVar

import pytest

from shared import Delivery, Event, TopologyError
from shared.runtime.handlers import accepted_types, takes_delivery
from shared.system.events import OrderDispatched, UserUpdated


class Liked(Event):
    """An abstract base: no event_type, so it is not a type on the wire, only a family."""

    post_id: str


class LikedV1(Liked):
    event_type: ClassVar[str] = "test.liked.v1"


class LikedV2(Liked):
    event_type: ClassVar[str] = "test.liked.v2"
    reaction: str = "like"


CARRIED: list[type[Event]] = [LikedV1, LikedV2, OrderDispatched]
EVERYTHING = frozenset({"test.liked.v1", "test.liked.v2", "order.dispatched.v1"})


def takes(handler: Any, accepts: list[type[Event]] | None = None) -> frozenset[str]:
    return accepted_types(handler, "activity", CARRIED, accepts)


# -- the shape: (event) or (event, delivery) ---------------------------------------------------


def event_only(event: Any) -> None: ...


def event_and_delivery(event: Any, delivery: Delivery) -> None: ...


def event_with_options(event: Any, *, dry_run: bool = False) -> None: ...


def everything_positional(*args: Any) -> None: ...


def event_then_rest(event: Any, *rest: Any) -> None: ...


def no_parameters() -> None: ...


def three_parameters(event: Any, delivery: Any, extra: Any) -> None: ...


class CallableHandler:
    def __call__(self, event: Any, delivery: Any, extra: Any) -> None: ...


@pytest.mark.parametrize(
    ("handler", "wants_delivery"),
    [
        (event_only, False),
        (event_with_options, False),
        (event_and_delivery, True),
        (everything_positional, True),
        (event_then_rest, True),
    ],
)
def test_a_handler_gets_the_delivery_when_it_takes_a_second_positional_argument(
    handler, wants_delivery
):
    assert takes_delivery(handler) is wants_delivery


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            no_parameters,
            "handler 'no_parameters' must take (event) or (event, delivery); "
            "found 0 positional parameters",
        ),
        (
            three_parameters,
            "handler 'three_parameters' must take (event) or (event, delivery); "
            "found 3 positional parameters",
        ),
    ],
)
def test_any_other_shape_is_refused_naming_the_handler(handler, message):
    with pytest.raises(TypeError) as info:
        takes_delivery(handler)
    assert str(info.value) == message


def test_a_callable_object_without_a_name_is_named_by_its_repr():
    handler = CallableHandler()
    with pytest.raises(TypeError, match="found 3 positional") as info:
        takes_delivery(handler)
    assert str(info.value).startswith(f"handler {repr(handler)!r} must take")


# -- the types: from the annotation of the event parameter ---------------------------------------


def handle_v1(event: LikedV1, delivery: Delivery) -> None: ...


def handle_both(event: LikedV1 | LikedV2) -> None: ...


def handle_both_old_style(event: typing.Union[LikedV1, LikedV2]) -> None: ...  # noqa: UP007


def handle_family(event: Liked) -> None: ...


def handle_any_event(event: Event) -> None: ...


def handle_anything(event: Any) -> None: ...


def handle_unannotated(event, delivery): ...


def handle_optional(event: LikedV1 | None) -> None: ...


def handle_optional_old_style(event: typing.Optional[LikedV1]) -> None: ...  # noqa: UP045


def handle_int(event: int) -> None: ...


def handle_profile(event: UserUpdated) -> None: ...


def test_a_class_annotation_takes_that_type_only():
    assert takes(handle_v1) == {"test.liked.v1"}


@pytest.mark.parametrize("handler", [handle_both, handle_both_old_style])
def test_a_union_takes_each_of_its_members(handler):
    assert takes(handler) == {"test.liked.v1", "test.liked.v2"}


def test_an_abstract_base_takes_every_carried_type_derived_from_it():
    assert takes(handle_family) == {"test.liked.v1", "test.liked.v2"}


@pytest.mark.parametrize("handler", [handle_any_event, handle_anything, handle_unannotated])
def test_event_any_or_no_annotation_takes_every_carried_type(handler):
    assert takes(handler) == EVERYTHING


def test_accepts_overrides_the_annotation():
    assert takes(handle_v1, accepts=[OrderDispatched]) == {"order.dispatched.v1"}
    assert takes(handle_unannotated, accepts=[LikedV2]) == {"test.liked.v2"}


def test_string_annotations_are_resolved_in_the_handlers_module():
    def handle(event: LikedV2) -> None: ...  # a string under `from __future__ import annotations`

    assert handle.__annotations__["event"] == "LikedV2"
    assert takes(handle) == {"test.liked.v2"}


def test_an_annotation_that_cannot_be_resolved_says_so_when_declared():
    class Local(Event):
        event_type: ClassVar[str] = "test.local.v1"

    def handle(event: Local) -> None: ...  # "Local" is not a name of this module

    with pytest.raises(TopologyError) as info:
        takes(handle)
    assert str(info.value).startswith(
        "cannot read the event annotation of handler "
        "'test_an_annotation_that_cannot_be_resolved_says_so_when_declared.<locals>.handle': "
    )
    assert "Local" in str(info.value)


@pytest.mark.parametrize(
    ("handler", "found"),
    [
        (handle_optional, "<class 'NoneType'>"),
        (handle_optional_old_style, "<class 'NoneType'>"),
        (handle_int, "<class 'int'>"),
    ],
)
def test_an_annotation_that_is_not_event_classes_is_refused(handler, found):
    with pytest.raises(TopologyError) as info:
        takes(handler)
    assert str(info.value) == (
        f"handler {handler.__qualname__!r}: the event parameter must be annotated with Event "
        f"classes (or a union of them); found {found}"
    )


def test_a_type_the_consumers_topics_do_not_carry_is_refused_naming_what_they_carry():
    with pytest.raises(TopologyError) as info:
        takes(handle_profile)
    assert str(info.value) == (
        "handler 'handle_profile' takes UserUpdated, but the topics of consumer 'activity' "
        "carry only order.dispatched.v1, test.liked.v1, test.liked.v2"
    )
