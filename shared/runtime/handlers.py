"""Handlers: what a consumer's code looks like to the runtime, and which events it takes.

A handler is ``handler(event)`` or ``handler(event, delivery)``. The annotation of ``event``
says which event types it takes::

    def handle(event: PostLiked) -> None: ...                  # post.liked.v1 only
    def handle(event: PostLiked | PostLikedV2) -> None: ...    # both versions
    def handle(event: Event, delivery: Delivery) -> None: ...  # every type on its topics

A handler without an annotation takes every type on its consumer's topics, or those given as
``accepts=``. Messages of other types are dead-lettered as unsupported.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shared.errors import TopologyError
from shared.events import Event

Handler = Callable[..., object]
"""``handler(event)`` or ``handler(event, delivery)``; its return value is ignored."""


def takes_delivery(handler: Handler) -> bool:
    """Whether ``handler`` takes ``(event, delivery)`` rather than ``(event)``.

    Raises:
        TypeError: it takes neither shape.
    """
    params = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    if not params or (len(params) > 2 and not variadic):
        raise TypeError(
            f"handler {_name(handler)!r} must take (event) or (event, delivery); "
            f"found {len(params)} positional parameters"
        )
    return len(params) >= 2 or variadic


def accepted_types(
    handler: Handler,
    consumer: str,
    carried: Sequence[type[Event]],
    accepts: Iterable[type[Event]] | None = None,
) -> frozenset[str]:
    """The event types ``handler`` takes, out of those ``carried`` by its consumer's topics.

    Taken from ``accepts`` when given, else from the annotation of the handler's first
    parameter (an event class, a base class of several, or a union of them).

    Raises:
        TopologyError: a named type is not carried by any of the consumer's topics (raised when
            the handler is declared, i.e. when the function's module is imported).
    """
    wanted = list(accepts) if accepts is not None else _annotated(handler)
    if not wanted:
        return frozenset(m.event_type for m in carried)
    types_: set[str] = set()
    for model in wanted:
        matches = [m.event_type for m in carried if issubclass(m, model)]
        if not matches:
            raise TopologyError(
                f"handler {_name(handler)!r} takes {model.__name__}, but the topics of "
                f"consumer {consumer!r} carry only "
                f"{', '.join(sorted(m.event_type for m in carried))}"
            )
        types_.update(matches)
    return frozenset(types_)


def _annotated(handler: Handler) -> list[type[Event]]:
    """The event classes named by the first parameter's annotation; [] for none or ``Event``."""
    params = list(inspect.signature(handler).parameters.values())
    if not params or params[0].annotation is inspect.Parameter.empty:
        return []
    try:
        hint = typing.get_type_hints(handler).get(params[0].name)
    except Exception as exc:  # noqa: BLE001 - a name the annotation uses cannot be resolved
        raise TopologyError(
            f"cannot read the event annotation of handler {_name(handler)!r}: {exc}"
        ) from None
    members: tuple[Any, ...] = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    if any(m is Any for m in members):
        return []
    for member in members:
        if not (isinstance(member, type) and issubclass(member, Event)):
            raise TopologyError(
                f"handler {_name(handler)!r}: the event parameter must be annotated with Event "
                f"classes (or a union of them); found {member!r}"
            )
    return [] if Event in members else list(members)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
