"""Typed events: the base model, sensitive-field markers, and the type registry.

An event is a pydantic model whose class names its versioned type::

    from typing import Annotated, ClassVar
    from shared import Event, Sensitive

    class UserUpdated(Event):
        event_type: ClassVar[str] = "user.updated.v1"
        subject_field: ClassVar[str | None] = "user_id"   # becomes ce-subject
        actor_field: ClassVar[str | None] = "changed_by"  # who did it, for the audit log

        user_id: str
        changed_by: str
        email: Annotated[str | None, Sensitive] = None

The model is the event's *data*; the CloudEvents envelope (id, source, time, correlation id,
trace context) is added by the publisher and handed to consumers beside the event. A new,
incompatible shape is a new type (``user.updated.v2``), registered next to the old one.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic import ValidationError as _PydanticValidationError

from shared import _unknown
from shared.errors import EventValidationError, TopologyError, UnknownEventTypeError

if TYPE_CHECKING:
    from pydantic import GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema

REDACTED = "[redacted]"

# Lower-case dotted name ending in a version: "post.liked.v1", "billing.invoice_paid.v12".
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$")


class _SensitiveMarker:
    """Marks a field whose value must never reach logs, the audit store or error messages."""

    def __repr__(self) -> str:
        return "Sensitive"

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-sensitive"] = True
        return schema


Sensitive = _SensitiveMarker()
"""Annotate a field with it (``Annotated[str, Sensitive]``) to have it redacted."""


class SensitiveKeys:
    """Marks the entries of a mapping field whose *keys* name sensitive data.

    ``changes: Annotated[dict[str, Change], SensitiveKeys("email", "phone")]`` redacts the values
    stored under ``"email"`` and ``"phone"`` and leaves the other entries readable. Keys match
    whatever their case (``"Email"``), and at any depth inside the field
    (``changes["profile"].new["email"]``).
    """

    def __init__(self, *keys: str) -> None:
        self.keys = frozenset(keys)
        self.folded = frozenset(k.casefold() for k in keys)  # matched case-insensitively

    def __repr__(self) -> str:
        return f"SensitiveKeys({', '.join(sorted(self.keys))})"

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-sensitive-keys"] = sorted(self.keys)
        return schema


class Event(BaseModel):
    """Base of every event model.

    Class attributes a subclass sets:
        event_type: the versioned CloudEvents type, e.g. ``"post.liked.v1"`` (required).
        subject_field: name of the field sent as ``ce-subject`` (what the event is about).
        actor_field: name of the field that says who caused the event (for the audit log).

    Events are immutable. Strict writer, tolerant reader: constructing (publishing) an event
    refuses unknown fields, so a typo in a producer fails at publish time instead of being
    dropped on the floor; reading one (:meth:`EventRegistry.read`, what consumers do) sets aside
    fields a newer producer added, so a compatible change to a contract breaks no consumer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    subject_field: ClassVar[str | None] = None
    actor_field: ClassVar[str | None] = None

    _unknown_fields: tuple[_unknown.Path, ...] = PrivateAttr(default=())

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is None:
            return  # an abstract intermediate base; concrete events set event_type
        if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
            raise TopologyError(
                f"{cls.__name__}.event_type must be a dotted lower-case name ending in a version, "
                f"like 'post.liked.v1'; found {event_type!r}"
            )
        for attr in ("subject_field", "actor_field"):
            name = getattr(cls, attr)
            if name is not None and name not in cls.model_fields:
                raise TopologyError(
                    f"{cls.__name__}.{attr} names {name!r}, which is not one of its fields "
                    f"({', '.join(cls.model_fields)})"
                )

    @property
    def subject(self) -> str | None:
        """The value of ``subject_field``, sent as ``ce-subject``."""
        value = None if self.subject_field is None else getattr(self, self.subject_field)
        return None if value is None else str(value)

    @property
    def actor(self) -> str | None:
        """The value of ``actor_field``: who caused this event."""
        value = None if self.actor_field is None else getattr(self, self.actor_field)
        return None if value is None else str(value)

    @property
    def unknown_fields(self) -> tuple[tuple[str | int, ...], ...]:
        """Paths of the fields the producer sent that this model does not declare (a newer
        version's), set aside when the event was read; their values are not kept."""
        return self._unknown_fields

    def redacted(self) -> dict[str, Any]:
        """This event's data as JSON-ready values, with every sensitive value replaced.

        Use it wherever event data leaves the handler for humans: logs, the audit store,
        error reports. Unknown fields appear with the value ``[redacted]``: whether the newer
        model that declares them marks them sensitive cannot be known here.
        """
        return _unknown.mark(_redact_model(self), self._unknown_fields, REDACTED)

    @classmethod
    def sensitive_fields(cls) -> list[str]:
        """Names of the fields marked :data:`Sensitive` (top level)."""
        return [name for name, info in cls.model_fields.items() if _is_sensitive(info.metadata)]

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of this event type's data, for other languages."""
        schema = cls.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:pubsub-kit:event:{cls.event_type}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-event-type"] = cls.event_type
        return schema


def _is_sensitive(metadata: Iterable[Any]) -> bool:
    return any(item is Sensitive for item in metadata)


def _sensitive_keys(metadata: Iterable[Any]) -> frozenset[str]:
    keys: frozenset[str] = frozenset()
    for item in metadata:
        if isinstance(item, SensitiveKeys):
            keys |= item.folded
    return keys


def _redact_model(model: BaseModel, sensitive_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``model`` as on the wire (by alias), with sensitive values replaced.

    ``sensitive_keys`` (case-folded) come from a :class:`SensitiveKeys` above: inside that field,
    an entry or a field of that name is redacted however deep it sits.
    """
    out: dict[str, Any] = {}
    dumped = model.model_dump(mode="json", by_alias=True)
    for name, info in type(model).model_fields.items():
        key = info.serialization_alias or name  # an alias is also the serialization alias
        if key not in dumped:
            continue
        value = getattr(model, name)
        if _is_sensitive(info.metadata) or key.casefold() in sensitive_keys:
            out[key] = None if value is None else REDACTED
        else:
            keys = sensitive_keys | _sensitive_keys(info.metadata)
            out[key] = _redact_value(value, dumped[key], keys)
    return out


def _redact_value(value: Any, dumped: Any, sensitive_keys: frozenset[str]) -> Any:
    if isinstance(value, BaseModel):
        return _redact_model(value, sensitive_keys)
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED
            if str(k).casefold() in sensitive_keys
            else _redact_value(v, dumped[str(k)], sensitive_keys)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset | deque):  # dumped in the same order
        return [_redact_value(v, d, sensitive_keys) for v, d in zip(value, dumped, strict=True)]
    return dumped


class EventRegistry:
    """Maps event types to their models; decoding looks types up here.

    A topology builds one from the events it declares, so there is no global registry: what a
    consumer can decode is exactly what its topology says.
    """

    def __init__(self, models: Iterable[type[Event]] = ()) -> None:
        self._models: dict[str, type[Event]] = {}
        for model in models:
            self.register(model)

    def register(self, model: type[Event]) -> type[Event]:
        """Add ``model``; registering the same class twice is harmless, a clash is an error."""
        if not (isinstance(model, type) and issubclass(model, Event)) or "event_type" not in vars(
            model
        ):
            raise TopologyError(f"{model!r} is not an Event subclass with an event_type")
        existing = self._models.get(model.event_type)
        if existing is not None and existing is not model:
            raise TopologyError(
                f"event type {model.event_type!r} is declared twice: by {existing.__name__} "
                f"and by {model.__name__}"
            )
        self._models[model.event_type] = model
        return model

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._models

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._models.values(), key=lambda m: m.event_type))

    def __len__(self) -> int:
        return len(self._models)

    @property
    def types(self) -> list[str]:
        return sorted(self._models)

    def model_for(self, event_type: str | None) -> type[Event]:
        """The model of ``event_type``; raises :class:`UnknownEventTypeError` if none."""
        if event_type is None or event_type not in self._models:
            raise UnknownEventTypeError(event_type, self.types)
        return self._models[event_type]

    def read(self, event_type: str | None, data: Mapping[str, Any]) -> Event:
        """Validate ``data`` as a consumer reads it: a tolerant reader.

        Fields the model does not declare, at any depth, are set aside (see
        :attr:`Event.unknown_fields`) instead of refused: a producer on a newer, compatible
        version of the contract added them. Everything else is as strict as :meth:`parse`.

        Raises:
            UnknownEventTypeError: the type is not registered.
            EventValidationError: the data does not fit the model, unknown fields aside.
        """
        model = self.model_for(event_type)
        try:
            return model.model_validate(data)
        except _PydanticValidationError as exc:
            errors = exc.errors(include_input=False)
        extra = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
        if not extra:
            raise _invalid(model, errors, data)
        kept, unknown = _unknown.set_aside(data, extra)
        try:
            event = model.model_validate(kept)
        except _PydanticValidationError as exc:
            raise _invalid(model, exc.errors(include_input=False), data) from None
        event._unknown_fields = tuple(unknown)
        return event

    def parse(self, event_type: str | None, data: bytes | str | Mapping[str, Any]) -> Event:
        """Validate ``data`` (JSON bytes/text or a mapping) against ``event_type``'s model, as
        strictly as a writer must: an unknown field is an error.

        Raises:
            UnknownEventTypeError: the type is not registered.
            EventValidationError: the data does not fit; names the type and the fields.
        """
        model = self.model_for(event_type)
        try:
            if isinstance(data, Mapping):
                return model.model_validate(data)
            return model.model_validate_json(data)
        except _PydanticValidationError as exc:
            payload = data if isinstance(data, Mapping) else _json_or_none(data)
            raise _invalid(model, exc.errors(include_input=False), payload) from None


def _invalid(model: type[Event], errors: Iterable[Any], payload: Any) -> EventValidationError:
    """The validation error to raise: each problem at a path that names no producer's word."""
    problems = [(safe_path(model, err["loc"], payload), err["msg"]) for err in errors]
    return EventValidationError(model.event_type, problems)


def safe_path(model: type[BaseModel], loc: Iterable[int | str], payload: Any) -> str:
    """The dotted path of a validation error, naming what the producer chose only by position.

    A mapping's keys and a model's unknown fields are the producer's words, and a key can be the
    sensitive value itself (``changes: {"email": {"alice@example.com": 1}}``): they appear as
    their position among the keys of ``payload`` there (``[key 2]``, ``[field 1]``, or ``?`` when
    ``payload`` does not hold them), never as themselves. Declared field names (or their aliases)
    and list indexes are kept, so ``changes[key 1].new`` still says where to look. Inside a union
    (``A | B``; ``A | None`` is just ``A``) every name is a position: pydantic's names for the
    members are not told apart from the producer's words.
    """
    path = ""
    kind: Any = model
    for item in loc:
        kind = _unwrap(kind)
        fields = _fields_of(kind)
        if item in fields:
            path, kind = f"{path}.{item}", fields[item]
        elif isinstance(item, int) and isinstance(payload, list | tuple):
            path, kind = f"{path}[{item}]", _item_type(kind, item)
        else:  # a mapping's key (an int one too), an undeclared field, a union's member
            label = "key" if _is_mapping(kind) else "field"
            path, kind = f"{path}[{label} {_position(payload, item)}]", _value_type(kind)
        payload = _get(payload, item)
    return path.removeprefix(".")


def _json_or_none(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _unwrap(kind: Any) -> Any:
    """``Annotated[X, ...]``, ``X | None`` and ``RootModel[X]`` as ``X``; a union as ``None``."""
    if _is_root_model(kind):  # its errors' loc has no "root"
        return _unwrap(kind.model_fields["root"].annotation)
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(kind) if m is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else None
    return kind


def _is_root_model(kind: Any) -> bool:
    # Not imported to look: pydantic.root_model costs start-up time, and until something has
    # imported it, no RootModel class exists.
    root_model = sys.modules.get("pydantic.root_model")
    if root_model is None:
        return False
    return isinstance(kind, type) and issubclass(kind, root_model.RootModel)


def _fields_of(kind: Any) -> dict[str, Any]:
    """Field names and their aliases -> annotation, for a model class; empty for anything else."""
    return {
        key: info.annotation
        for name, info in getattr(kind, "model_fields", {}).items()
        for key in (name, info.validation_alias)
        if isinstance(key, str)  # an AliasPath or AliasChoices is not named
    }


def _is_mapping(kind: Any) -> bool:
    origin = typing.get_origin(kind) or kind
    return isinstance(origin, type) and issubclass(origin, Mapping)


def _item_type(kind: Any, index: int) -> Any:
    """The declared type of item ``index`` of a list, set or tuple type."""
    args = [arg for arg in typing.get_args(kind) if arg is not Ellipsis] or [None]
    return args[min(index, len(args) - 1)]  # a tuple[A, B] declares one type per position


def _value_type(kind: Any) -> Any:
    """The declared type of a mapping type's values; ``None`` for a model or no type."""
    return (typing.get_args(kind) or (None,))[-1]


def _get(payload: Any, item: int | str) -> Any:
    if isinstance(payload, Mapping):
        return payload.get(item)  # a defaultdict's [] would add the key to the producer's data
    try:
        return payload[item]
    except (LookupError, TypeError):
        return None


def _position(payload: Any, item: int | str) -> str:
    """1-based position of ``item`` among ``payload``'s keys, or ``?`` when it cannot be told."""
    keys = list(payload) if isinstance(payload, Mapping) else []
    return str(keys.index(item) + 1) if item in keys else "?"
