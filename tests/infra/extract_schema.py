"""Extract the google provider's resource schema from a prebuilt CDK binding wheel.

``terraform init`` cannot download providers where the tests run, but the CDK bindings of the
google provider on PyPI carry the provider's whole schema in their jsii assembly
(``<package>/_jsii/*.jsii.tgz`` -> ``package/.jsii``). This script reads a downloaded wheel and
writes a small JSON file with what ``tests/test_infra_schema.py`` needs: for every resource and
data source type that ``infra/`` uses, its arguments (required or not), its nested blocks (single
or repeated, required or not, with their own arguments and blocks) and the attributes it exposes
for references; plus the names of every type the provider has, so that a misspelt type is told
apart from one that merely was not extracted.

The CDK renames arguments to camelCase; every property's documentation links to the registry
page with ``#<argument_name>`` as the anchor, which gives the Terraform name back.

The checked-in files come from the oldest and newest bindings of the range infra/versions.tf
allows (google 6.1.0 and 7.46.1; the 13.x bindings are provider 5.x, cdktn 21.x is 8.x). Re-run
after adding a resource type to infra/, or to move an end of the range (about 10 s; the wheels,
36-70 MB each, stay in /tmp, only the JSON files are checked in)::

    pip download --no-deps -d /tmp/wheels \
        cdktf-cdktf-provider-google==14.0.0 cdktf-cdktf-provider-google-beta==14.0.0 \
        cdktn-provider-google==20.3.1 cdktn-provider-google-beta==20.3.1
    python tests/infra/extract_schema.py /tmp/wheels/*.whl
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

Json = dict[str, Any]

# "Represents a {@link https://registry.terraform.io/providers/hashicorp/google/6.1.0/docs/
#  resources/pubsub_topic google_pubsub_topic}."
_REPRESENTS = re.compile(
    r"Represents a \{@link https://registry\.terraform\.io/providers/hashicorp/"
    r"(?P<provider>[\w-]+)/(?P<version>[^/]+)/docs/(?P<kind>resources|data-sources)/\S+ "
    r"(?P<type>\w+)\}"
)
_ANCHOR = re.compile(r"/docs/[^ }]*#(?P<name>\w+)[ }]")
_PROVIDER_VERSION = re.compile(r"hashicorp/([\w-]+) provider version (\d+\.\d+\.\d+)")


def load_assembly(wheel: Path) -> tuple[Json, str, str, str]:
    """The jsii assembly in ``wheel``, the provider's name and version, and the wheel's id."""
    with zipfile.ZipFile(wheel) as archive:
        tgz = next(n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        found = _PROVIDER_VERSION.search(archive.read(metadata).decode("utf-8"))
        if found is None:
            raise SystemExit(f"{wheel.name}: no 'hashicorp/<provider> provider version' line")
        with tarfile.open(fileobj=io.BytesIO(archive.read(tgz))) as tar:
            member = tar.extractfile("package/.jsii")
            if member is None:
                raise SystemExit(f"{wheel.name}: {tgz} has no package/.jsii")
            assembly: Json = json.load(member)
    name, version = wheel.name.split("-")[:2]
    return assembly, found.group(1), found.group(2), f"{name.replace('_', '-')}=={version}"


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_name(prop: Json) -> str:
    """The Terraform argument name of a CDK property, from its registry link's anchor."""
    docs = prop.get("docs", {})
    found = _ANCHOR.search(f"{docs.get('summary', '')} {docs.get('remarks', '')}")
    return found.group("name") if found else snake(prop["name"])


def struct_of(kind: Json, types: dict[str, Json]) -> tuple[str, bool] | None:
    """(struct fqn, repeated) when a property's type is a nested block, else None."""
    if "fqn" in kind:
        fqn = kind["fqn"]
        return (fqn, False) if types.get(fqn, {}).get("datatype") else None
    if "collection" in kind and kind["collection"]["kind"] == "array":
        inner = struct_of(kind["collection"]["elementtype"], types)
        return (inner[0], True) if inner else None
    for option in kind.get("union", {}).get("types", []):
        inner = struct_of(option, types)
        if inner:
            return inner
    return None


def block_schema(fqn: str, types: dict[str, Json], skip: Iterable[str] = ()) -> Json:
    """Arguments and nested blocks of a configuration struct."""
    arguments: dict[str, bool] = {}
    nested: dict[str, Json] = {}
    for prop in types[fqn].get("properties", []):
        name = terraform_name(prop)
        if any(re.fullmatch(pattern, name) for pattern in skip):
            continue
        required = not prop.get("optional", False)
        struct = struct_of(prop["type"], types)
        if struct is None:
            arguments[name] = required
        else:
            nested[name] = {
                "required": required,
                "repeated": struct[1],
                **block_schema(struct[0], types),
            }
    return {"arguments": dict(sorted(arguments.items())), "blocks": dict(sorted(nested.items()))}


def readable(fqn: str, types: dict[str, Json], depth: int = 0) -> dict[str, Any]:
    """Attributes a reference may read (``google_x.y.<attr>``), nested blocks as sub-maps."""
    found: dict[str, Any] = {}
    for prop in types[fqn].get("properties", []):
        if prop.get("static") or prop.get("protected") or prop["name"].endswith("Input"):
            continue
        if prop["name"] == "internalValue":  # the CDK's own plumbing, not an attribute
            continue
        name = snake(prop["name"])
        target = types.get(prop["type"].get("fqn", ""), {})
        sub: dict[str, Any] | None = None
        if depth < 4 and target.get("kind") == "class":
            if target["name"].endswith("OutputReference"):
                sub = readable(target["fqn"], types, depth + 1)
            elif target["name"].endswith("List"):
                element = _list_element(target, types)
                sub = readable(element, types, depth + 1) if element else None
        found[name] = sub
    return dict(sorted(found.items()))


def _list_element(list_class: Json, types: dict[str, Json]) -> str | None:
    for method in list_class.get("methods", []):
        if method["name"] == "get":
            fqn: str | None = method.get("returns", {}).get("type", {}).get("fqn")
            return fqn if fqn in types else None
    return None


def catalogue(types: dict[str, Json]) -> Iterator[tuple[str, str, Json]]:
    """(kind, terraform type, class) of every resource and data source in the assembly."""
    for entry in types.values():
        if entry.get("kind") != "class":
            continue
        found = _REPRESENTS.match(entry.get("docs", {}).get("summary", ""))
        if found:
            yield found.group("kind"), found.group("type"), entry


def used_types(provider: str, infra: Path = INFRA) -> dict[str, set[str]]:
    """Resource and data source types the Terraform under ``infra`` declares for ``provider``.

    A block belongs to the provider its ``provider`` meta-argument names (``google-beta``,
    ``google-beta.alias``), else to ``google``.
    """
    used: dict[str, set[str]] = {"resource": set(), "data": set()}
    for path in sorted(infra.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open(encoding="utf-8") as handle:
            parsed = hcl2.load(handle)
        for kind in used:
            for entry in parsed.get(kind, []):
                for type_name, named in entry.items():
                    if type_name.startswith("__"):
                        continue
                    for body in named.values():
                        if not isinstance(body, dict):
                            continue
                        meta = str(body.get("provider", "google")).strip('"${}')
                        if meta.split(".")[0] == provider:
                            used[kind].add(type_name.strip('"'))
    return used


def extract(wheel: Path) -> tuple[str, str, Json]:
    assembly, provider, version, binding = load_assembly(wheel)
    wanted = used_types(provider)
    types: dict[str, Json] = assembly["types"]
    all_types: dict[str, list[str]] = {"resource": [], "data": []}
    schemas: dict[str, dict[str, Json]] = {"resource": {}, "data": {}}
    for kind, name, entry in catalogue(types):
        key = "resource" if kind == "resources" else "data"
        all_types[key].append(name)
        if name in wanted[key]:
            config = f"{entry['fqn']}Config"
            schemas[key][name] = {
                **block_schema(config, types),
                "attributes": readable(entry["fqn"], types),
            }
    provider_class = next(
        t
        for t in types.values()
        if t.get("kind") == "class" and str(t.get("base", "")).endswith(".TerraformProvider")
    )
    document = {
        "provider": f"hashicorp/{provider}",
        "version": version,
        "binding": binding,
        "extracted_by": "tests/infra/extract_schema.py",
        # Endpoint overrides (one per API, hundreds) are left out; nothing here sets them.
        "provider_config": block_schema(
            f"{provider_class['fqn']}Config", types, skip=[r".*_custom_endpoint"]
        ),
        "resources": dict(sorted(schemas["resource"].items())),
        "data_sources": dict(sorted(schemas["data"].items())),
        "resource_types": sorted(all_types["resource"]),
        "data_source_types": sorted(all_types["data"]),
    }
    return provider, version, document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path, help="downloaded binding wheels")
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR, help="output directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for wheel in args.wheels:
        provider, version, document = extract(wheel)
        target = args.out / f"{provider}-{version}.json"
        target.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        found = len(document["resources"]) + len(document["data_sources"])
        print(f"{target.relative_to(REPO)}: {found} types from {document['binding']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
