"""Commands of ``pubsub-kit`` that live in a module of their own, one per module.

A command module has::

    NAME = "tail"                                   # the subcommand
    def add_parser(commands) -> None: ...           # its argparse sub-parser, with --help text
    def run(args, topology) -> int: ...             # the exit status; ToolkitError for a
                                                    # sentence on stderr and exit 1

and its name is listed in :data:`MODULES`. Modules are imported when the parser is built; keep
their top level light (import client libraries inside ``run``).
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any

MODULES: list[str] = [
    "audit",
    "status",
    "tail",
    "dlq",
    "publish",
    "emulator",
    "new",
]


def load() -> dict[str, ModuleType]:
    """Subcommand name -> its module, for every module in :data:`MODULES`."""
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found[module.NAME] = module
    return found


def add_parsers(commands: Any, modules: dict[str, ModuleType]) -> None:
    """Add each module's sub-parser to ``commands`` (argparse's sub-parsers action)."""
    for module in modules.values():
        module.add_parser(commands)


def run(modules: dict[str, ModuleType], args: argparse.Namespace, topology: Any) -> int | None:
    """Run the module of ``args.command``; ``None`` when no module has it (a core command)."""
    module = modules.get(args.command)
    return None if module is None else int(module.run(args, topology))
