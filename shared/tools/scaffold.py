"""``pubsub-kit new``: a new project, or a new consumer in one, written as a user would.

``new_project`` writes the smallest project the tools accept: a ``pyproject.toml`` that names the
topology (``[tool.pubsub-kit] topology``), a package with one event and a topology with one
topic, and ``functions/``. ``new_consumer`` writes ``functions/<name>/main.py`` (the Cloud
Function), ``functions/<name>/<name>_handler.py`` (a typed handler doing something minimal, to be
replaced), ``tests/test_<name>.py`` (its unit test through :class:`shared.testing.HandlerHarness`)
and adds ``Consumer("<name>", topics=["<topic>"])`` to the topology's ``consumers=[...]`` list.

Everything is checked before anything is written: a name the topology's rules refuse, a name
taken, an unknown topic or event, a topology source it cannot edit safely.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import json
import keyword
import re
import sys
import types
import typing
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.errors import ToolkitError, TopologyError
from shared.events import Event
from shared.topology import Consumer, Topology

# ---------------------------------------------------------------------------------------------
# new project


def new_project(folder: Path, package: str | None = None) -> list[Path]:
    """Write a minimal project into ``folder`` (created if missing); the files written.

    Args:
        folder: the project folder; it may exist, but none of the files to write may.
        package: the Python package for the events and the topology (default: from the
            folder's name, ``my-service`` -> ``my_service``).

    Raises:
        ToolkitError: a file to write exists, or the package name is not an identifier.
    """
    folder = folder.expanduser().resolve()
    package = package or _identifier(folder.name)
    if not package.isidentifier() or keyword.iskeyword(package) or package == "shared":
        raise ToolkitError(
            f"package name {package!r} is not usable: expected a Python identifier other than "
            "shared, like 'orders' (give one with --package)"
        )
    files = {
        "pyproject.toml": _PYPROJECT.format(dist=_distribution(folder.name), package=package),
        ".gitignore": _GITIGNORE,
        "functions/README.md": _FUNCTIONS_README,
        f"{package}/__init__.py": f'"""{package}: events and topology of this project."""\n',
        f"{package}/events.py": _EVENTS,
        f"{package}/topology.py": _TOPOLOGY.format(package=package),
    }
    existing = [name for name in files if (folder / name).exists()]
    if existing or (folder / "functions").is_file():
        raise ToolkitError(
            f"{folder} already has {', '.join(existing) or 'functions'}; "
            "`new project` writes into a new or empty folder"
        )
    return _write_all({folder / name: text for name, text in files.items()})


def _identifier(name: str) -> str:
    text = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return f"p_{text}" if text[:1].isdigit() else text


def _distribution(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]+", "-", name).strip("-._") or "service"


_PYPROJECT = """\
[project]
name = "{dist}"
version = "0.1.0"
description = "Event-driven services on Google Cloud Pub/Sub, built with pubsub-kit"
requires-python = ">=3.11"
dependencies = ["pubsub-kit"]

[project.optional-dependencies]
test = ["pytest>=8"]

# What `pubsub-kit` commands run in this folder use.
[tool.pubsub-kit]
topology = "{package}.topology:TOPOLOGY"

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

_GITIGNORE = """\
# pubsub-kit's local state (stores, traces, ports, emulator pid files) and function archives
.pubsub-kit/
.emulator/
dist-functions/
__pycache__/
.venv/
"""

_FUNCTIONS_README = """\
One folder per consumer, each a Cloud Function: `main.py` and the modules it imports.
`pubsub-kit new consumer NAME --topic TOPIC` writes one.
"""

_EVENTS = '''\
"""The events of this project: one class per versioned event type (the data only)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared import Event


class ItemCreated(Event):
    """An item was created: replace it with your own events (a breaking change: .v2)."""

    event_type: ClassVar[str] = "item.created.v1"
    subject_field: ClassVar[str | None] = "item_id"  # sent as ce-subject

    item_id: str
    name: str
    created_at: datetime
'''

_TOPOLOGY = '''\
"""The topology of this project: its topics, the events they carry, their consumers.

`pubsub-kit dev` runs it locally, `pubsub-kit topology export --terraform` writes it for
Terraform, and `pubsub-kit new consumer NAME --topic TOPIC` adds to the consumers below.
"""

from shared import Topic, Topology

from {package}.events import ItemCreated

TOPOLOGY = Topology(
    topics=[
        Topic("item-created", events=[ItemCreated]),
    ],
    consumers=[],
)
'''


# ---------------------------------------------------------------------------------------------
# new consumer


@dataclasses.dataclass(frozen=True)
class Scaffold:
    """What ``new_consumer`` did: the files it wrote, the topology file it edited, and notes."""

    written: list[Path]
    topology_file: Path
    entry: str
    notes: list[str]


def new_consumer(
    root: Path, spec: str, topology: Topology, name: str, topic: str, event: str | None = None
) -> Scaffold:
    """Scaffold consumer ``name`` of ``topic`` in the project at ``root``.

    Args:
        root: the project folder.
        spec: the topology as ``module:attribute`` (its module's source is edited).
        topology: that topology, loaded.
        name: the consumer, by the topology's naming rules (snake_case, 4-63 characters).
        topic: the topic it consumes.
        event: the event its handler takes: an event type (``item.created.v1``), a class name
            or ``module:Class``, one the topic carries. Default: the topic's newest versions
            (those no upcaster leads away from).

    Raises:
        ToolkitError: an invalid or taken name, an unknown topic or event, or a topology
            source that cannot be edited safely; nothing is written then.
    """
    if topic not in topology.topics:
        raise ToolkitError(
            f"no topic named {topic!r}; declared topics: {', '.join(sorted(topology.topics))}"
        )
    try:
        consumer = Consumer(name, topics=[topic])
    except TopologyError as exc:
        raise ToolkitError(str(exc)) from None
    if name in topology.consumers:
        raise ToolkitError(f"consumer {name!r} already exists in the topology ({spec})")
    function = root / "functions" / name
    test = root / "tests" / f"test_{name}.py"
    for path in (function, test):
        if path.exists():
            raise ToolkitError(
                f"{path.relative_to(root)} already exists; choose another name or remove it"
            )
    try:  # the whole topology with the new consumer: shared service accounts, name lengths
        Topology(
            topics=topology.topics.values(),
            consumers=[*topology.consumers.values(), consumer],
            upcasters=topology.upcasters.values(),
        )
    except TopologyError as exc:
        raise ToolkitError(str(exc)) from None
    models = _handled_models(topology, topic, event)
    module_name, _, attribute = spec.partition(":")
    source_file = _module_file(module_name, root, name, topic)
    entry = f'Consumer("{name}", topics=["{topic}"])'
    edited = add_consumer_entry(source_file.read_text(), attribute, entry)
    if edited is None:
        raise ToolkitError(
            f"cannot add the consumer to {source_file.relative_to(root)} safely: {attribute} "
            f"there has no `consumers=[...]` list; add {entry} to its consumers by hand "
            "(and import Consumer from shared), or make them such a list"
        )
    example, notes = _example_event(models[0])
    files = {
        function / "main.py": _main_py(name, topic, module_name, attribute, models),
        function / f"{name}_handler.py": _handler_py(name, topic, module_name, models),
        test: _test_py(name, module_name, attribute, models, example),
    }
    written = _write_all(files)
    source_file.write_text(edited)
    return Scaffold(written, source_file, entry, notes)


def _handled_models(topology: Topology, topic: str, event: str | None) -> list[type[Event]]:
    carried = list(topology.topics[topic].events)
    if event is None:
        newest = [m for m in carried if m.event_type not in topology.upcasters]
        return newest or carried
    for model in carried:
        if event in (model.event_type, model.__name__, f"{model.__module__}:{model.__qualname__}"):
            return [model]
    known = ", ".join(f"{m.event_type} ({m.__module__}:{m.__qualname__})" for m in carried)
    raise ToolkitError(f"topic {topic!r} does not carry {event!r}; it carries {known}")


def _module_file(module_name: str, root: Path, name: str, topic: str) -> Path:
    module = sys.modules.get(module_name)
    path = Path(module.__file__).resolve() if module and module.__file__ else None
    if path is None or not path.is_relative_to(root) or path.suffix != ".py":
        where = f" ({path})" if path else ""
        raise ToolkitError(
            f"the topology module {module_name}{where} is not a source file in the project "
            f'{root}; add Consumer("{name}", topics=["{topic}"]) to it by hand'
        )
    return path


def add_consumer_entry(source: str, attribute: str, entry: str) -> str | None:
    """``source`` with ``entry`` appended to the ``consumers=[...]`` list of ``attribute``.

    ``attribute`` must be assigned a call (``TOPOLOGY = Topology(..., consumers=[...])``) at the
    module's top level. ``Consumer`` is imported from ``shared`` when the module has no such
    name. ``None`` when there is no such list: the caller says what to add by hand.
    """
    tree = ast.parse(source)
    target = _consumers_list(tree, attribute)
    if target is None:
        return None
    keyword_node, listing = target
    data = source.encode()
    starts = _line_starts(data)

    def offset(line: int, column: int) -> int:  # ast columns count UTF-8 bytes
        return starts[line - 1] + column

    line_of = data.splitlines()
    indent = _indent(line_of[keyword_node.lineno - 1])
    close = offset(listing.end_lineno or listing.lineno, (listing.end_col_offset or 1) - 1)
    if not listing.elts:
        insertion = f"[\n{indent}    {entry},\n{indent}]".encode()
        data = data[: offset(listing.lineno, listing.col_offset)] + insertion + data[close + 1 :]
    else:
        last = listing.elts[-1]
        after = offset(last.end_lineno or last.lineno, last.end_col_offset or 0)
        between = data[after:close]
        comma = b"" if between.lstrip().startswith(b",") else b","
        if b"\n" in between:  # one element a line: the new one on a line of its own, after
            # the end of the last one's line, so that a comment there stays with it
            end_of_line = data.index(b"\n", after)
            element_indent = _indent(line_of[last.lineno - 1])
            new_line = f"\n{element_indent}{entry},".encode()
            data = data[:end_of_line] + new_line + data[end_of_line:]
            data = data[:after] + comma + data[after:]
        else:
            at = after + between.index(b",") + 1 if not comma else after
            data = data[:at] + comma + f" {entry}".encode() + data[at:]
    text = data.decode()
    if not _binds(tree, "Consumer"):
        text = _import_consumer(text)
    edited = _consumers_list(ast.parse(text), attribute)
    if edited is None or len(edited[1].elts) != len(listing.elts) + 1:
        return None  # never write what we cannot read back as intended
    return text


def _consumers_list(tree: ast.Module, attribute: str) -> tuple[ast.keyword, ast.List] | None:
    for node in tree.body:
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attribute for t in node.targets
        ):
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = node.value if node.target.id == attribute else None
        if isinstance(value, ast.Call):
            for kw in value.keywords:
                if kw.arg == "consumers" and isinstance(kw.value, ast.List):
                    return kw, kw.value
    return None


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _indent(line: bytes) -> str:
    return line[: len(line) - len(line.lstrip())].decode()


def _binds(tree: ast.Module, name: str) -> bool:
    """Whether the module binds ``name`` at its top level (an import, a class, an assignment)."""
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ClassDef | ast.FunctionDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return name in bound


def _import_consumer(text: str) -> str:
    """``text`` with ``Consumer`` imported: added to a one-line ``from shared import ...``, or a
    line of its own after the last import."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    for node in imports:
        one_line = node.end_lineno == node.lineno and "(" not in lines[node.lineno - 1]
        if isinstance(node, ast.ImportFrom) and node.module == "shared" and one_line:
            names = sorted({*(ast.unparse(alias) for alias in node.names), "Consumer"})
            line = lines[node.lineno - 1]
            lines[node.lineno - 1] = (
                f"{_indent(line.encode())}from shared import {', '.join(names)}\n"
            )
            return "".join(lines)
    at = (imports[-1].end_lineno or imports[-1].lineno) if imports else 0
    return "".join([*lines[:at], "from shared import Consumer\n", *lines[at:]])


def _imports(models: Sequence[type[Event]]) -> list[str]:
    by_module: dict[str, list[str]] = {}
    for model in models:
        by_module.setdefault(model.__module__, []).append(model.__qualname__)
    return [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(by_module.items())]


def _import_blocks(statements: Sequence[str], own: str) -> str:
    """Import lines in isort's sections: standard library, third-party, then the project's own
    (the package ``own`` that holds the topology; ``shared`` when it is the toolkit's example)."""
    stdlib, third, first = [], [], []
    for statement in statements:
        top = statement.split()[1].split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            stdlib.append(statement)
        elif top == own:
            first.append(statement)
        else:
            third.append(statement)
    blocks = [sorted(set(block), key=_isort) for block in (stdlib, third, first) if block]
    return "\n\n".join("\n".join(block) for block in blocks)


def _isort(statement: str) -> tuple[bool, str]:
    """isort's order within a section: ``import x`` lines first, then ``from x import``."""
    return statement.startswith("from "), statement.lower()


def _literal(value: Any) -> str:
    """Python source for ``value``, strings in double quotes as ruff and black write them."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _annotation(models: Sequence[type[Event]]) -> str:
    return " | ".join(m.__qualname__ for m in models)


_MAIN = '''\
"""Cloud Function {name}: handles {types} from {topic}.

Thin on purpose: what it does is in {name}_handler.py.
"""

{imports}

app = consumer({attribute}, "{name}")


@functions_framework.http
@app.handler
def {name}(event: {annotation}, delivery: Delivery) -> None:
    handle(app.store, event, delivery)
'''

_HANDLER = '''\
"""What {name} does with each event from {topic}: a placeholder to replace.

The runtime calls it once the event is decoded and validated and duplicates are dropped.
Return normally and the message is acknowledged; raise RetryableError (or let any other
exception escape) and it is redelivered with backoff; raise PermanentError and it goes
to the dead-letter topic at once, with your reason. Delivery is at least once: make
every effect idempotent, as the counter below is with once=.
"""

from __future__ import annotations

{imports}

log = logging.getLogger(__name__)

COUNTS = "{name}"  # the store collection the placeholder counts events in


def handle(store: Store, event: {annotation}, delivery: Delivery) -> bool:
    """Count the event once, by type, and log it. Replace it with what {name} does.

    Returns:
        Whether it was counted: False for an event counted before.
    """
    once = f"{name}/{{delivery.event_key}}"
    counted = store.increment(COUNTS, "events", event.event_type, once=once)
    log.info(f"{name} handled {{event.event_type}} (subject {{event.subject}})")
    return counted
'''

_TEST = '''\
"""{name}'s handler through the production pipeline, in memory: no emulator needed."""

from __future__ import annotations

{imports}

# A function's folder is its import root, as on Cloud Functions.
FUNCTION = Path(__file__).resolve().parents[1] / "functions" / "{name}"
sys.path.insert(0, str(FUNCTION))

from {name}_handler import COUNTS, handle  # noqa: E402


def example() -> {model}:
    return {model}(
{arguments}    )


def test_{name}_counts_an_event_once_even_when_delivered_twice() -> None:
    store = SqliteStore(":memory:")
    harness = HandlerHarness(
        {attribute},
        "{name}",
        lambda event, delivery: handle(store, event, delivery),
        store=store,
        accepts=[{accepts}],
    )
    first = harness.deliver(example(), event_id="e-1")
    again = harness.deliver(example(), event_id="e-1", attempt=2)
    assert first.outcome is Outcome.HANDLED, first.reason
    assert again.outcome is Outcome.DUPLICATE
    assert store.counters(COUNTS, "events") == {{"{event_type}": 1}}
'''


def _main_py(
    name: str, topic: str, module: str, attribute: str, models: Sequence[type[Event]]
) -> str:
    imports = [
        "import functions_framework",
        f"from {name}_handler import handle",
        "from shared import Delivery, consumer",
        *_imports(models),
        f"from {module} import {attribute}",
    ]
    return _MAIN.format(
        name=name,
        topic=topic,
        types=", ".join(m.event_type for m in models),
        imports=_import_blocks(imports, module.split(".")[0]),
        attribute=attribute,
        annotation=_annotation(models),
    )


def _handler_py(name: str, topic: str, module: str, models: Sequence[type[Event]]) -> str:
    imports = [
        "import logging",
        "from shared import Delivery",
        "from shared.stores import Store",
        *_imports(models),
    ]
    return _HANDLER.format(
        name=name,
        topic=topic,
        imports=_import_blocks(imports, module.split(".")[0]),
        annotation=_annotation(models),
    )


def _test_py(
    name: str, module: str, attribute: str, models: Sequence[type[Event]], example: _Example
) -> str:
    imports = [
        "import sys",
        "from pathlib import Path",
        *example.imports,
        *_imports(models),
        f"from {module} import {attribute}",
        "from shared.stores.sqlite import SqliteStore",
        "from shared.testing import HandlerHarness, Outcome",
    ]
    return _TEST.format(
        name=name,
        imports=_import_blocks(imports, module.split(".")[0]),
        model=models[0].__qualname__,
        arguments="".join(f"        {field}={value},\n" for field, value in example.fields.items()),
        attribute=attribute,
        accepts=", ".join(m.__qualname__ for m in models),
        event_type=models[0].event_type,
    )


# ---------------------------------------------------------------------------------------------
# an example event for the generated test


@dataclasses.dataclass(frozen=True)
class _Example:
    fields: dict[str, str]  # field -> Python source of its value
    imports: set[str]


def _example_event(model: type[Event]) -> tuple[_Example, list[str]]:
    """Source for an instance of ``model`` (its required fields), and notes on what is missing."""
    fields: dict[str, str] = {}
    values: dict[str, Any] = {}
    imports: set[str] = set()
    notes: list[str] = []
    for field, info in model.model_fields.items():
        if not info.is_required():
            continue
        found = _example_value(info.annotation, field)
        if found is None:
            fields[field] = "None  # TODO: an example value"
            notes.append(
                f"tests: write an example value for {model.__qualname__}.{field} "
                f"({_type_name(info.annotation)}) by hand"
            )
            continue
        fields[field], values[field], needs = found
        imports |= needs
    if not notes:
        try:
            model(**values)
        except ValidationError as exc:
            wrong = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            notes.append(
                f"tests: the example {model.__qualname__} does not validate "
                f"({', '.join(wrong)}); adjust example() by hand"
            )
    return _Example(fields, imports), notes


def _example_value(annotation: Any, field: str) -> tuple[str, Any, set[str]] | None:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _example_value(arguments[0], field)
    if origin is typing.Literal:
        return _literal(arguments[0]), arguments[0], set()
    if origin in (typing.Union, types.UnionType):
        for member in arguments:
            if member is not type(None):
                return _example_value(member, field)
        return None
    if origin in (list, Sequence, tuple, set, frozenset):
        empty: Any = origin() if origin is not Sequence else []
        return repr(empty), empty, set()
    if origin is dict:
        return "{}", {}, set()
    return _plain_example(annotation, field)


def _plain_example(annotation: Any, field: str) -> tuple[str, Any, set[str]] | None:
    now = datetime.now(UTC)
    simple: dict[Any, tuple[str, Any, set[str]]] = {
        str: (_literal(f"{field}-1"), f"{field}-1", set()),
        int: ("1", 1, set()),
        float: ("1.0", 1.0, set()),
        bool: ("True", True, set()),
        datetime: ("datetime.now(UTC)", now, {"from datetime import UTC, datetime"}),
        date: ("date.today()", now.date(), {"from datetime import date"}),
        Decimal: ('Decimal("1")', Decimal("1"), {"from decimal import Decimal"}),
    }
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        first = next(iter(annotation))
        return _literal(first.value), first.value, set()
    return None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


# ---------------------------------------------------------------------------------------------


def _write_all(files: dict[Path, str]) -> list[Path]:
    """Write every file (folders made as needed); on a failure remove what was written."""
    written: list[Path] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x") as file:  # never over an existing file
                file.write(text)
            written.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise ToolkitError(f"cannot write {path}: {exc.strerror or exc}") from None
    return written
