"""``pubsub-kit new project`` and ``new consumer``: what a new user runs first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import PubsubKit

CLEAN = {"PUBSUB_KIT_ROOT": None, "PUBSUB_KIT_TOPOLOGY": None}


@pytest.fixture
def shop(pubsub_kit: PubsubKit, tmp_path: Path) -> Path:
    done = pubsub_kit("new", "project", "shop", cwd=tmp_path, env=CLEAN)
    assert done.status == 0, done.err
    return tmp_path / "shop"


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (caches left out) and its content."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


def test_new_project_writes_a_minimal_project_and_never_over_one(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    assert sorted(tree(shop)) == [
        ".gitignore",
        "functions/README.md",
        "pyproject.toml",
        "shop/__init__.py",
        "shop/events.py",
        "shop/topology.py",
    ]
    assert (
        '[tool.pubsub-kit]\ntopology = "shop.topology:TOPOLOGY"'
        in (shop / "pyproject.toml").read_text()
    )
    again = pubsub_kit("new", "project", str(shop), env=CLEAN)
    assert again.status == 1
    assert again.error == (
        f"pubsub-kit: error: {shop} already has pyproject.toml, .gitignore, functions/README.md, "
        "shop/__init__.py, shop/events.py, shop/topology.py; `new project` writes into a new or "
        "empty folder"
    )


def test_new_project_refuses_a_folder_name_that_is_no_package_name(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    done = pubsub_kit("new", "project", "class", cwd=tmp_path, env=CLEAN)
    assert done.status == 1
    assert "package name 'class' is not usable" in done.error and "--package" in done.error
    assert not (tmp_path / "class").exists()
    named = pubsub_kit("new", "project", "my-service", cwd=tmp_path, env=CLEAN)
    assert named.status == 0 and (tmp_path / "my-service" / "my_service" / "topology.py").is_file()


def test_new_consumer_scaffolds_a_function_a_handler_a_test_and_the_topology_entry(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    done = pubsub_kit("new", "consumer", "greeter", "--topic", "item-created", cwd=shop, env=CLEAN)
    assert done.status == 0, done.err
    assert done.out.splitlines()[:4] == [
        "wrote functions/greeter/main.py",
        "wrote functions/greeter/greeter_handler.py",
        "wrote tests/test_greeter.py",
        'added Consumer("greeter", topics=["item-created"]) to shop/topology.py',
    ]
    topology = (shop / "shop" / "topology.py").read_text()
    assert "from shared import Consumer, Topic, Topology\n" in topology
    assert 'consumers=[\n        Consumer("greeter", topics=["item-created"]),\n    ],' in topology
    main = (shop / "functions" / "greeter" / "main.py").read_text()
    assert 'app = consumer(TOPOLOGY, "greeter")' in main
    assert "def greeter(event: ItemCreated, delivery: Delivery) -> None:" in main
    shown = pubsub_kit("topology", "show", cwd=shop, env=CLEAN)
    assert shown.out.startswith("item-created -> item-created--greeter -> greeter")

    # The generated unit test passes as written, and the next consumer joins the list.
    test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_greeter.py"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "1 passed" in test.stdout
    second = pubsub_kit("new", "consumer", "auditor", "--topic", "item-created", cwd=shop)
    assert second.status == 0, second.err
    assert (
        '        Consumer("greeter", topics=["item-created"]),\n'
        '        Consumer("auditor", topics=["item-created"]),\n    ],'
    ) in (shop / "shop" / "topology.py").read_text()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["Greeter", "--topic", "item-created"],
            "consumer name must be snake_case like 'audit_log', not ending in '_' (with '-' for "
            "'_' it is the Cloud Functions id), 4-63 characters; found 'Greeter' (7 characters)",
        ),
        (["abc", "--topic", "item-created"], "4-63 characters; found 'abc' (3 characters)"),
        (["greeter", "--topic", "items"], "no topic named 'items'; declared topics: item-created"),
        (
            ["greeter", "--topic", "item-created", "--event", "item.deleted.v1"],
            "topic 'item-created' does not carry 'item.deleted.v1'; it carries item.created.v1 "
            "(shop.events:ItemCreated)",
        ),
    ],
)
def test_new_consumer_refuses_bad_input_and_writes_nothing(
    pubsub_kit: PubsubKit, shop: Path, args: list[str], error: str
) -> None:
    before = tree(shop)
    done = pubsub_kit("new", "consumer", *args, cwd=shop, env=CLEAN)
    assert done.status == 1
    assert done.error.startswith("pubsub-kit: error: ") and error in done.error
    assert tree(shop) == before


def test_new_consumer_refuses_a_name_taken_in_the_topology_or_on_disk(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    assert pubsub_kit("new", "consumer", "greeter", "--topic", "item-created", cwd=shop).status == 0
    before = tree(shop)
    taken = pubsub_kit("new", "consumer", "greeter", "--topic", "item-created", cwd=shop)
    assert taken.error == (
        "pubsub-kit: error: consumer 'greeter' already exists in the topology "
        "(shop.topology:TOPOLOGY)"
    )
    (shop / "tests" / "test_mailer.py").write_text("# someone's own test\n")
    on_disk = pubsub_kit("new", "consumer", "mailer", "--topic", "item-created", cwd=shop)
    assert on_disk.error == (
        "pubsub-kit: error: tests/test_mailer.py already exists; choose another name or remove it"
    )
    assert tree(shop) == {**before, "tests/test_mailer.py": b"# someone's own test\n"}


def test_a_topology_it_cannot_edit_safely_is_left_to_the_user_with_what_to_add(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    source = shop / "shop" / "topology.py"
    source.write_text(
        source.read_text()
        .replace("TOPOLOGY = Topology(", "CONSUMERS: list[object] = []\n\nTOPOLOGY = Topology(")
        .replace("consumers=[],", "consumers=CONSUMERS,")
    )
    before = tree(shop)
    done = pubsub_kit("new", "consumer", "greeter", "--topic", "item-created", cwd=shop)
    assert done.status == 1
    assert done.error == (
        "pubsub-kit: error: cannot add the consumer to shop/topology.py safely: TOPOLOGY there "
        'has no `consumers=[...]` list; add Consumer("greeter", topics=["item-created"]) to its '
        "consumers by hand (and import Consumer from shared), or make them such a list"
    )
    assert tree(shop) == before
