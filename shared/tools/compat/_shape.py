"""The shape a schema must have for the comparison, checked before any comparison."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shared.errors import ToolkitError

Schema = Mapping[str, Any]

_NUMBERS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_LISTS_OF_SCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAPS_OF_SCHEMAS = ("properties", "$defs")
_SCHEMA_OR_BOOL = ("items", "additionalProperties")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# (keywords, the test their value must pass, what was expected)
_SHAPES: tuple[tuple[tuple[str, ...], Callable[[Any], bool], str], ...] = (
    (_MAPS_OF_SCHEMAS, lambda v: isinstance(v, dict), "an object"),
    (_LISTS_OF_SCHEMAS, lambda v: isinstance(v, list) and bool(v), "a non-empty list"),
    (_SCHEMA_OR_BOOL, lambda v: isinstance(v, dict | bool), "a schema or a boolean"),
    (_NUMBERS, _is_number, "a number"),
    (("pattern", "format", "$ref"), lambda v: isinstance(v, str), "a string"),
    (("required", "x-sensitive-keys"), _is_names, "a list of names"),
    (("enum",), lambda v: isinstance(v, list), "a list"),
    (("type",), lambda v: isinstance(v, str) or _is_names(v), "a type name or a list of them"),
)


def check_shape(schema: Schema, source: str) -> None:
    """Refuse a schema whose keywords the comparison cannot read, with a sentence naming where.

    Raises:
        ToolkitError: e.g. ``properties`` is not an object, ``required`` is not a list of names,
            a bound is not a number, or a ``$ref`` points nowhere.
    """
    try:
        for where, node in _subschemas(schema, ""):
            problem = _shape_problem(schema, node)
            if problem:
                raise ToolkitError(
                    f"{source} is not a JSON Schema this gate can read: "
                    f"at '{where or '/'}', {problem}"
                )
    except RecursionError:
        raise ToolkitError(f"{source} is nested too deeply to be an event's schema") from None


def _subschemas(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, subschema) in ``node``, itself first; non-objects are yielded too."""
    yield where, node
    if not isinstance(node, dict):
        return
    for key in _MAPS_OF_SCHEMAS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                yield from _subschemas(sub, f"{where}/{key}/{name}")
    for key in _LISTS_OF_SCHEMAS:
        if isinstance(node.get(key), list):
            for index, sub in enumerate(node[key]):
                yield from _subschemas(sub, f"{where}/{key}/{index}")
    for key in _SCHEMA_OR_BOOL:
        if isinstance(node.get(key), dict):
            yield from _subschemas(node[key], f"{where}/{key}")


def _shape_problem(root: Schema, node: Any) -> str | None:
    """What is wrong with ``node`` as a schema, or ``None``."""
    if not isinstance(node, dict):
        return f"expected a schema (an object), found {_kind_of(node)}"
    for keys, valid, expected in _SHAPES:
        for key in keys:
            if key in node and not valid(node[key]):
                return f"{key} must be {expected}, found {_kind_of(node[key])}"
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and _pointer(root, ref) is None:
        return f"$ref {ref!r} points to nothing in this file"
    return None


def _kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _pointer(root: Schema, ref: str) -> dict[str, Any] | None:
    """The schema a local ``$ref`` (``#/$defs/Name``) points to, or ``None``."""
    node: Any = root
    for part in ref.removeprefix("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None
