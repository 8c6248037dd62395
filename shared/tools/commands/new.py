"""``pubsub-kit new``: start a project, or add a consumer to one (see shared.tools.scaffold)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "new"
NEEDS_TOPOLOGY = False  # `new project` has none yet; `new consumer` loads it itself


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="start a project, or scaffold a consumer in this one",
        description="`new project DIR` writes a minimal project: pyproject.toml (naming the "
        "topology in [tool.pubsub-kit]), a package with one event and a topology with one "
        "topic, and functions/. `new consumer NAME --topic TOPIC` writes functions/NAME/main.py, "
        "a handler module, tests/test_NAME.py and adds the consumer to the topology.",
    )
    sub = p.add_subparsers(dest="new_command", required=True, metavar="WHAT")
    project = sub.add_parser(
        "project",
        help="write a minimal project into DIR (default: here)",
        description="Write a minimal pubsub-kit project into DIR (created if missing; none of "
        "the files it writes may exist): pyproject.toml, PACKAGE/events.py, "
        "PACKAGE/topology.py, functions/ and .gitignore.",
    )
    project.add_argument("folder", metavar="DIR", nargs="?", type=Path, default=Path("."))
    project.add_argument(
        "--package",
        metavar="NAME",
        help="the Python package for events and topology (default: from DIR's name)",
    )
    consumer = sub.add_parser(
        "consumer",
        help="scaffold a consumer: its function, handler, unit test and topology entry",
        description="Write functions/NAME/main.py (the Cloud Function), "
        "functions/NAME/NAME_handler.py (a typed handler to replace with your logic), "
        "tests/test_NAME.py (its unit test, no emulator) and add "
        'Consumer("NAME", topics=["TOPIC"]) to the topology\'s consumers=[...] list. Nothing '
        "is written when the name is taken or invalid, or the topic unknown.",
    )
    consumer.add_argument("name", metavar="NAME", help="snake_case, e.g. order_emails")
    consumer.add_argument("--topic", required=True, help="the topic it consumes")
    consumer.add_argument(
        "--event",
        metavar="TYPE",
        help="the event its handler takes: an event type (item.created.v1), a class name or "
        "module:Class the topic carries (default: the topic's newest versions)",
    )


def run(args: argparse.Namespace, topology: object) -> int:
    from shared.tools import project, scaffold

    if args.new_command == "project":
        written = scaffold.new_project(args.folder, args.package)
        folder = written[0].parent
        for path in written:
            print(f"wrote {path.relative_to(folder)}")
        cd = "" if folder == Path.cwd().resolve() else f"cd {args.folder} && "
        print(f"a project in {folder}; next: {cd}pubsub-kit new consumer NAME --topic item-created")
        return 0

    from shared.tools.cli import load_topology

    root = project.root()
    spec = project.topology_spec(args.topology)
    done = scaffold.new_consumer(
        root, spec, load_topology(spec), args.name, args.topic, event=args.event
    )
    for path in done.written:
        print(f"wrote {path.relative_to(root)}")
    print(f"added {done.entry} to {done.topology_file.relative_to(root)}")
    for note in done.notes:
        print(f"note: {note}")
    print(
        f"next: python -m pytest tests/test_{args.name}.py, then pubsub-kit dev "
        "(restart it if it is running: a new consumer needs its subscription)"
    )
    return 0
