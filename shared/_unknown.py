"""Fields a newer producer added: set aside when an event is read, redacted where it is shown.

A reader validates with the model it was built with. When a producer on a newer version of the
same event type sends a field this model does not declare, the field is taken out of the data
before validation (the event is handled, not dead-lettered) and its path is kept on the event.
Its value is not kept: this consumer's model cannot say whether the newer one marks it
sensitive, so wherever event data is shown (``Event.redacted()``: logs, the audit store) the
field appears under its name with the value ``[redacted]``. A name that does not look like a
field name (``alice@example.com``) may itself be data, and appears by position instead:
``[field 3]``, as in validation errors.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str | int, ...]

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def set_aside(
    payload: Mapping[str, Any], paths: Iterable[Path]
) -> tuple[dict[str, Any], list[Path]]:
    """``payload`` without the fields at ``paths``, and those paths with unsafe names replaced.

    The payload is copied, never changed: it may be the caller's.
    """
    kept = copy.deepcopy(dict(payload))
    found = []
    for path in paths:  # positions are counted before anything is taken out
        parent = _walk(kept, path[:-1])
        name = path[-1]
        if isinstance(parent, dict) and name in parent:
            found.append((parent, path, list(parent).index(name) + 1))
    shown: list[Path] = []
    for parent, path, position in found:
        name = path[-1]
        parent.pop(name, None)
        safe = isinstance(name, str) and _FIELD_NAME.match(name)
        shown.append((*path[:-1], name if safe else f"[field {position}]"))
    return kept, shown


def mark(redacted: dict[str, Any], paths: Iterable[Path], placeholder: str) -> dict[str, Any]:
    """``redacted`` (an event's redacted data) with ``placeholder`` at each unknown field's path.

    A path under a value that is already redacted as a whole (a sensitive key's entry) adds
    nothing: nothing below it is shown anyway.
    """
    for path in paths:
        parent = _walk(redacted, path[:-1])
        if isinstance(parent, dict):
            parent[path[-1]] = placeholder
    return redacted


def _walk(value: Any, path: Path) -> Any:
    """What sits at ``path`` inside ``value``; ``None`` when the path leads nowhere."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return None
    return value
