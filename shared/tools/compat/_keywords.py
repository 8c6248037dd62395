"""One keyword at a time: which keywords are annotations, and how a change in each is judged.

Enum and ``const`` values, ``format`` and ``pattern``, numeric bounds, ``multipleOf``,
``uniqueItems``, annotations and sensitivity markers, and any keyword the gate does not compare.
Each comparison records what it finds in the walk (:mod:`shared.tools.compat._compare`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from shared.tools.compat._rules import Rule
from shared.tools.compat._shape import _NUMBERS, Schema, _is_number

if TYPE_CHECKING:  # for annotations only: _compare imports this module
    from shared.tools.compat._compare import _Walk

# Keywords that describe rather than constrain; a change in them is compatible.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
    }
)
_SENSITIVITY = frozenset({"x-sensitive", "x-sensitive-keys"})
# Keywords that are the same by construction ($id, x-event-type), that hold what $ref points to
# ($defs), or whose effect is compared through the alternatives (discriminator).
_IGNORED = frozenset({"$id", "$schema", "$defs", "definitions", "x-event-type", "discriminator"})
# Keywords a pair of alternatives is compared on (besides the ones _resolve folds away).
_COMPARED = frozenset(
    {
        *_NUMBERS,
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "format",
        "pattern",
        "uniqueItems",
    }
)


def _notes(schema: Schema) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k in _ANNOTATIONS or _is_note(k)}


def _is_note(key: str) -> bool:
    """An annotation of ours or of a tool (``x-...``), sensitivity markers included."""
    return key.startswith("x-") and key != "x-event-type"


def _body(schema: Schema) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS and not _is_note(k)}


def _compare_notes(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Annotations and sensitivity markers: reported, never breaking."""
    changed = [
        key
        for key in sorted(set(old) | set(new))
        if key not in _SENSITIVITY and not _same(old.get(key), new.get(key))
    ]
    if changed:
        walk.add(path, Rule.ANNOTATION, ", ".join(changed))
    if bool(old.get("x-sensitive")) != bool(new.get("x-sensitive")):
        now = "now marked sensitive" if new.get("x-sensitive") else "no longer marked sensitive"
        walk.add(path, Rule.SENSITIVITY, now)
    old_keys = set(old.get("x-sensitive-keys") or ())
    new_keys = set(new.get("x-sensitive-keys") or ())
    if new_keys - old_keys:
        walk.add(
            path, Rule.SENSITIVITY, f"sensitive keys added: {_show(sorted(new_keys - old_keys))}"
        )
    if old_keys - new_keys:
        walk.add(
            path, Rule.SENSITIVITY, f"sensitive keys removed: {_show(sorted(old_keys - new_keys))}"
        )


def _values(schema: Schema) -> list[Any] | None:
    """The values an ``enum`` or ``const`` allows, or ``None`` when it has neither."""
    if "const" in schema:
        return [schema["const"]]
    enum_values = schema.get("enum")
    return list(enum_values) if isinstance(enum_values, list) else None


def _compare_enum(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    old_values, new_values = _values(old), _values(new)
    if old_values is None and new_values is None:
        return
    if new_values is None:
        walk.add(path, Rule.ENUM_WIDENED, f"no longer limited to {_show(old_values or [])}")
        return
    if old_values is None:
        walk.add(path, Rule.ENUM_NARROWED, f"now limited to {_show(new_values)}")
        return
    old_keys = {_canonical(v) for v in old_values}
    new_keys = {_canonical(v) for v in new_values}
    removed = [v for v in old_values if _canonical(v) not in new_keys]
    added = [v for v in new_values if _canonical(v) not in old_keys]
    if removed:
        walk.add(path, Rule.ENUM_NARROWED, f"{_show(removed)} no longer allowed")
    if added:
        walk.add(path, Rule.ENUM_WIDENED, f"{_show(added)} now allowed")


def _compare_text(walk: _Walk, path: str, keyword: str, old: Any, new: Any) -> None:
    """``format`` and ``pattern``: compared as text, so any change but a removal tightens."""
    if old == new:
        return
    if new is None:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"{keyword} {_show([old])} removed")
    elif old is None:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{keyword} {_show([new])} added")
    else:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{keyword} {_show([old])} to {_show([new])}")


@dataclasses.dataclass(frozen=True)
class _Bound:
    keyword: str
    value: Fraction
    exclusive: bool

    def __str__(self) -> str:
        return f"{self.keyword} {_number(self.value)}"


# (lower bound?, the keywords of the bound and whether each is exclusive)
_BOUNDS: tuple[tuple[bool, tuple[tuple[str, bool], ...]], ...] = (
    (True, (("minimum", False), ("exclusiveMinimum", True))),
    (False, (("maximum", False), ("exclusiveMaximum", True))),
    (True, (("minLength", False),)),
    (False, (("maxLength", False),)),
    (True, (("minItems", False),)),
    (False, (("maxItems", False),)),
    (True, (("minProperties", False),)),
    (False, (("maxProperties", False),)),
)


def _compare_bounds(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    for lower, keywords in _BOUNDS:
        old_bound = _bound(old, keywords, lower)
        new_bound = _bound(new, keywords, lower)
        if old_bound is None and new_bound is None:
            continue
        if new_bound is None:
            walk.add(path, Rule.CONSTRAINT_RELAXED, f"{old_bound} removed")
        elif old_bound is None:
            walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"{new_bound} added")
        elif _tighter(new_bound, old_bound, lower):
            walk.add(path, Rule.CONSTRAINT_TIGHTENED, _bound_change(old_bound, new_bound))
        elif _tighter(old_bound, new_bound, lower):
            walk.add(path, Rule.CONSTRAINT_RELAXED, _bound_change(old_bound, new_bound))


def _bound(schema: Schema, keywords: tuple[tuple[str, bool], ...], lower: bool) -> _Bound | None:
    """The tightest of ``schema``'s bounds among ``keywords``, or ``None``."""
    bounds = [
        _Bound(keyword, Fraction(str(schema[keyword])), exclusive)
        for keyword, exclusive in keywords
        if _is_number(schema.get(keyword))
    ]
    tightest = None
    for bound in bounds:
        if tightest is None or _tighter(bound, tightest, lower):
            tightest = bound
    return tightest


def _bound_change(old: _Bound, new: _Bound) -> str:
    """``maxLength 128 to 64``, or ``minimum 0 to exclusiveMinimum 0``."""
    if old.keyword == new.keyword:
        return f"{old} to {_number(new.value)}"
    return f"{old} to {new}"


def _tighter(a: _Bound, b: _Bound, lower: bool) -> bool:
    """Whether bound ``a`` allows strictly less than bound ``b``."""
    if a.value != b.value:
        return a.value > b.value if lower else a.value < b.value
    return a.exclusive and not b.exclusive


def _compare_multiple(walk: _Walk, path: str, old: Any, new: Any) -> None:
    """``multipleOf``: relaxed when every multiple of the old one is a multiple of the new one."""
    old_step = Fraction(str(old)) if _is_number(old) else None
    new_step = Fraction(str(new)) if _is_number(new) else None
    if old_step == new_step:
        return
    if new_step is None:
        walk.add(path, Rule.CONSTRAINT_RELAXED, f"multipleOf {_number(old_step)} removed")
    elif old_step is None:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, f"multipleOf {_number(new_step)} added")
    else:
        relaxed = new_step != 0 and (old_step / new_step).denominator == 1
        rule = Rule.CONSTRAINT_RELAXED if relaxed else Rule.CONSTRAINT_TIGHTENED
        walk.add(path, rule, f"multipleOf {_number(old_step)} to {_number(new_step)}")


def _compare_unique(walk: _Walk, path: str, old: bool, new: bool) -> None:
    if new and not old:
        walk.add(path, Rule.CONSTRAINT_TIGHTENED, "uniqueItems added")
    elif old and not new:
        walk.add(path, Rule.CONSTRAINT_RELAXED, "uniqueItems removed")


def _compare_unchecked(walk: _Walk, path: str, old: Schema, new: Schema) -> None:
    """Any other keyword: a change the gate cannot judge is assumed breaking."""
    known = _COMPARED | _IGNORED | {"anyOf", "oneOf"}
    for key in sorted((set(_body(old)) | set(_body(new))) - known):
        if not _same(old.get(key), new.get(key)):
            walk.add(path, Rule.UNCHECKED, key)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _same(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def _show(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else _canonical(v) for v in values)


def _number(value: Fraction | None) -> str:
    if value is None:
        return "none"
    return str(value.numerator) if value.denominator == 1 else str(float(value))
