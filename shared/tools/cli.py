"""``pubsub-kit``: provision, run, inspect and export the topology.

    pubsub-kit provision                      create topics and subscriptions on the emulator
    pubsub-kit publish TYPE JSON              publish one typed event (validated first)
    pubsub-kit dev                            run every function locally until Ctrl-C
    pubsub-kit demo                           run the system, publish demo events, report
    pubsub-kit topology export --terraform    write infra/topology.json
    pubsub-kit schema                         write JSON Schemas, .proto files and AsyncAPI
    pubsub-kit catalog [--readme README.md]   write catalog-info.yaml (Backstage), the diagram
    pubsub-kit contracts check                fail on a breaking change to an event type
    pubsub-kit dlq inspect SUBSCRIPTION       show dead letters and why
    pubsub-kit dlq replay SUBSCRIPTION        publish dead letters to their topic again
    pubsub-kit package                        build a deployable zip per function

Every command takes ``--topology module:attribute`` (default ``shared.system.topology:TOPOLOGY``,
or ``PUBSUB_KIT_TOPOLOGY``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from shared.config import project_root
from shared.errors import ToolkitError
from shared.tools import commands as command_modules
from shared.tools.catalog import CatalogSettings
from shared.topology import Topology

DEFAULT_TOPOLOGY = "shared.system.topology:TOPOLOGY"
REPO_ROOT = project_root()
TERRAFORM_EXPORT = REPO_ROOT / "infra" / "topology.json"
CATALOG = REPO_ROOT / "catalog-info.yaml"


def load_topology(spec: str) -> Topology:
    """Import ``module:attribute`` and check it is a :class:`Topology`."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ToolkitError(f"--topology must look like 'package.module:NAME'; found {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ToolkitError(f"cannot import topology module {module_name!r}: {exc}") from None
    topology = getattr(module, attribute, None)
    if not isinstance(topology, Topology):
        raise ToolkitError(f"{spec} is not a Topology (found {type(topology).__name__})")
    return topology


def terraform_json(topology: Topology) -> str:
    """The exact text of ``infra/topology.json`` for ``topology``."""
    return json.dumps(topology.to_terraform(), indent=2, sort_keys=True) + "\n"


def whole_number(
    low: int, high: int | None = None, what: str = "a whole number"
) -> Callable[[str], int]:
    """An argparse type: an int from ``low`` to ``high``, or a message saying what was expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected {what} {span}, found {value}")
        return value

    return parse


def positive_seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, found {text}")
    return value


_port = whole_number(1024, 65000, "a port number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pubsub-kit", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--topology",
        default=os.environ.get("PUBSUB_KIT_TOPOLOGY", DEFAULT_TOPOLOGY),
        help="the topology as module:attribute (default %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("provision", help="create the topology on the emulator, idempotently")
    p.add_argument("--project", help="project id (default PUBSUB_PROJECT_ID)")

    p = commands.add_parser("publish", help="publish one event, validated against its model first")
    p.add_argument("event_type", help="versioned event type, e.g. post.liked.v1")
    p.add_argument("data", help="the event's data as a JSON object")
    p.add_argument("--ordering-key", help="deliver in order with other events of this key")
    p.add_argument("--correlation-id", help="default: the new event's id")
    p.add_argument("--project", help="project id (default PUBSUB_PROJECT_ID)")

    for name, text in (
        ("dev", "run every function locally until Ctrl-C"),
        ("demo", "run the system locally, publish demo events, report"),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument(
            "--port-base",
            type=_port,
            default=8090,
            help="port of the first function; the others follow (default 8090)",
        )
        p.add_argument(
            "--store",
            choices=("sqlite", "firestore"),
            default="sqlite",
            help="the functions' store: a SQLite file (default), or Firestore on the "
            "Firestore emulator, as on GCP",
        )
        if name == "demo":
            p.add_argument(
                "--keep-running",
                action="store_true",
                help="keep the system running after the report, until Ctrl-C",
            )
            p.add_argument(
                "--timeout",
                type=positive_seconds,
                default=120.0,
                help="seconds to wait for every event to settle (default 120)",
            )
        else:
            p.add_argument(
                "--project",
                default=os.environ.get("PUBSUB_PROJECT_ID", "pubsub-kit-local"),
                help="emulator project (default PUBSUB_PROJECT_ID or pubsub-kit-local)",
            )

    p = commands.add_parser("topology", help="show or export the topology")
    sub = p.add_subparsers(dest="topology_command", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="write the Terraform input")
    export.add_argument(
        "--terraform",
        action="store_true",
        required=True,
        help="write the Terraform input JSON (the only export format)",
    )
    export.add_argument(
        "--output",
        type=Path,
        default=TERRAFORM_EXPORT,
        help="file to write (default infra/topology.json)",
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from a fresh export",
    )
    sub.add_parser("show", help="print topics, subscriptions and dead-letter topics")

    p = commands.add_parser(
        "schema", help="write JSON Schemas, proto3 files (proto/) and the AsyncAPI document"
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        default=REPO_ROOT / "docs" / "contracts",
        help="folder to write (default docs/contracts)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files differ from a fresh export",
    )

    p = commands.add_parser(
        "catalog",
        help="write the Backstage catalog (catalog-info.yaml) and the README's diagram",
        description="Write Backstage catalog entities for the topology: a System, an API per "
        "topic (its AsyncAPI definition inlined) and a Component per function, with the topics "
        "each consumes and publishes to. With --readme, also rewrite the Mermaid diagram of "
        "the topology between the README's topology-diagram markers.",
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        default=str(CATALOG),
        help="file to write, or - for standard output (default catalog-info.yaml)",
    )
    p.add_argument(
        "--readme",
        metavar="PATH",
        type=Path,
        help="also rewrite the diagram between <!-- topology-diagram:begin --> and "
        "<!-- topology-diagram:end --> in this file",
    )
    defaults = CatalogSettings()
    p.add_argument(
        "--system",
        metavar="NAME",
        default=defaults.system,
        help="the System's name (default %(default)s)",
    )
    p.add_argument(
        "--owner",
        metavar="REF",
        default=defaults.owner,
        help="entity reference of the owning group or user, e.g. group:payments "
        "(default %(default)s)",
    )
    p.add_argument(
        "--lifecycle",
        metavar="STAGE",
        default=defaults.lifecycle,
        help="experimental, production, deprecated, ... (default %(default)s)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file differs from a fresh export",
    )

    p = commands.add_parser("dlq", help="inspect or replay dead-lettered messages")
    sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    for action, text in (
        ("inspect", "show dead letters without removing them"),
        ("replay", "publish dead letters to their topic again, then remove them"),
    ):
        a = sub.add_parser(action, help=text)
        a.add_argument("subscription", help="the source subscription, e.g. post-liked--audit_log")
        a.add_argument("--project", help="project id (default PUBSUB_PROJECT_ID)")
        a.add_argument("--max", type=int, default=100, help="at most this many messages")

    p = commands.add_parser(
        "trace",
        help="show one event's trace across services, as `dev` and `demo` recorded it",
    )
    p.add_argument("event_id", help="the event's id (ce-id), or a unique prefix of it")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="the folder of recorded spans (default .pubsub-kit/traces in the project)",
    )
    p.add_argument("--json", action="store_true", help="print the spans as JSON")

    p = commands.add_parser("contracts", help="check the models against the event contracts")
    sub = p.add_subparsers(dest="contracts_command", required=True, metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="fail when a model breaks its event type's contract",
        description="Compare each event type's JSON Schema, from the current models, with its "
        "checked-in contract (docs/contracts) or the one at a git ref, and classify every change "
        "as compatible or breaking. Exit 1 when a change is breaking: publish it as a new "
        "version of the event type instead.",
    )
    check.add_argument(
        "--against",
        metavar="REF",
        help="compare with the contracts committed at this git ref (e.g. origin/main) instead "
        "of the checked-in files",
    )
    check.add_argument(
        "--retire",
        metavar="TYPE",
        action="append",
        default=[],
        help="an event type removed on purpose: reported, not failing (repeatable)",
    )
    check.add_argument("--json", action="store_true", help="print the changes as JSON")

    p = commands.add_parser("package", help="build a deployable zip per function")
    p.add_argument(
        "--output-dir",
        type=Path,
        default=REPO_ROOT / "dist-functions",
        help="where to write <function>.zip (default dist-functions)",
    )
    p.add_argument(
        "--function",
        action="append",
        dest="functions",
        help="package only this function (repeatable)",
    )
    command_modules.add_parsers(commands, command_modules.load())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _stop_signals_interrupt():
            topology = load_topology(args.topology)
            return _run(args, topology)
    except ToolkitError as exc:
        print(f"pubsub-kit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (``kill``, ``timeout``, a closed terminal, a container stop) stop a
    command the way Ctrl-C does, so ``dev`` and ``demo`` stop the functions they started and
    free their ports instead of dying with them still listening."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_Command = Callable[[argparse.Namespace, Topology], int]


def _run(args: argparse.Namespace, topology: Topology) -> int:
    commands: dict[str, _Command] = {
        "provision": _provision,
        "publish": _publish,
        "dev": lambda args, topology: _dev(topology, args.project, args.port_base, args.store),
        "demo": _demo,
        "topology": _topology,
        "schema": _schema,
        "catalog": _catalog,
        "dlq": _dlq,
        "package": _package,
        "trace": _trace,
        "contracts": _contracts,
    }
    command = commands.get(args.command)
    if command is None:
        status = command_modules.run(command_modules.load(), args, topology)
        if status is None:
            raise AssertionError(args.command)  # argparse allows only the commands it knows
        return status
    return command(args, topology)


def _provision(args: argparse.Namespace, topology: Topology) -> int:
    from shared.config import project_id
    from shared.observability import configure_logging
    from shared.tools.provision import provision

    configure_logging()
    report = provision(topology, project=args.project or project_id())
    print(
        f"provisioned: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged"
    )
    return 0


def _demo(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools.demo import run_demo

    return run_demo(
        topology,
        port_base=args.port_base,
        keep_running=args.keep_running,
        timeout=args.timeout,
        store=args.store,
    )


def _schema(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools.contracts import write_contracts

    stale = write_contracts(topology, args.output_dir, check=args.check)
    for path in stale:
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


def _catalog(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools import catalog

    settings = CatalogSettings(args.system, args.owner, args.lifecycle)
    to_stdout = args.output == "-"
    if to_stdout and args.check:
        raise ToolkitError("--check compares files: give --output a file path, not -")
    files: dict[Path, str] = {}
    text = catalog.to_yaml(catalog.catalog_entities(topology, settings))
    if not to_stdout:
        files[Path(args.output)] = text
    if args.readme is not None:
        if not args.readme.is_file():
            raise ToolkitError(f"{args.readme} is not a file; --readme takes the README to update")
        current = _read(args.readme)
        files[args.readme] = catalog.replace_diagram(
            current, catalog.mermaid(topology), source=str(args.readme)
        )
    if args.check:
        stale = [path for path, new in files.items() if _read(path) != new]
        command = "pubsub-kit catalog" + (f" --readme {args.readme}" if args.readme else "")
        for path in stale:
            print(f"{path} differs from the topology; run: {command}", file=sys.stderr)
        return 1 if stale else 0
    if to_stdout:
        sys.stdout.write(text)
    for path, new in files.items():
        _write(path, new)
        print(f"wrote {path}", file=sys.stderr if to_stdout else sys.stdout)
    return 0


def _trace(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools import traces
    from shared.tools.dev import TRACE_DIR

    found = traces.traces_of(args.event_id, args.dir or TRACE_DIR)
    if args.json:
        print(json.dumps([traces.as_json(t) for t in found], indent=2))
    else:
        print("\n\n".join(traces.render(t) for t in found))
    return 0


def _contracts(args: argparse.Namespace, topology: Topology) -> int:
    """``contracts check``: every change per event type, then a verdict; 1 when one breaks."""
    from shared.tools import compat
    from shared.tools.contracts import event_schemas

    root = project_root()  # read now, so PUBSUB_KIT_ROOT set after import counts
    if args.against is None:
        old = compat.checked_in_schemas(root / compat.CONTRACTS_DIR)
        against = f"the checked-in {compat.CONTRACTS_DIR}"
    else:
        old = compat.schemas_at_ref(root, args.against)
        against = f"{compat.CONTRACTS_DIR} at {args.against}"
    new = event_schemas(topology)
    changes = compat.compare_contracts(old, new, retire=args.retire)
    for event_type in sorted(set(args.retire) - set(old)):
        print(f"note: --retire {event_type}: not in {against}; nothing to retire", file=sys.stderr)
    if args.json:
        print(json.dumps([change.as_json() for change in changes], indent=2))
    else:
        for change in changes:
            print(change.sentence)
        print(compat.summary(changes, len(set(old) | set(new)), against))
    breaking = any(change.breaking for change in changes)
    if changes and not breaking and args.against is None:
        print(
            "the checked-in contracts are behind the models; update them: pubsub-kit schema",
            file=sys.stderr,
        )
    return 1 if breaking else 0


def _package(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools.package import build_packages

    for path in build_packages(topology, args.output_dir, only=args.functions):
        print(path)
    return 0


def _topology(args: argparse.Namespace, topology: Topology) -> int:
    if args.topology_command == "show":
        for sub in sorted(topology.subscriptions.values(), key=lambda s: s.name):
            c = sub.consumer
            extra = f", filter: {c.filter}" if c.filter else ""
            print(
                f"{sub.topic.name} -> {sub.name} -> {c.name} "
                f"(ack {c.ack_deadline}s, {c.max_delivery_attempts} attempts, "
                f"dead letters: {sub.dead_letter_topic}{extra})"
            )
        return 0
    text = terraform_json(topology)
    if args.check:
        current = _read(args.output)
        if current != text:
            print(
                f"{args.output} differs from the topology; "
                "run: pubsub-kit topology export --terraform",
                file=sys.stderr,
            )
            return 1
        return 0
    _write(args.output, text)
    print(f"wrote {args.output}")
    return 0


def _read(path: Path) -> str:
    """The text of ``path`` ("" when it does not exist), or a sentence saying why not."""
    try:
        return path.read_text() if path.exists() else ""
    except OSError as exc:
        raise ToolkitError(f"cannot read {path}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise ToolkitError(
            f"cannot write {path}: {exc.strerror or exc}; --output takes a file path"
        ) from None


def _publish(args: argparse.Namespace, topology: Topology) -> int:
    from shared.publisher import Publisher

    event = topology.registry.parse(args.event_type, args.data)  # named errors, before any I/O
    publisher = Publisher(topology, project=args.project, source="/cli/pubsub-kit")
    message_id = publisher.publish(
        event, ordering_key=args.ordering_key, correlation_id=args.correlation_id
    ).result(timeout=publisher.settings.timeout)
    print(f"published {args.event_type} to {topology.topic_for(event).name}: message {message_id}")
    return 0


def _dlq(args: argparse.Namespace, topology: Topology) -> int:
    from shared.config import project_id
    from shared.tools import dlq

    project = args.project or project_id()
    if args.dlq_command == "inspect":
        letters = dlq.inspect(topology, args.subscription, project=project, max_messages=args.max)
        for letter in letters:
            print(
                json.dumps(
                    {
                        "message_id": letter.message_id,
                        "event_id": letter.event_id,
                        "event_type": letter.event_type,
                        "attempts": letter.attempts,
                        "reason": letter.reason,
                    }
                )
            )
        print(f"{len(letters)} dead letter(s) on {args.subscription}", file=sys.stderr)
        return 0
    count = dlq.replay(topology, args.subscription, project=project, max_messages=args.max)
    print(f"replayed {count} message(s) to {topology.subscription(args.subscription).topic.name}")
    return 0


def _dev(topology: Topology, project: str, port_base: int, store: str) -> int:
    from shared.tools.demo import format_log_line
    from shared.tools.dev import STATE_DIR, LocalSystem, record_traces

    def on_line(name: str, line: str) -> None:
        print(format_log_line(name, line), flush=True)

    store_url = "firestore" if store == "firestore" else f"sqlite:///{STATE_DIR / 'dev.db'}"
    system = LocalSystem(
        topology,
        project=project,
        store_url=store_url,
        port_base=port_base,
        on_line=on_line,
        trace_dir=record_traces("pubsub-kit-dev"),
    )
    try:
        system.start()
        for fn in system.functions.values():
            print(f"{fn.name:<20} {fn.url}", flush=True)
        print(
            f"delivering on project {project}; publish with PUBSUB_EMULATOR_HOST="
            f"{system.env.get('PUBSUB_EMULATOR_HOST')} PUBSUB_PROJECT_ID={project}. Ctrl-C stops.",
            flush=True,
        )
        import time

        while True:
            # Short naps: a signal the kernel hands to another thread (gRPC's, say) runs its
            # Python handler only when the main thread wakes up.
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping: delivery first, then the functions", flush=True)
    finally:
        system.stop()
    _exit_if_threads_hang()
    return 0


def _exit_if_threads_hang() -> None:
    """Exit now when the client library's stream threads outlived the stop.

    The emulator never closes a cancelled streaming pull, and the library's threads for such a
    stream can wait on it forever; the interpreter would then wait for them at exit, and a
    stopped ``dev`` would never end. Everything of ours is stopped by now.
    """
    import threading

    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if stuck:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
