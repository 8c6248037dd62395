"""The comparison: two JSON Schemas walked side by side, ``$ref`` followed, unions paired.

Objects are compared field by field and arrays position by position; what one keyword says is
judged in :mod:`shared.tools.compat._keywords`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from shared.errors import ToolkitError
from shared.tools.compat._keywords import (
    _body,
    _compare_bounds,
    _compare_enum,
    _compare_multiple,
    _compare_notes,
    _compare_text,
    _compare_unchecked,
    _compare_unique,
    _notes,
    _values,
)
from shared.tools.compat._rules import Change, Rule
from shared.tools.compat._shape import Schema, _pointer

# --- contracts: what changed per event type -------------------------------------------------


def compare_contracts(
    old: Mapping[str, Schema], new: Mapping[str, Schema], *, retire: Iterable[str] = ()
) -> list[Change]:
    """Every change from the ``old`` contracts to the ``new`` ones (event type -> JSON Schema).

    Args:
        old: the checked-in (or a git ref's) schemas.
        new: the schemas of the current models.
        retire: event types that are meant to be gone: reported, but not breaking.

    Returns:
        The changes, sorted by event type; a type present in both keeps its fields' order.

    Raises:
        ToolkitError: a type in ``retire`` is still in ``new``.
    """
    retired = set(retire)
    still_declared = sorted(retired & set(new))
    if still_declared:
        raise ToolkitError(
            f"--retire {still_declared[0]}: the topology still declares it; "
            "remove its model first, or leave it out of --retire"
        )
    changes: list[Change] = []
    for event_type in sorted(set(old) | set(new)):
        if event_type not in new:
            rule = Rule.RETIRED_DECLARED if event_type in retired else Rule.RETIRED
            changes.append(Change(event_type, "", rule))
        elif event_type not in old:
            changes.append(Change(event_type, "", Rule.NEW_TYPE))
        else:
            changes += compare_schemas(event_type, old[event_type], new[event_type])
    return changes


def compare_schemas(event_type: str, old: Schema, new: Schema) -> list[Change]:
    """The changes from ``old`` to ``new``, two JSON Schemas of ``event_type``'s data.

    Both must be well-formed (:func:`check_shape`); pydantic's always are.
    """
    walk = _Walk(old, new)
    _compare(walk, "", old, new)
    seen: set[tuple[str, Rule, str]] = set()
    changes = []
    for found in walk.found:
        if found not in seen:  # alternatives compared twice report the same thing twice
            seen.add(found)
            changes.append(Change(event_type, *found))
    return changes


# --- the comparison ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Walk:
    """The state of one comparison: both roots (for ``$ref``), what was found, cycle guard."""

    old_root: Schema
    new_root: Schema
    found: list[tuple[str, Rule, str]] = dataclasses.field(default_factory=list)
    # Pairs of $ref chains being compared further up: a recursive model stops there.
    expanding: set[tuple[tuple[str, ...], tuple[str, ...]]] = dataclasses.field(default_factory=set)

    def add(self, path: str, rule: Rule, detail: str = "") -> None:
        self.found.append((path, rule, detail))

    def fork(self) -> _Walk:
        """A walk that records into its own list, to try one pairing of alternatives."""
        return _Walk(self.old_root, self.new_root, [], self.expanding)


@dataclasses.dataclass(frozen=True)
class _Alternative:
    """One member of a union (or the whole schema when it is not one), ``$ref`` followed."""

    schema: dict[str, Any]
    refs: tuple[str, ...]  # the $refs followed to get here
    kind: str  # JSON type, "any" when unconstrained, "enum" for mixed-type enums
    member: bool  # a member of an anyOf/oneOf, whose own annotations count


def _compare(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Compare two schemas of the same place in the event, recording what changed."""
    old_resolved, old_refs = _resolve(walk.old_root, old)
    new_resolved, new_refs = _resolve(walk.new_root, new)
    _compare_notes(walk, path, _notes(old_resolved), _notes(new_resolved))
    _compare_alternatives(
        walk,
        path,
        _alternatives(walk.old_root, old_resolved, old_refs),
        _alternatives(walk.new_root, new_resolved, new_refs),
    )


def _resolve(root: Schema, schema: Schema) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``schema`` with local ``$ref`` and one-member ``allOf`` merged in (its own keys win)."""
    current = dict(schema)
    refs: list[str] = []
    while True:
        ref = current.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref not in refs:
            refs.append(current.pop("$ref"))
            current = {**(_pointer(root, ref) or {}), **current}
        elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
            (only,) = current.pop("allOf")
            inner, inner_refs = _resolve(root, only)
            refs += inner_refs
            current = {**inner, **current}
        else:
            return current, tuple(refs)


def _alternatives(
    root: Schema, schema: Schema, refs: tuple[str, ...], member: bool = False
) -> list[_Alternative]:
    """The union members of ``schema`` (flattened, ``$ref`` followed), or ``schema`` itself."""
    members = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(members, list):
        shared = {k: v for k, v in _body(schema).items() if k not in ("anyOf", "oneOf")}
        found = []
        for item in members:
            resolved, item_refs = _resolve(root, item)
            if set(item_refs) & set(refs):
                continue  # a union that contains itself adds nothing
            found += _alternatives(root, {**shared, **resolved}, refs + item_refs, member=True)
        return found
    body = schema if member else _body(schema)
    types = body.get("type")
    if isinstance(types, list):  # {"type": ["string", "null"]} is a union too
        return [_Alternative({**body, "type": t}, refs, t, member) for t in dict.fromkeys(types)]
    return [_Alternative(dict(body), refs, _kind(body), member)]


def _kind(schema: Schema) -> str:
    """The JSON type of the values ``schema`` accepts, as far as the comparison needs it."""
    if isinstance(schema.get("type"), str):
        return str(schema["type"])
    values = _values(schema)
    if values is not None:
        kinds = {_json_type(value) for value in values}
        return kinds.pop() if len(kinds) == 1 else "enum"
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "any"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "any")


def _covers(old_kind: str, new_kind: str) -> bool:
    """Whether every value of ``old_kind`` is of ``new_kind`` (before constraints)."""
    return (
        old_kind == new_kind or new_kind == "any" or (old_kind, new_kind) == ("integer", "number")
    )


def _describe(kinds: Iterable[str]) -> str:
    names = {"any": "any value", "enum": "a mixed enum"}
    return " or ".join(names.get(kind, kind) for kind in dict.fromkeys(kinds))


def _label(alternative: _Alternative) -> str:
    """``null``, ``string``, or ``object 'Refund'`` for a model."""
    title = alternative.schema.get("title")
    kind = _describe([alternative.kind])
    return f"{kind} {title!r}" if alternative.kind == "object" and isinstance(title, str) else kind


def _compare_alternatives(
    walk: _Walk, path: str, old: list[_Alternative], new: list[_Alternative]
) -> None:
    """Pair each old alternative with the new one that covers it best, and compare them."""
    used: set[int] = set()
    lost: list[str] = []
    for alternative in old:
        best = _pair(walk, path, alternative, new, used)
        if best is None:
            lost.append(alternative.kind)
        else:
            used.add(best)
    if lost and len(lost) == len(old):
        walk.add(path, Rule.TYPE_CHANGED, f"{_describe(lost)} to {_describe(n.kind for n in new)}")
        return
    if lost:
        walk.add(path, Rule.TYPE_CHANGED, f"{_describe(lost)} no longer allowed")
    gained = [_label(n) for i, n in enumerate(new) if i not in used and _adds(walk, path, n, old)]
    if gained:  # a union member added, e.g. null or another model
        walk.add(path, Rule.TYPE_WIDENED, f"now also {' or '.join(dict.fromkeys(gained))}")


def _pair(
    walk: _Walk, path: str, old: _Alternative, new: list[_Alternative], used: set[int]
) -> int | None:
    """Compare ``old`` with its best-fitting new alternative; that one's index, or ``None``."""
    trials = [(_try(walk, path, old, n), i) for i, n in enumerate(new) if _covers(old.kind, n.kind)]
    if not trials:
        return None
    found, best = min(
        trials, key=lambda trial: _cost(trial[0], old, new[trial[1]], trial[1] in used)
    )
    if new[best].kind != old.kind:
        widened = f"{_describe([old.kind])} to {_describe([new[best].kind])}"
        walk.add(path, Rule.TYPE_WIDENED, widened)
    walk.found += found
    return best


def _try(
    walk: _Walk, path: str, old: _Alternative, new: _Alternative
) -> list[tuple[str, Rule, str]]:
    trial = walk.fork()
    _compare_pair(trial, path, old, new)
    return trial.found


def _cost(
    found: list[tuple[str, Rule, str]], old: _Alternative, new: _Alternative, used: bool
) -> tuple[int, bool, bool, int]:
    """Fewest breaking changes first, then the same type, then one not yet paired, then fewest
    changes."""
    return (sum(rule.breaking for _, rule, _ in found), old.kind != new.kind, used, len(found))


def _adds(walk: _Walk, path: str, new: _Alternative, old: list[_Alternative]) -> bool:
    """Whether the unpaired alternative ``new`` accepts values no ``old`` one did.

    It does not when, compared the other way round (as if ``new`` were the old contract), some
    old alternative takes it without a breaking change.
    """
    backwards = _Walk(walk.new_root, walk.old_root)
    for alternative in old:
        if _covers(new.kind, alternative.kind):
            found = _try(backwards, path, new, alternative)
            if not any(rule.breaking for _, rule, _ in found):
                return False
    return True


def _compare_pair(walk: _Walk, path: str, old: _Alternative, new: _Alternative) -> None:
    """Compare two alternatives whose types match (or widen), keyword by keyword."""
    key = (old.refs, new.refs)
    if (old.refs or new.refs) and key in walk.expanding:
        return  # a recursive model: this pair is being compared further up
    walk.expanding.add(key)
    try:
        if old.member and new.member:
            _compare_notes(walk, path, _notes(old.schema), _notes(new.schema))
        o, n = old.schema, new.schema
        _compare_enum(walk, path, o, n)
        for keyword in ("format", "pattern"):
            _compare_text(walk, path, keyword, o.get(keyword), n.get(keyword))
        _compare_bounds(walk, path, o, n)
        _compare_multiple(walk, path, o.get("multipleOf"), n.get("multipleOf"))
        _compare_unique(walk, path, bool(o.get("uniqueItems")), bool(n.get("uniqueItems")))
        _compare_object(walk, path, o, n)
        _compare_array(walk, path, o, n)
        _compare_unchecked(walk, path, o, n)
    finally:
        walk.expanding.discard(key)


def _compare_object(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Fields one by one, then what the object says about fields it does not name."""
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    names = [*old_fields, *old_required, *new_fields, *new_required]
    for name in dict.fromkeys(names):
        where = _join(path, name)
        in_old = name in old_fields or name in old_required
        in_new = name in new_fields or name in new_required
        if not in_new:
            walk.add(where, Rule.FIELD_REMOVED)
        elif not in_old:
            walk.add(where, Rule.NEW_REQUIRED if name in new_required else Rule.NEW_OPTIONAL)
        else:
            if name in new_required and name not in old_required:
                walk.add(where, Rule.MADE_REQUIRED)
            elif name in old_required and name not in new_required:
                walk.add(where, Rule.MADE_OPTIONAL)
            _compare(walk, where, old_fields.get(name, {}), new_fields.get(name, {}))
    if "additionalProperties" in old or "additionalProperties" in new:
        _compare_open(
            walk,
            path,
            _join(path, "*"),
            old.get("additionalProperties", True),
            new.get("additionalProperties", True),
            "fields it does not name",
        )


def _compare_array(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Positions of a tuple (``prefixItems``), then the items after them (``items``)."""
    old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
    old_items, new_items = old.get("items", True), new.get("items", True)
    for index in range(max(len(old_prefix), len(new_prefix))):
        _compare_open(
            walk,
            path,
            f"{path}[{index}]",
            old_prefix[index] if index < len(old_prefix) else old_items,
            new_prefix[index] if index < len(new_prefix) else new_items,
            f"an item at position {index}",
        )
    if "items" in old or "items" in new:
        _compare_open(walk, path, f"{path}[]", old_items, new_items, "items")


def _compare_open(walk: _Walk, path: str, inner: str, old: Any, new: Any, what: str) -> None:
    """A schema that may be ``false`` (nothing allowed) or ``true`` (anything allowed)."""
    if old is False and new is False:
        return
    if old is False:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"{what} now allowed")
    elif new is False:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{what} no longer allowed")
    else:
        _compare(walk, inner, {} if old is True else old, {} if new is True else new)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
