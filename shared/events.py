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

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic import ValidationError as _PydanticValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shared.errors import EventValidationError, TopologyError, UnknownEventTypeError

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
    stored under ``"email"`` and ``"phone"`` and leaves the other entries readable.
    """

    def __init__(self, *keys: str) -> None:
        self.keys = frozenset(keys)

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

    Events are immutable and refuse unknown fields, so a typo in a producer fails at publish
    time instead of being dropped on the floor.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    subject_field: ClassVar[str | None] = None
    actor_field: ClassVar[str | None] = None

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
        return None if self.subject_field is None else str(getattr(self, self.subject_field))

    @property
    def actor(self) -> str | None:
        """The value of ``actor_field``: who caused this event."""
        return None if self.actor_field is None else str(getattr(self, self.actor_field))

    def redacted(self) -> dict[str, Any]:
        """This event's data as JSON-ready values, with every sensitive value replaced.

        Use it wherever event data leaves the handler for humans: logs, the audit store,
        error reports.
        """
        return _redact_model(self)

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
            keys |= item.keys
    return keys


def _redact_model(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dumped = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        if key not in dumped:
            continue
        value = getattr(model, name)
        if _is_sensitive(info.metadata):
            out[key] = None if value is None else REDACTED
        else:
            out[key] = _redact_value(value, dumped[key], _sensitive_keys(info.metadata))
    return out


def _redact_value(value: Any, dumped: Any, sensitive_keys: frozenset[str]) -> Any:
    if isinstance(value, BaseModel):
        return _redact_model(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if k in sensitive_keys else _redact_value(v, dumped[str(k)], frozenset())
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, d, frozenset()) for v, d in zip(value, dumped, strict=True)]
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

    def parse(self, event_type: str | None, data: bytes | str | Mapping[str, Any]) -> Event:
        """Validate ``data`` (JSON bytes/text or a mapping) against ``event_type``'s model.

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
            problems = [
                (".".join(str(p) for p in err["loc"]), err["msg"])
                for err in exc.errors(include_url=False, include_input=False)
            ]
            raise EventValidationError(model.event_type, problems) from None
