"""Commands run as a user runs them: the ``pubsub-kit`` console script, in a subprocess."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("pubsub-kit")
TIMEOUT = 120.0  # seconds: every command must end well within this, or the test fails


@dataclasses.dataclass(frozen=True)
class Ran:
    """What one run of the command printed, and its exit status."""

    status: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The last line on stderr (a command's error is one sentence there)."""
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


PubsubKit = Callable[..., Ran]


@pytest.fixture
def pubsub_kit() -> PubsubKit:
    """``pubsub_kit("dlq", "list", env={...}, input="...", cwd=...)`` runs the console script.

    The environment is this process's (the emulator's host and the test's project included)
    updated with ``env``; a value of ``None`` removes that variable. A traceback on stderr fails
    the test: every error must be one sentence.
    """

    def run(
        *args: str,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        cwd: Path | None = None,
        timeout: float = TIMEOUT,
    ) -> Ran:
        environment = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            input=input,
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        assert "Traceback (most recent call last)" not in done.stderr, done.stderr
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def closed_port() -> str:
    """``127.0.0.1:PORT`` where nothing listens: an emulator that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def no_credentials(tmp_path: Path) -> dict[str, str | None]:
    """A machine with no emulator and no Google credentials: no ADC file under an empty HOME."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PUBSUB_EMULATOR_HOST": None,
        "FIRESTORE_EMULATOR_HOST": None,
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nowhere.json"),
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / ".config" / "gcloud"),
        "NO_GCE_CHECK": "True",  # google-auth: do not probe a metadata server
        "PUBSUB_PROJECT_ID": "some-project",
    }
