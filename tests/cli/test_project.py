"""The toolkit in any repository: the project is found from the working directory (or
``--root``), its topology is named in its pyproject.toml, and what commands write lands in it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.cli.conftest import PubsubKit
from tests.conftest import REPO

CLEAN = {"PUBSUB_KIT_ROOT": None, "PUBSUB_KIT_TOPOLOGY": None}


@pytest.fixture
def shop(pubsub_kit: PubsubKit, tmp_path: Path) -> Path:
    """A fresh project, as `pubsub-kit new project` writes it."""
    done = pubsub_kit("new", "project", "shop", cwd=tmp_path, env=CLEAN)
    assert done.status == 0, done.err
    return tmp_path / "shop"


def digest(*paths: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths if p.is_file())).hexdigest()


def test_outside_a_project_the_error_says_what_a_project_is_and_how_to_point_at_one(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    done = pubsub_kit("topology", "show", cwd=tmp_path, env=CLEAN)
    assert done.status == 1
    assert done.error.startswith(f"pubsub-kit: error: no pubsub-kit project in {tmp_path}")
    assert "a pyproject.toml and a functions/ folder" in done.error
    assert "--root DIR" in done.error and "pubsub-kit new project" in done.error


def test_root_must_name_a_project(pubsub_kit: PubsubKit, tmp_path: Path) -> None:
    done = pubsub_kit("--root", str(tmp_path), "topology", "show", env=CLEAN)
    assert done.status == 1
    assert "is not a pubsub-kit project: expected a folder with a pyproject.toml" in done.error
    missing = pubsub_kit("--root", str(tmp_path / "nope"), "topology", "show", env=CLEAN)
    assert (missing.status, missing.error) == (
        1,
        f"pubsub-kit: error: --root {tmp_path / 'nope'}: no such folder",
    )


def test_exports_are_written_into_the_project_found_from_a_subfolder(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    checkout = [REPO / "infra" / "topology.json", REPO / "catalog-info.yaml"]
    before = digest(*checkout)
    inside = shop / "shop"  # the project's package folder: the project is found upwards
    for command in (["topology", "export", "--terraform"], ["schema"], ["catalog"]):
        done = pubsub_kit(*command, cwd=inside, env=CLEAN)
        assert done.status == 0, done.err
    assert '"item-created"' in (shop / "infra" / "topology.json").read_text()
    assert (shop / "docs" / "contracts" / "item.created.v1.schema.json").is_file()
    assert (shop / "catalog-info.yaml").is_file()
    assert digest(*checkout) == before, "the toolkit's own checkout was written to"


def test_root_points_at_the_project_from_anywhere(
    pubsub_kit: PubsubKit, shop: Path, tmp_path: Path
) -> None:
    done = pubsub_kit("--root", str(shop), "topology", "show", cwd=tmp_path, env=CLEAN)
    assert done.status == 0, done.err
    assert done.out == ""  # a topology with no consumer has no subscription to show
    done = pubsub_kit("--root", str(shop), "topology", "export", "--terraform", cwd=tmp_path)
    assert done.out == f"wrote {shop / 'infra' / 'topology.json'}\n"


def test_the_topology_is_the_option_else_the_variable_else_the_projects_setting(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    example = "shared.system.topology:TOPOLOGY"
    own = pubsub_kit(
        "topology", "export", "--terraform", "--output", "own.json", cwd=shop, env=CLEAN
    )
    assert own.status == 0, own.err
    assert "item-created" in (shop / "own.json").read_text()
    by_variable = pubsub_kit(
        "topology", "show", cwd=shop, env={**CLEAN, "PUBSUB_KIT_TOPOLOGY": example}
    )
    assert "post-liked--audit_log" in by_variable.out
    by_option = pubsub_kit(
        "--topology",
        "shop.topology:TOPOLOGY",
        "topology",
        "show",
        cwd=shop,
        env={**CLEAN, "PUBSUB_KIT_TOPOLOGY": example},
    )
    assert by_option.status == 0 and "post-liked" not in by_option.out


def test_a_project_that_names_no_topology_is_told_how_to(pubsub_kit: PubsubKit, shop: Path) -> None:
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[tool.pubsub-kit]", "[tool.other]"))
    done = pubsub_kit("topology", "show", cwd=shop, env=CLEAN)
    assert done.status == 1
    assert done.error == (
        f"pubsub-kit: error: no topology declared for {shop}: add [tool.pubsub-kit] with "
        'topology = "package.module:TOPOLOGY" to its pyproject.toml, or pass --topology '
        "(or set PUBSUB_KIT_TOPOLOGY)"
    )


def test_an_unreadable_pyproject_is_named(pubsub_kit: PubsubKit, shop: Path) -> None:
    (shop / "pyproject.toml").write_text("[tool.pubsub-kit\n")
    done = pubsub_kit("topology", "show", cwd=shop, env=CLEAN)
    assert done.status == 1
    assert done.error.startswith(f"pubsub-kit: error: cannot read {shop / 'pyproject.toml'}: ")
