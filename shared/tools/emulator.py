"""The emulators from Python: use the one that is configured or running, or start one.

``emulator.sh`` is the one way anything here starts an emulator. It ships in this package
(``shared/tools/emulator.sh``), so an installed pubsub-kit needs nothing in the user's repository:
``pubsub-kit emulator`` runs it, and so does this module for the local runtime, the test suite and
the benchmarks, so "use the running emulator or start one" is written once. Its state (pid, port
and log files) is in the project's ``.emulator/``, never beside the installed script.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.errors import ConfigurationError
from shared.tools import ports, project

HOST_VARIABLES = {"pubsub": "PUBSUB_EMULATOR_HOST", "firestore": "FIRESTORE_EMULATOR_HOST"}
STATE_VARIABLE = "EMULATOR_STATE_DIR"
COMMAND = "pubsub-kit emulator"  # how the script names itself in its usage and hints


def script() -> Path:
    """``emulator.sh``, as installed with this package.

    Raises:
        ConfigurationError: it is missing (a broken install).
    """
    path = Path(__file__).resolve().with_name("emulator.sh")
    if not path.is_file():
        raise ConfigurationError(
            f"{path} is missing from the installed pubsub-kit; reinstall it (pip install ...)"
        )
    return path


def script_env() -> dict[str, str]:
    """The environment for the script: the project's ``.emulator/`` unless one is chosen."""
    env = dict(os.environ)
    if not env.get(STATE_VARIABLE):
        env[STATE_VARIABLE] = str(project.emulator_state_dir())
    env.setdefault("EMULATOR_COMMAND", COMMAND)
    return env


def command(*args: str) -> int:
    """Run ``emulator.sh ARGS`` in the foreground (its output is the user's); its exit status."""
    return subprocess.run(["bash", str(script()), *args], env=script_env(), check=False).returncode


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=script_env(),
    )


def running(which: str = "pubsub") -> bool:
    """Whether emulator.sh has ``which`` running (in its state folder)."""
    return _run("status", which, timeout=60).returncode == 0


def stop(which: str = "pubsub") -> None:
    _run("stop", which, timeout=60)


def start(which: str = "pubsub") -> dict[str, str]:
    """Start ``which`` emulator(s) through emulator.sh (a no-op when running); its env lines.

    Raises:
        ConfigurationError: emulator.sh failed; its message says what is missing.
    """
    done = _run("start", which, timeout=180)
    if done.returncode != 0:
        raise ConfigurationError(f"could not start the {which} emulator: {done.stderr.strip()}")
    return parse_exports(done.stdout)


def parse_exports(text: str) -> dict[str, str]:
    """``export A=b`` lines into a dict (what ``eval "$(./emulator.sh env)"`` would set)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value.strip("'\"")
    return env


@contextlib.contextmanager
def emulator(which: str = "pubsub", *, private: bool = False) -> Iterator[str]:
    """The emulator's ``host:port``, set in ``os.environ`` for the block (children inherit it).

    The one named by its variable (``PUBSUB_EMULATOR_HOST``) if set; else emulator.sh's, started
    if it was not running and then stopped on exit. ``private`` starts one of our own (its own
    port and state folder) even when another runs, so nobody else's traffic can skew a benchmark.
    The environment is as it was afterwards.

    Raises:
        ConfigurationError: it could not be started; the message says what is missing.
    """
    variable = HOST_VARIABLES[which]
    if os.environ.get(variable) and not private:
        yield os.environ[variable]
        return
    port_variable = f"{which.upper()}_EMULATOR_PORT"
    saved = {k: os.environ.get(k) for k in (variable, "EMULATOR_STATE_DIR", port_variable)}
    with contextlib.ExitStack() as stack:
        if private:
            state = stack.enter_context(tempfile.TemporaryDirectory(prefix="pubsub-kit-emu-"))
            os.environ["EMULATOR_STATE_DIR"] = state  # emulator.sh keeps pid, port and log here
            os.environ[port_variable] = str(ports.free_ports()[0])
        was_running = running(which)
        host = start(which)[variable]
        os.environ[variable] = host
        try:
            yield host
        finally:
            if not was_running:
                stop(which)
            for key, value in saved.items():  # emulator.sh reads the last two
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
