"""Cold start: a whole new process that loads a function as functions-framework does, then exits.

- toolkit: ``functions/order_notifications/main.py`` (a ``consumer(...).handler`` function).
  All three example functions import the same toolkit modules (their ``-X importtime`` module
  lists differ only by their own domain module), so one row stands for all of them; this one
  publishes, so it is the one that would pay for ``google.cloud.pubsub_v1`` if anything
  imported the client before the first publish.
- raw: a ``main.py`` written for this run: functions-framework and pydantic used by hand, one
  pydantic model with the fields of ``OrderDispatched`` and a ``@functions_framework.cloud_event``
  function that validates the event's data with it.
- raw, reference row: functions-framework and a bare ``import pydantic`` (which, in pydantic 2,
  loads neither ``BaseModel`` nor its schema machinery) and an empty ``cloud_event`` function.
  No function that defines a model, by hand or through the toolkit, can start as fast: the
  row shows how far from functions-framework alone the toolkit is.

Both sides are loaded by ``functions_framework.create_app(target, source)``, the loader that
``functions-framework --target`` runs at start-up (it creates the Flask app and execs
``main.py`` inside it), in a process started with ``sys.executable -c`` in the function's own
folder, as Cloud Functions does. The clock runs from spawning the process to its exit, so it
counts the interpreter's start and teardown on both sides. One warm-up process per side first
(the OS page cache and the ``.pyc`` files are warm; see :func:`child_environment`), then
``--cold-starts`` rounds, each starting every side of every row once (toolkit first in even
rounds, raw first in odd ones); the median is reported. The note of each row
gives the median CPU time (user + system) of the processes too: on a busy machine it moves
much less than the wall time.

The second row repeats the first with OpenTelemetry made unimportable in both processes (see
``HIDE_OPENTELEMETRY``); google-cloud-pubsub depends on it, so it is always installed here.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from harness import BenchError, Results

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTION = REPO_ROOT / "functions" / "order_notifications" / "main.py"

ROW = "cold: import a function's main.py vs functions-framework + pydantic"
ROW_NO_OTEL = "cold: the same, OpenTelemetry not importable"
ROW_BARE = "cold: the same vs functions-framework + bare `import pydantic`"

NOTES = {
    ROW: "fresh `python -c` process, spawn to exit; both sides loaded by "
    "functions_framework.create_app: functions/order_notifications/main.py vs a main.py "
    "with one pydantic model and a @cloud_event function that validates with it",
    ROW_NO_OTEL: "as above, both processes starting with a sys.meta_path finder (installed "
    "by the -c prelude, before any other import) that raises ModuleNotFoundError for "
    "opentelemetry and opentelemetry.*",
    ROW_BARE: "a reference: raw = `import functions_framework, pydantic` and an empty "
    "@cloud_event function; no model, so pydantic's BaseModel is never loaded",
}

# The functions-framework + pydantic function of the raw side: the same event shape as the
# toolkit's OrderDispatched, validated by hand.
RAW_MAIN = """\
from datetime import datetime

import functions_framework
from cloudevents.http import CloudEvent
from pydantic import BaseModel, ConfigDict, Field


class OrderDispatched(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    carrier: str = Field(min_length=1, max_length=64)
    dispatched_at: datetime


@functions_framework.cloud_event
def raw_function(cloud_event: CloudEvent) -> None:
    OrderDispatched.model_validate(cloud_event.data)
"""

BARE_MAIN = """\
import functions_framework
import pydantic  # noqa: F401
from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def raw_function(cloud_event: CloudEvent) -> None:
    pass
"""

# Prelude of the "not importable" row: ``import opentelemetry`` (or any submodule) fails as if
# the distribution were not installed, while everything else imports as usual.
HIDE_OPENTELEMETRY = """\
import sys


class _HideOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _HideOpenTelemetry())
"""

# After loading: the process fails (and the bench with it) if the prelude did not hold.
LOAD = """\
import functions_framework

functions_framework.create_app({target!r}, {source!r})
"""
CHECK_HIDDEN = """\
if [m for m in sys.modules if m.split(".")[0] == "opentelemetry"]:
    raise SystemExit("opentelemetry was loaded although it is hidden")
"""


def child_code(source: Path, target: str, *, hide_opentelemetry: bool) -> str:
    """The ``-c`` program that loads function ``target`` of ``source``."""
    code = LOAD.format(target=target, source=str(source))
    if hide_opentelemetry:
        code = HIDE_OPENTELEMETRY + code + CHECK_HIDDEN
    return code


def child_environment(pycache: Path) -> dict[str, str]:
    """The bench's environment (emulator host, project) for a child, minus what would change
    its start-up: coverage's process hook, telemetry switches (read only at the first message
    anyway) and ``PYTHONDONTWRITEBYTECODE``. Bytecode goes to ``pycache``
    (``PYTHONPYCACHEPREFIX``), so the warm-up compiles each side's modules once, without
    writing into the checkout, and every measured process of both sides loads ``.pyc`` files,
    as it does for the installed libraries; otherwise, with ``PYTHONDONTWRITEBYTECODE`` set, a
    toolkit module edited since its last ``.pyc`` was written is compiled in every process.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COVERAGE_", "OTEL_"))
        and k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


class Sample(NamedTuple):
    """One cold start."""

    wall: float
    """Seconds from spawning the process to its exit: what the row reports."""
    cpu: float
    """User + system CPU seconds of the process: less moved by other load on the machine."""


def cold_start(code: str, cwd: Path, env: dict[str, str], timeout: float, what: str) -> Sample:
    """Run ``python -c code`` in ``cwd`` to its end; fail unless it exits with 0."""
    # The bench has no other child that could end meanwhile, so the delta is this process's.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what}: the process did not exit within {timeout:g} s") from exc
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BenchError(f"{what}: the process exited with {done.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def run(args: argparse.Namespace, project: str, results: Results) -> None:
    """Record the cold-start rows; ``args.cold_starts`` processes per side and row."""
    del project  # nothing is provisioned: loading a function must not need Pub/Sub
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        env = child_environment(Path(folder) / "pycache")
        raw: dict[str, Path] = {}
        for name, text in (("raw", RAW_MAIN), ("bare", BARE_MAIN)):
            raw[name] = Path(folder) / name / "main.py"
            raw[name].parent.mkdir()
            raw[name].write_text(text)
        rows: dict[str, dict[str, Child]] = {}
        for row, raw_source, hide in (
            (ROW, raw["raw"], False),
            (ROW_NO_OTEL, raw["raw"], True),
            (ROW_BARE, raw["bare"], False),
        ):
            rows[row] = {
                "toolkit": Child(
                    child_code(FUNCTION, FUNCTION.parent.name, hide_opentelemetry=hide),
                    FUNCTION.parent,
                ),
                "raw": Child(
                    child_code(raw_source, "raw_function", hide_opentelemetry=hide),
                    raw_source.parent,
                ),
            }
        measure(rows, args.cold_starts, env, args.timeout, results)


class Child(NamedTuple):
    """One side of a row: the ``-c`` program and the folder it starts in."""

    code: str
    cwd: Path


def measure(
    rows: dict[str, dict[str, Child]],
    rounds: int,
    env: dict[str, str],
    timeout: float,
    results: Results,
) -> None:
    """One warm-up process per side, then ``rounds`` rounds, each starting every side of every
    row once: the rows share the machine's ups and downs (the bench's emulator is still warming
    up its JVM during the first seconds), and within a row the order alternates per round."""
    for row, sides in rows.items():
        for side, child in sides.items():  # warm-up: page cache and .pyc files
            cold_start(child.code, child.cwd, env, timeout, f"{row} ({side}, warm-up)")
    cpu: dict[str, dict[str, list[float]]] = {row: {"toolkit": [], "raw": []} for row in rows}
    for round_ in range(rounds):
        order = ["toolkit", "raw"] if round_ % 2 == 0 else ["raw", "toolkit"]
        for row, sides in rows.items():
            for side in order:
                child = sides[side]
                sample = cold_start(child.code, child.cwd, env, timeout, f"{row} ({side})")
                results.record_time(row, side, sample.wall)
                cpu[row][side].append(sample.cpu)
    for row in rows:
        kit, raw = statistics.median(cpu[row]["toolkit"]), statistics.median(cpu[row]["raw"])
        results.note(
            row,
            f"{NOTES[row]}. Median CPU (user+sys): toolkit {kit:.3f} s, raw {raw:.3f} s, "
            f"{kit / raw:.2f}x",
        )
