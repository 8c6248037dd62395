"""Check Terraform modules against a provider schema extracted by ``extract_schema.py``.

What ``terraform validate`` would say if it could download the provider, as far as the schema
tells: every resource and data source type exists; every argument and nested block exists, is
written as what it is (``name { ... }`` for a block, ``name = ...`` for an argument) and is not
repeated when the provider takes one; required arguments and blocks are present; references to
``var.``, ``local.``, ``module.``, ``data.`` and resources resolve, and the attributes they read
exist; module calls pass only variables the module declares, and every variable it requires.

python-hcl2 8.x marks blocks with ``__is_block__`` and wraps expressions in ``${...}``; both are
relied on here.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

Json = dict[str, Any]

# Arguments Terraform itself handles in every resource or data block.
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner"}
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}

_REFERENCE = re.compile(
    r"(?<![\w.\-])(?P<head>var|local|module|data|google_[a-z0-9_]+)"
    r"(?P<tail>(?:\.[A-Za-z_][\w-]*|\[[^\[\]]*\])*)"
)
_INDEX = re.compile(r"\[[^\[\]]*\]")


@dataclass(frozen=True)
class Schema:
    """One provider version: ``{"google": <document>, "google-beta": <document>}``."""

    version: str
    providers: dict[str, Json]


def load_schemas(directory: Path = SCHEMA_DIR) -> dict[str, Schema]:
    """Schemas by provider version ("6.1.0"), each with every provider extracted at it."""
    by_version: dict[str, dict[str, Json]] = {}
    for path in sorted(directory.glob("*.json")):
        document: Json = json.loads(path.read_text(encoding="utf-8"))
        provider = document["provider"].removeprefix("hashicorp/")
        by_version.setdefault(document["version"], {})[provider] = document
    return {v: Schema(v, providers) for v, providers in by_version.items()}


@functools.cache
def _parse(path: Path, mtime: float) -> Json:
    with path.open(encoding="utf-8") as handle:
        parsed: Json = hcl2.load(handle)
    return parsed


def parse(path: Path) -> Json:
    return _parse(path, path.stat().st_mtime)


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("__is_block__") for item in value)
    )


def keys(body: Json) -> Iterator[str]:
    return (k for k in body if not k.startswith("__"))


@dataclass
class Module:
    """The declarations of one module directory."""

    directory: Path
    variables: dict[str, Json] = field(default_factory=dict)
    locals: set[str] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)
    modules: dict[str, Json] = field(default_factory=dict)
    resources: dict[tuple[str, str], tuple[Path, Json]] = field(default_factory=dict)
    data: dict[tuple[str, str], tuple[Path, Json]] = field(default_factory=dict)
    providers: list[tuple[Path, str, Json]] = field(default_factory=list)
    bodies: list[tuple[Path, str, Any]] = field(default_factory=list)


def load_module(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        parsed = parse(path)
        _load_named(module, path, parsed)
        for entry in parsed.get("provider", []):
            module.providers += [(path, unquote(n), entry[n]) for n in keys(entry)]
        for kind, store in (("resource", module.resources), ("data", module.data)):
            for entry in parsed.get(kind, []):
                for type_name in keys(entry):
                    for name in keys(entry[type_name]):
                        body = entry[type_name][name]
                        store[(unquote(type_name), unquote(name))] = (path, body)
                        where = f"{'data.' if kind == 'data' else ''}{unquote(type_name)}"
                        module.bodies.append((path, f"{where}.{unquote(name)}", body))
    return module


def _load_named(module: Module, path: Path, parsed: Json) -> None:
    """Variables, locals, outputs and module calls: blocks with at most one label."""
    for kind in ("variable", "locals", "output", "module"):
        for entry in parsed.get(kind, []):
            for key in keys(entry):
                name, body = unquote(key), entry[key]
                if kind == "variable":
                    module.variables[name] = body
                elif kind == "locals":
                    module.locals.add(name)
                elif kind == "output":
                    module.outputs.add(name)
                else:
                    module.modules[name] = body
                label = f"local.{name}" if kind == "locals" else f"{kind} {name}"
                module.bodies.append((path, label, body))


def module_tree(root: Path) -> dict[Path, Module]:
    """The root module and every local module it calls, directly or not."""
    found: dict[Path, Module] = {}
    pending = [root.resolve()]
    while pending:
        directory = pending.pop()
        if directory in found:
            continue
        found[directory] = load_module(directory)
        for call in found[directory].modules.values():
            source = unquote(str(call.get("source", "")))
            if source.startswith(("./", "../")):
                pending.append((directory / source).resolve())
    return found


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_block(body: Json, schema: Json, where: str) -> list[str]:
    """Arguments and nested blocks of one block body against its schema."""
    dynamic: dict[str, Json] = {}
    for entry in body.get("dynamic", []):
        for name in keys(entry):
            dynamic[unquote(name)] = entry[name]
    present = set(keys(body)) - META_ARGUMENTS - {"dynamic"}
    errors: list[str] = []
    for name in sorted(present):
        errors += _check_entry(name, body[name], schema, where)
    for name, dyn in sorted(dynamic.items()):
        if name not in schema["blocks"]:
            errors.append(
                f"{where}: dynamic {name!r} is not a block of this type"
                + _suggest(name, schema["blocks"])
            )
            continue
        for content in dyn.get("content", []):
            errors += check_block(content, schema["blocks"][name], f"{where}.dynamic.{name}")
    errors += [
        f"{where}: required argument {name!r} is missing"
        for name, required in sorted(schema["arguments"].items())
        if required and name not in present
    ]
    errors += [
        f"{where}: required block {name!r} is missing"
        for name, spec in sorted(schema["blocks"].items())
        if spec["required"] and name not in present and name not in dynamic
    ]
    return errors


def _check_entry(name: str, value: Any, schema: Json, where: str) -> list[str]:
    """One argument or nested block as written: it exists, and is written as what it is."""
    arguments: dict[str, bool] = schema["arguments"]
    nested: dict[str, Json] = schema["blocks"]
    if name in arguments:
        return [f"{where}: {name} is an argument; write `{name} = ...`"] if is_block(value) else []
    if name not in nested:
        return [
            f"{where}: unsupported argument or block {name!r}"
            + _suggest(name, set(arguments) | set(nested))
        ]
    if not is_block(value):
        return [f"{where}: {name} is a block; write `{name} {{ ... }}`, not `=`"]
    errors: list[str] = []
    if not nested[name]["repeated"] and len(value) > 1:
        errors.append(f"{where}: {name} may appear once, found {len(value)}")
    for item in value:
        errors += check_block(item, nested[name], f"{where}.{name}")
    return errors


def _provider_of(body: Json) -> str:
    meta = body.get("provider")
    return unquote(str(meta)).strip("${}").split(".")[0] if meta else "google"


def _document(schema: Schema, provider: str, where: str) -> tuple[Json | None, list[str]]:
    document = schema.providers.get(provider)
    if document is None:
        return None, [f"{where}: no schema of provider {provider!r} at {schema.version}"]
    return document, []


def check_types(modules: dict[Path, Module], schema: Schema) -> list[str]:
    """Every resource, data source and provider block against the provider's schema."""
    errors: list[str] = []
    for module in modules.values():
        for kind, declared in (("resource", module.resources), ("data", module.data)):
            for (type_name, name), (path, body) in sorted(declared.items()):
                where = f"{path.name}: {'data.' if kind == 'data' else ''}{type_name}.{name}"
                document, missing = _document(schema, _provider_of(body), where)
                errors += missing
                if document is None:
                    continue
                known = document["resource_types" if kind == "resource" else "data_source_types"]
                detail = document["resources" if kind == "resource" else "data_sources"]
                if type_name not in known:
                    errors.append(
                        f"{where}: {document['provider']} {schema.version} has no {kind} type "
                        f"{type_name!r}" + _suggest(type_name, known)
                    )
                elif type_name not in detail:
                    errors.append(
                        f"{where}: {type_name} is not in the extracted schema; re-run "
                        "tests/infra/extract_schema.py"
                    )
                else:
                    errors += check_block(body, detail[type_name], where)
        for path, provider, body in module.providers:
            document, missing = _document(schema, provider, f"{path.name}: provider {provider}")
            errors += missing
            if document is not None:
                config = document["provider_config"]
                errors += check_block(body, config, f"{path.name}: provider {provider}")
    return errors


def interpolations(value: Any) -> Iterator[str]:
    """The text of every ``${...}`` in a parsed value (keys included), outermost first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from interpolations(key)
            yield from interpolations(item)
    elif isinstance(value, list):
        for item in value:
            yield from interpolations(item)
    elif isinstance(value, str):
        start = value.find("${")
        while start != -1:
            depth, end = 0, start + 1
            while end < len(value):
                depth += {"{": 1, "}": -1}.get(value[end], 0)
                if depth == 0:
                    break
                end += 1
            yield value[start + 2 : end]
            start = value.find("${", end)


def references(value: Any) -> Iterator[tuple[str, list[str]]]:
    """(head, [segments]) of every reference: ("module", ["naming", "function_name"])."""
    for expression in interpolations(value):
        for found in _REFERENCE.finditer(expression):
            segments = re.findall(r"\.([A-Za-z_][\w-]*)", _INDEX.sub("", found.group("tail")))
            yield found.group("head"), segments


def _readable(attributes: Json, path: list[str]) -> str | None:
    """The first attribute of ``path`` the schema does not expose, or None."""
    level: Any = attributes
    for segment in path:
        if not isinstance(level, dict):
            return None  # a map or an object value: its keys are data, not schema
        if segment not in level:
            return segment
        level = level[segment]
    return None


def check_references(modules: dict[Path, Module], schema: Schema) -> list[str]:
    errors: list[str] = []
    for module in modules.values():
        for path, where, body in module.bodies:
            for head, segments in references(body):
                problem = _reference_problem(module, modules, schema, head, segments)
                if problem:
                    errors.append(f"{path.name}: {where}: {problem}")
        errors += _check_calls(module, modules)
    return sorted(set(errors))


def _reference_problem(
    module: Module, modules: dict[Path, Module], schema: Schema, head: str, segments: list[str]
) -> str | None:
    if not segments:
        return None
    name = segments[0]
    if head == "var":
        return None if name in module.variables else f"var.{name} is not declared"
    if head == "local":
        return None if name in module.locals else f"local.{name} is not declared"
    if head == "module":
        if name not in module.modules:
            return f"module.{name} is not declared"
        target = modules.get(_source_dir(module, name))
        if target and len(segments) > 1 and segments[1] not in target.outputs:
            return f"module.{name} has no output {segments[1]!r}" + _suggest(
                segments[1], target.outputs
            )
        return None
    if head == "data":
        if len(segments) < 2 or (segments[0], segments[1]) not in module.data:
            return f"data.{'.'.join(segments[:2])} is not declared"
        _, body = module.data[(segments[0], segments[1])]
        return _attribute_problem(schema, body, "data_sources", segments[0], segments[2:])
    if (head, name) not in module.resources:
        return f"{head}.{name} is not declared"
    _, body = module.resources[(head, name)]
    return _attribute_problem(schema, body, "resources", head, segments[1:])


def _attribute_problem(
    schema: Schema, body: Json, section: str, type_name: str, path: list[str]
) -> str | None:
    document = schema.providers.get(_provider_of(body), {})
    detail = document.get(section, {}).get(type_name)
    if detail is None or not path:
        return None  # an unknown type is reported by check_types
    missing = _readable(detail["attributes"], path)
    if missing is None:
        return None
    return f"{type_name} has no attribute {'.'.join(path)!r} at {schema.version}"


def _source_dir(module: Module, call: str) -> Path:
    source = unquote(str(module.modules[call].get("source", "")))
    return (module.directory / source).resolve()


def _check_calls(module: Module, modules: dict[Path, Module]) -> list[str]:
    errors: list[str] = []
    for call, body in module.modules.items():
        target = modules.get(_source_dir(module, call))
        if target is None:
            continue
        passed = set(keys(body)) - MODULE_META_ARGUMENTS
        for name in sorted(passed - set(target.variables)):
            errors.append(
                f"module {call}: {target.directory.name} has no variable {name!r}"
                + _suggest(name, target.variables)
            )
        for name, spec in sorted(target.variables.items()):
            if "default" not in spec and name not in passed:
                errors.append(f"module {call}: required variable {name!r} is not passed")
    return errors


def check(root: Path, schema: Schema) -> list[str]:
    """Everything this module checks, for ``root`` and the modules it calls."""
    modules = module_tree(root)
    return check_types(modules, schema) + check_references(modules, schema)
