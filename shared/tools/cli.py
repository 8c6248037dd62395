"""``pubsub-kit``: provision, run, inspect and export the topology.

    pubsub-kit provision                      create topics and subscriptions on the emulator
    pubsub-kit publish TYPE DATA              publish events (JSON, @file or -), validated first
    pubsub-kit dev                            run every function locally until Ctrl-C
    pubsub-kit demo                           run the system, publish demo events, report
    pubsub-kit topology export --terraform    write infra/topology.json
    pubsub-kit schema                         write JSON Schemas, .proto files and AsyncAPI
    pubsub-kit catalog [--readme README.md]   write catalog-info.yaml (Backstage), the diagram
    pubsub-kit contracts check                fail on a breaking change to an event type
    pubsub-kit dlq list|inspect|replay|purge  dead letters: count, show, replay, delete
    pubsub-kit package                        build a deployable zip per function
    pubsub-kit new project DIR                start a project: pyproject.toml, topology, functions/
    pubsub-kit new consumer NAME --topic T    scaffold a consumer: function, handler, test, entry
    pubsub-kit emulator start|stop|status     the local emulators (state in .emulator/)

Run it inside a project (a folder with ``pyproject.toml`` and ``functions/``, found from the
working directory up) or give ``--root DIR``; what it writes goes there. The topology is
``--topology module:attribute``, else ``PUBSUB_KIT_TOPOLOGY``, else the project's
``[tool.pubsub-kit] topology = "module:attribute"`` in pyproject.toml (see shared.tools.project).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from shared.config import project_root
from shared.errors import ToolkitError
from shared.tools import commands as command_modules
from shared.tools import project
from shared.tools.catalog import CatalogSettings
from shared.topology import Topology


def load_topology(spec: str) -> Topology:
    """Import ``module:attribute`` and check it is a :class:`Topology`.

    Raises:
        ToolkitError: the spec is malformed or relative, the module raised while it was imported
            (whatever it raised: named by type, message and line, since the message comes from
            the project's code, a declaration error says what to fix, and no event data is
            about yet), or the attribute is not a :class:`Topology`.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ToolkitError(f"--topology must look like 'package.module:NAME'; found {spec!r}")
    if module_name.startswith("."):
        raise ToolkitError(
            f"--topology takes an absolute module path like 'package.module:NAME'; found the "
            f"relative {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ToolkitError(f"cannot import topology module {module_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the project's own code runs here, raising anything
        raise ToolkitError(
            f"cannot import topology module {module_name!r}: it raised {type(exc).__name__}"
            f"{_raised_at(exc, outside=(__file__,))}: {' '.join(str(exc).split())}"
        ) from None
    topology = getattr(module, attribute, None)
    if not isinstance(topology, Topology):
        raise ToolkitError(f"{spec} is not a Topology (found {type(topology).__name__})")
    return topology


def terraform_json(topology: Topology) -> str:
    """The exact text of ``infra/topology.json`` for ``topology``."""
    return json.dumps(topology.to_terraform(), indent=2, sort_keys=True) + "\n"


def dev_store_url() -> str:
    """The SQLite store ``dev`` gives its functions: the toolkit's local default
    (``shared.config.DEFAULT_SQLITE_PATH``, ``.pubsub-kit/dev.db``) in the project folder."""
    from shared.config import DEFAULT_SQLITE_PATH

    return f"sqlite:///{project.root() / DEFAULT_SQLITE_PATH}"


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
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"expected a positive, finite number of seconds, found {text}"
        )
    return value


_port = whole_number(1024, 65000, "a port number")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pubsub-kit", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="the project folder (default: the nearest folder from here up with a "
        "pyproject.toml and a functions/ folder)",
    )
    parser.add_argument(
        "--topology",
        metavar="MODULE:NAME",
        help="the topology (default PUBSUB_KIT_TOPOLOGY, else [tool.pubsub-kit] topology in "
        "the project's pyproject.toml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("provision", help="create the topology on the emulator, idempotently")
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
        help="file to write (default infra/topology.json in the project)",
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
        help="folder to write (default docs/contracts in the project)",
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
        help="file to write, or - for standard output (default catalog-info.yaml in the project)",
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
        help="where to write <function>.zip (default dist-functions in the project)",
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
    """Run one command; its exit status. An error is one sentence on stderr, never a traceback."""
    try:
        with _stop_signals_interrupt():
            status = _command(argv)
            sys.stdout.flush()  # a reader that has gone (`| head`) shows here, not at exit
            return status
    except ToolkitError as exc:
        print(f"pubsub-kit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: stopped on purpose, nothing to say
        return 130
    except BrokenPipeError:  # `pubsub-kit ... | head`: the reader has gone
        return _stdout_gone()
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, still one sentence
        return _unexpected(exc)


def _command(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.root is not None:
        project.use_root(args.root)
    project.make_importable()
    standalone = command_modules.load().get(args.command)
    if standalone is not None and not getattr(standalone, "NEEDS_TOPOLOGY", True):
        return int(standalone.run(args, None))
    topology = load_topology(project.topology_spec(args.topology))
    return _run(args, topology)


DEBUG_VARIABLE = "PUBSUB_KIT_DEBUG"


def _unexpected(exc: Exception) -> int:
    """Say that an exception no command anticipated escaped: its type and where, not its
    message (it could quote event data, as the functions' logs never do); the traceback only
    under ``PUBSUB_KIT_DEBUG``."""
    if os.environ.get(DEBUG_VARIABLE):
        traceback.print_exception(exc)
    print(
        f"pubsub-kit: error: unexpected {type(exc).__name__}{_raised_at(exc)}; rerun with "
        f"{DEBUG_VARIABLE}=1 to see the traceback, and report it if it is not in your code",
        file=sys.stderr,
    )
    return 1


def _raised_at(exc: BaseException, *, outside: tuple[str, ...] = ()) -> str:
    """`` (raised at path:line)``: the innermost frame outside the import machinery (and
    ``outside``); "" when there is none."""
    skipped = ("<", str(Path(importlib.__file__).parent), *outside)
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(skipped)
    ]
    return f" (raised at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _stdout_gone() -> int:
    # Point stdout at /dev/null so that the interpreter's flush at exit does not fail again.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, as a shell reports a reader that left


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
        "dev": lambda args, topology: _dev(topology, args.project, args.port_base, args.store),
        "demo": _demo,
        "topology": _topology,
        "schema": _schema,
        "catalog": _catalog,
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
    from shared.tools.reach import require_pubsub

    project = args.project or project_id()
    require_pubsub(project)  # the client library alone retries a dead emulator for minutes
    configure_logging()
    report = provision(topology, project=project)
    print(
        f"provisioned: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged"
    )
    return 0


def _demo(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools.demo import run_demo

    _require_configured_emulators("demo", args.store)
    return run_demo(
        topology,
        port_base=args.port_base,
        keep_running=args.keep_running,
        timeout=args.timeout,
        store=args.store,
    )


def _require_configured_emulators(command: str, store: str) -> None:
    """``dev`` and ``demo`` start an emulator through emulator.sh when its variable is unset;
    one that the variable names must answer now, or provisioning would wait on it for minutes."""
    from shared.tools.emulator import HOST_VARIABLES

    for which in ("pubsub", "firestore") if store == "firestore" else ("pubsub",):
        variable = HOST_VARIABLES[which]
        host = os.environ.get(variable)
        if not host:
            continue
        name, _, port = host.rpartition(":")
        if not port.isdigit():
            raise ToolkitError(f"{variable} is {host!r}; expected host:port, e.g. 127.0.0.1:8085")
        try:
            with socket.create_connection((name.strip("[]") or "127.0.0.1", int(port)), 3.0):
                continue
        except OSError:
            pass
        raise ToolkitError(
            f"{variable} is {host}, but no emulator answers there; start it (pubsub-kit "
            f"emulator start {which}), or unset {variable} and `pubsub-kit {command}` starts one"
        )


def _schema(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools.contracts import write_contracts

    output_dir = _output_folder(args.output_dir or project.contracts_dir(), "--output-dir")
    try:
        stale = write_contracts(topology, output_dir, check=args.check)
    except OSError as exc:
        raise ToolkitError(_os_error("cannot write the contracts", exc)) from None
    for path in stale:
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


def _catalog(args: argparse.Namespace, topology: Topology) -> int:
    from shared.tools import catalog

    settings = CatalogSettings(args.system, args.owner, args.lifecycle)
    output = args.output or str(project.catalog_file())
    to_stdout = output == "-"
    if to_stdout and args.check:
        raise ToolkitError("--check compares files: give --output a file path, not -")
    files: dict[Path, str] = {}
    text = catalog.to_yaml(catalog.catalog_entities(topology, settings))
    if not to_stdout:
        files[_output_file(Path(output), "--output")] = text
    if args.readme is not None:
        if _kind(args.readme, "--readme") != "file":
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

    folder = args.dir or project.trace_dir()
    try:
        found = traces.traces_of(args.event_id, folder)
    except OSError as exc:  # --dir names something that cannot be read (a name too long, say)
        raise ToolkitError(_os_error(f"cannot read the traces in {folder}", exc)) from None
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

    own = project.topology_package(project.topology_spec(args.topology))
    output_dir = _output_folder(args.output_dir or project.packages_dir(), "--output-dir")
    try:
        written = build_packages(
            topology, output_dir, only=args.functions, vendor=[own] if own else []
        )
    except OSError as exc:
        raise ToolkitError(_os_error("cannot build the packages", exc)) from None
    for path in written:
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
    output = _output_file(args.output or project.terraform_export(), "--output")
    if args.check:
        current = _read(output)
        if current != text:
            print(
                f"{output} differs from the topology; run: pubsub-kit topology export --terraform",
                file=sys.stderr,
            )
            return 1
        return 0
    _write(output, text)
    print(f"wrote {output}")
    return 0


def _output_file(path: Path, option: str) -> Path:
    """``path``, when a file can be written there; else a sentence saying why, before any I/O."""
    if _kind(path, option) == "folder":
        raise ToolkitError(f"{option} {path} is a folder; {option} takes a file path")
    _no_file_above(path, option)
    return path


def _output_folder(path: Path, option: str) -> Path:
    """``path``, when it is or can become a folder; else a sentence saying why, before any I/O."""
    if _kind(path, option) == "file":
        raise ToolkitError(f"{option} {path} is a file; {option} takes a folder")
    _no_file_above(path, option)
    return path


def _no_file_above(path: Path, option: str) -> None:
    """Refuse a path under a file (``README.md/x``), which mkdir reports as "File exists"."""
    for parent in path.parents:
        kind = _kind(parent, option)
        if kind == "file":
            raise ToolkitError(f"{option} {path} is under {parent}, which is a file")
        if kind == "folder":
            return


def _kind(path: Path, option: str) -> str | None:
    """What is at ``path``: a file, a folder or nothing; a sentence when it cannot be told."""
    try:
        return "folder" if path.is_dir() else "file" if path.exists() else None
    except OSError as exc:  # a name too long, a folder we may not enter
        raise ToolkitError(f"{option} {path}: {exc.strerror or type(exc).__name__}") from None


def _os_error(doing: str, exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{doing}: {exc.strerror or type(exc).__name__}{where}"


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


def _dev(topology: Topology, project: str, port_base: int, store: str) -> int:
    from shared.tools.demo import format_log_line
    from shared.tools.dev import LocalSystem, record_traces
    from shared.tools.project import ports_file, root
    from shared.tools.reload import Reloader

    def on_line(name: str, line: str) -> None:
        print(format_log_line(name, line), flush=True)

    def restart(name: str, why: str) -> None:
        on_line(name, f"{why}: restarting")
        if system.restart_function(name):
            on_line(name, "restarted")

    _require_configured_emulators("dev", store)
    store_url = "firestore" if store == "firestore" else dev_store_url()
    system = LocalSystem(
        topology,
        project=project,
        store_url=store_url,
        port_base=port_base,
        on_line=on_line,
        trace_dir=record_traces("pubsub-kit-dev"),
        port_map=ports_file(),  # each function keeps its port when consumers are added
    )
    reloader = Reloader(root(), system.functions, restart)
    try:
        system.start()
        reloader.start()
        for fn in system.functions.values():
            print(f"{fn.name:<20} {fn.url}", flush=True)
        print("a code change restarts its function (shared code: all of them)", flush=True)
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
        reloader.stop()
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
