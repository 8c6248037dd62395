"""Build one deployable zip per consumer: ``pubsub-kit package`` -> ``dist-functions/<name>.zip``.

Each archive holds what Cloud Functions (2nd gen) needs to build the function from source:

- every file of ``functions/<name>/`` at the root, so ``main.py`` is where the runtime looks
  for it and sibling modules (``timeline.py``) import as they do locally;
- the deployed part of the ``shared/`` package (its ``.py`` files and ``py.typed``), vendored
  because it is not on PyPI: ``main.py`` imports it from the folder it runs in. The local tools
  under ``shared/tools/`` (this module, the CLI, the local runtime, the demo, provisioning,
  dead-letter replay) stay behind: nothing deployed imports them;
- the project's own package that declares the topology (``orders/`` for
  ``orders.topology:TOPOLOGY``), vendored the same way, when it is not ``shared`` itself;
- ``requirements.txt``, which Cloud Build installs when it builds the function: pubsub-kit's
  runtime dependencies (with the ``otel`` extra's exporters) and everything they pull in,
  pinned (``name==version``) to the versions installed where the zip is built, so GCP runs
  what the tests ran.

Caches (``__pycache__``, ``*.pyc``) are left out. Archives are reproducible: sorted entries,
fixed timestamps and permissions, stored uncompressed (deflate output varies with the zlib
version, and a laptop and CI must agree); the same sources give the same bytes,
hence the same hash, which Terraform puts in the uploaded object's name so that only a real
change redeploys a function.
"""

from __future__ import annotations

import importlib.metadata
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import shared
from shared.config import project_root
from shared.errors import ToolkitError
from shared.topology import Topology

PACKAGE = Path(shared.__file__).resolve().parent
TOOLS = PACKAGE / "tools"  # local tools: never deployed
DISTRIBUTION = "pubsub-kit"
REQUIREMENTS = "requirements.txt"

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_MODE = stat.S_IFREG | 0o644  # a regular file, rw-r--r--


def build_packages(
    topology: Topology,
    output_dir: Path,
    only: Sequence[str] | None = None,
    *,
    root: Path | None = None,
    vendor: Sequence[Path] = (),
) -> list[Path]:
    """Write ``output_dir/<consumer>.zip`` for each consumer of ``topology``.

    Args:
        topology: the consumers to package; each lives in ``functions/<name>/``.
        output_dir: created if missing; existing archives are replaced atomically.
        only: consumer names to package (default: all of them).
        root: the project folder holding ``functions/`` (default: the project found from the
            working directory, see :func:`shared.config.project_root`).
        vendor: more package folders to ship at each archive's root beside ``shared/``: the
            project's own package that its functions import (``orders/``).

    Returns:
        The paths written, in consumer-name order.

    Raises:
        ToolkitError: an unknown consumer name, a missing ``main.py``, or a runtime dependency
            that is not installed (all checked before anything is written); a function file
            named like a generated entry (``requirements.txt``, ``shared/...``).

    Example::

        build_packages(TOPOLOGY, Path("dist-functions"), only=["timeline_enrichment"])
        # -> [PosixPath('dist-functions/timeline_enrichment.zip')]
    """
    root = root or project_root()
    names = sorted(topology.consumers) if only is None else sorted(set(only))
    unknown = [n for n in names if n not in topology.consumers]
    if unknown:
        raise ToolkitError(
            f"no consumer named {', '.join(map(repr, unknown))}; declared consumers: "
            f"{', '.join(sorted(topology.consumers)) or 'none'}"
        )
    for name in names:
        if not (root / "functions" / name / "main.py").is_file():
            raise ToolkitError(f"consumer {name!r} has no functions/{name}/main.py under {root}")
    requirements = pinned_requirements().encode()
    output_dir.mkdir(parents=True, exist_ok=True)
    return [
        _write_zip(
            output_dir / f"{name}.zip",
            _entries(root / "functions" / name, requirements, vendor),
        )
        for name in names
    ]


# pubsub-kit[otel]: the Cloud Trace and OTLP exporters, so that `enable_tracing` in infra/ works
# without repackaging. A function imports them only when OTEL_TRACES_EXPORTER names them.
DEPLOYED_EXTRAS = frozenset({"otel"})


def pinned_requirements() -> str:
    """``requirements.txt``: each runtime dependency, transitive ones too, at its installed version.

    Pinning the whole closure means Cloud Build installs exactly what the tests ran with, not
    whatever was newest on the day of the deploy. Markers are evaluated for the interpreter that
    builds the archive, so build with the Python version the functions run on.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise ToolkitError(
            f"{DISTRIBUTION} is not installed, so its runtime dependencies are unknown; "
            "install it first (pip install -e .) in the environment that builds the packages"
        ) from None
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    # (requirement, the extras its parent was installed with): markers may test `extra`.
    queue = [(text, DEPLOYED_EXTRAS) for text in declared]
    while queue:
        text, parent_extras = queue.pop()
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise ToolkitError(f"cannot read the dependency {text!r}") from None
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in ("", *parent_extras)
        ):
            continue  # another platform's, or an extra nobody asked for (tests never ship)
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise ToolkitError(
                f"{requirement.name} (required as {text!r}) is not installed here; "
                "install pubsub-kit with its otel extra before packaging "
                "(pip install 'pubsub-kit[otel]'; in its checkout: pip install -e '.[otel]')"
            ) from None
        pins[canonicalize_name(dist.metadata["Name"])] = dist.version
        queue.extend((child, frozenset(requirement.extras)) for child in dist.requires or [])
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def _entries(function: Path, requirements: bytes, vendor: Sequence[Path]) -> dict[str, bytes]:
    entries = {
        path.relative_to(function).as_posix(): path.read_bytes() for path in _files(function)
    }
    vendored = [f"{folder.name}/" for folder in vendor if folder.resolve() != PACKAGE]
    for generated in (REQUIREMENTS, "shared/", *vendored):
        clash = sorted(e for e in entries if e == generated or e.startswith(generated))
        if clash:
            raise ToolkitError(
                f"functions/{function.name}/ has {clash[0]}, which the package generates; remove it"
            )
    entries[REQUIREMENTS] = requirements
    for folder in vendor:
        if folder.resolve() == PACKAGE:
            continue  # shared/ itself (the toolkit's own example): shipped below
        for path in _files(folder):
            entries[f"{folder.name}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    for path in _files(PACKAGE):
        if TOOLS in path.parents:
            continue
        if path.suffix == ".py" or path.name == "py.typed":
            entries[f"shared/{path.relative_to(PACKAGE).as_posix()}"] = path.read_bytes()
    return entries


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _write_zip(target: Path, entries: dict[str, bytes]) -> Path:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            for arcname in sorted(entries):
                info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
                info.create_system = 3  # Unix, so the mode below is read on every platform
                info.external_attr = _MODE << 16
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, entries[arcname])
        os.chmod(temp, 0o644)  # mkstemp makes it 0600
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
