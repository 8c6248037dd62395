"""The user's project as the local tools see it: its folder, what lives where, its topology.

A project is a folder with a ``pyproject.toml`` and a ``functions/`` folder (one subfolder per
consumer). The tools find it from the working directory up, or take ``pubsub-kit --root DIR``
(``PUBSUB_KIT_ROOT``), and read and write only there, never beside the installed package:

========================  =============================================================
``functions/<name>/``     each consumer's Cloud Function: ``main.py`` and its modules
``infra/topology.json``   ``pubsub-kit topology export --terraform``
``docs/contracts/``       ``pubsub-kit schema``
``catalog-info.yaml``     ``pubsub-kit catalog``
``dist-functions/``       ``pubsub-kit package``
``.pubsub-kit/``          ``dev`` and ``demo``: SQLite stores, traces, ``ports.json``
``.emulator/``            ``pubsub-kit emulator``: pid, port and log files
========================  =============================================================

The topology is ``module:attribute``: ``--topology``, else ``PUBSUB_KIT_TOPOLOGY``, else the
project's ``pyproject.toml``::

    [tool.pubsub-kit]
    topology = "orders.topology:TOPOLOGY"

Every path is computed when it is asked for, so ``--root`` (read after import) counts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from pathlib import Path

from shared.config import find_project_root, is_project_root, project_root
from shared.errors import ConfigurationError

ROOT_VARIABLE = "PUBSUB_KIT_ROOT"
TOPOLOGY_VARIABLE = "PUBSUB_KIT_TOPOLOGY"
SETTINGS_TABLE = "pubsub-kit"  # [tool.pubsub-kit] in pyproject.toml


def root() -> Path:
    """The project folder (see :func:`shared.config.project_root`).

    Raises:
        ConfigurationError: there is no project here; the message says what one is.
    """
    return project_root()


def find_root() -> Path | None:
    """Like :func:`root`, but ``None`` outside a project."""
    explicit = os.environ.get(ROOT_VARIABLE)
    return Path(explicit).resolve() if explicit else find_project_root(Path.cwd().resolve())


def use_root(folder: Path) -> Path:
    """Make ``folder`` the project for this process and its children (``--root``).

    Raises:
        ConfigurationError: ``folder`` is not a project folder.
    """
    resolved = folder.expanduser().resolve()
    if not resolved.is_dir():
        raise ConfigurationError(f"--root {folder}: no such folder")
    if not is_project_root(resolved):
        raise ConfigurationError(
            f"--root {folder} is not a pubsub-kit project: expected a folder with a "
            "pyproject.toml and a functions/ folder (create one with `pubsub-kit new project DIR`)"
        )
    os.environ[ROOT_VARIABLE] = str(resolved)
    return resolved


def functions_dir() -> Path:
    return root() / "functions"


def state_dir() -> Path:
    """``.pubsub-kit/``: what ``dev`` and ``demo`` keep between runs."""
    return root() / ".pubsub-kit"


def trace_dir() -> Path:
    """Where ``dev`` and ``demo`` record spans and ``pubsub-kit trace`` reads them."""
    return state_dir() / "traces"


def ports_file() -> Path:
    """Each function's port slot, so that a function keeps its port when consumers are added."""
    return state_dir() / "ports.json"


def emulator_state_dir() -> Path:
    """``.emulator/``: the emulators' pid, port and log files."""
    return root() / ".emulator"


def terraform_export() -> Path:
    return root() / "infra" / "topology.json"


def contracts_dir() -> Path:
    return root() / "docs" / "contracts"


def catalog_file() -> Path:
    return root() / "catalog-info.yaml"


def packages_dir() -> Path:
    return root() / "dist-functions"


def topology_spec(explicit: str | None = None) -> str:
    """The topology to load: ``explicit``, ``PUBSUB_KIT_TOPOLOGY``, or the project's setting.

    Raises:
        ConfigurationError: none is given, or pyproject.toml cannot be read.
    """
    spec = explicit or os.environ.get(TOPOLOGY_VARIABLE)
    if spec:
        return spec
    folder = root()
    configured = configured_topology(folder)
    if configured is None:
        raise ConfigurationError(
            f"no topology declared for {folder}: add [tool.{SETTINGS_TABLE}] with "
            'topology = "package.module:TOPOLOGY" to its pyproject.toml, or pass --topology '
            f"(or set {TOPOLOGY_VARIABLE})"
        )
    return configured


def configured_topology(folder: Path) -> str | None:
    """``topology`` of ``[tool.pubsub-kit]`` in ``folder/pyproject.toml``, if it says one.

    Raises:
        ConfigurationError: the file is not valid TOML, or the setting is not a string.
    """
    path = folder / "pyproject.toml"
    try:
        settings = tomllib.loads(path.read_text()).get("tool", {}).get(SETTINGS_TABLE, {})
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    value = settings.get("topology") if isinstance(settings, dict) else None
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(
            f"{path}: [tool.{SETTINGS_TABLE}] topology must be a string like "
            f'"package.module:TOPOLOGY"; found {value!r}'
        )
    return value


def make_importable() -> Path | None:
    """Put the project folder first on ``sys.path``, as ``python -m`` from it would.

    The console script's own folder is on the path, not the working directory, so a project's
    topology module would not import otherwise. Returns the folder, or ``None`` outside a project.
    """
    folder = find_root()
    if folder is None:
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


def topology_package(spec: str) -> Path | None:
    """The folder of the project's own top-level package that ``spec``'s module is in.

    ``orders/`` for ``orders.topology:TOPOLOGY`` in the project: ``pubsub-kit package`` ships
    it with every function, which imports the topology from it. ``None`` for a module that is not
    in the project (an installed package, this toolkit's own ``shared``) or not in a package.
    """
    top = spec.partition(":")[0].split(".")[0]
    folder = find_root()
    try:
        found = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        return None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if folder is None or len(locations) != 1:
        return None  # a plain module, or a namespace package spread over several folders
    package = Path(locations[0]).resolve()
    return package if package.is_relative_to(folder) and package.name != "shared" else None
