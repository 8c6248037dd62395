"""Loading the old contracts: the checked-in files, or those committed at a git ref."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from shared.errors import ToolkitError
from shared.tools.compat._shape import _kind_of, check_shape

CONTRACTS_DIR = "docs/contracts"  # relative to the project root, as `pubsub-kit schema` writes it
SCHEMA_SUFFIX = ".schema.json"


def checked_in_schemas(folder: Path) -> dict[str, dict[str, Any]]:
    """Event type -> schema, from the ``<type>.schema.json`` files in ``folder``.

    Raises:
        ToolkitError: the folder is missing, or a file is unreadable or not a JSON Schema.
    """
    if not folder.is_dir():
        raise ToolkitError(
            f"no contracts folder at {folder}; write it with `pubsub-kit schema` and check it in"
        )
    schemas = {}
    for path in sorted(folder.glob(f"*{SCHEMA_SUFFIX}")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ToolkitError(f"cannot read {path}: {_reason(exc)}") from None
        schemas[path.name.removesuffix(SCHEMA_SUFFIX)] = parse_schema(text, str(path))
    return schemas


def schemas_at_ref(root: Path, ref: str, folder: str = CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Event type -> schema, from ``folder`` (relative to ``root``) as committed at git ``ref``.

    Raises:
        ToolkitError: ``root`` is not in a git repository, ``ref`` is unknown, the folder is not
            in it, or a file is not a JSON Schema.
    """
    if not ref or ref.startswith("-"):
        raise ToolkitError(f"--against takes a git ref such as origin/main; found {ref!r}")
    if _git(root, "rev-parse", "--git-dir").returncode != 0:
        raise ToolkitError(
            f"{root} is not in a git repository, so there is no {ref} to compare with; "
            "leave out --against to use the checked-in contracts"
        )
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise ToolkitError(
            f"unknown git ref {ref!r}: name a branch, tag or commit "
            "(in CI, fetch the target branch first: git fetch origin main)"
        )
    commit = found.stdout.decode().strip()
    listed = _git(root, "ls-tree", "-z", "--name-only", "--full-name", commit, "--", f"{folder}/")
    names = [n for n in listed.stdout.decode().split("\0") if n.endswith(SCHEMA_SUFFIX)]
    if listed.returncode != 0 or not names:
        raise ToolkitError(f"{ref} has no {folder}/*{SCHEMA_SUFFIX}, so there is nothing to check")
    schemas = {}
    for name in sorted(names):
        source = f"{ref}:{name}"
        shown = _git(root, "show", f"{commit}:{name}")
        if shown.returncode != 0:
            raise ToolkitError(f"cannot read {source}: {shown.stderr.decode().strip()}")
        try:
            text = shown.stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolkitError(f"{source} is not UTF-8 text, so not JSON") from None
        schemas[Path(name).name.removesuffix(SCHEMA_SUFFIX)] = parse_schema(text, source)
    return schemas


def parse_schema(text: str, source: str) -> dict[str, Any]:
    """The JSON Schema in ``text``, checked by :func:`check_shape`; errors name ``source``."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolkitError(
            f"{source} is not JSON ({exc.msg} at line {exc.lineno}); "
            "regenerate it with `pubsub-kit schema`"
        ) from None
    except RecursionError:
        raise ToolkitError(f"{source} is nested too deeply to be an event's schema") from None
    if not isinstance(schema, dict):
        raise ToolkitError(
            f"{source} is not a JSON Schema: expected an object, found {_kind_of(schema)}"
        )
    check_shape(schema, source)
    return schema


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise ToolkitError("--against needs git, and there is no git on PATH") from None
    except subprocess.TimeoutExpired:
        raise ToolkitError(f"git {args[0]} did not answer within 60 s") from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
