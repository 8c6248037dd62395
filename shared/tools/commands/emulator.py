"""``pubsub-kit emulator``: the local emulators' lifecycle, from the installed package.

The same commands and output as the checkout's ``./emulator.sh`` (which runs the same script),
with the state in the project's ``.emulator/``; no script is needed in the user's repository::

    eval "$(pubsub-kit emulator start)"     # start the Pub/Sub emulator, set its variables
    pubsub-kit emulator status all          # exit 0 when every one asked for answers
    pubsub-kit emulator stop                # stop them all
"""

from __future__ import annotations

import argparse
from typing import Any

from shared.errors import ToolkitError

NAME = "emulator"
NEEDS_TOPOLOGY = False  # runs before any topology is loaded, in a project without one too

ACTIONS = ("start", "stop", "status", "env", "logs")
TARGETS = ("pubsub", "firestore", "all")


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        NAME,
        help="start, stop or inspect the local Pub/Sub and Firestore emulators",
        description="Start, stop or inspect the local emulators (Java 17 and the gcloud "
        "emulator components). `start` waits until the emulator answers and prints export "
        'lines: eval "$(pubsub-kit emulator start)". Pid, port and log files are kept in the '
        "project's .emulator/ (or EMULATOR_STATE_DIR); PUBSUB_EMULATOR_PORT and "
        "FIRESTORE_EMULATOR_PORT choose the ports (default 8085 and 8086).",
    )
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=ACTIONS,
        help="start (and wait until it answers), stop, status (exit 1 unless running), env "
        "(export lines for eval), or logs",
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        choices=TARGETS,
        help="pubsub, firestore or all (default: pubsub; all for stop); env takes none, logs one",
    )


def run(args: argparse.Namespace, topology: object) -> int:
    from shared.tools import emulator

    if args.action == "env" and args.target is not None:
        raise ToolkitError(f"`emulator env` takes no target; found {args.target!r}")
    if args.action == "logs" and args.target == "all":
        raise ToolkitError("`emulator logs` shows one log: give pubsub or firestore, not all")
    target = [] if args.target is None else [args.target]
    return emulator.command(args.action, *target)
