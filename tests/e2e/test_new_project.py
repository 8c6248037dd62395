"""A new user's first hour, outside the checkout: install pubsub-kit, start a project, scaffold a
consumer, run its test, run it locally, publish, watch it handle the event, change its code and
see it restarted, stop, export Terraform.

Everything runs as the user would run it: a fresh virtual environment with pubsub-kit installed
from this checkout (not editable), the ``pubsub-kit`` console script, in a folder of its own. Only
the emulator is the suite's (``PUBSUB_EMULATOR_HOST``), and the run has a project of its own.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.stores import open_store
from shared.tools import ports
from tests.conftest import REPO

PIP_TIMEOUT = 600  # seconds: a cold pip cache downloads grpc and friends
COMMAND_TIMEOUT = 120  # seconds for any one command
# What the distribution is built from: pyproject.toml names README.md, and packages shared*.
SOURCES = ("pyproject.toml", "README.md", "shared")


class Timings:
    """How long each step took, printed at the end (pytest -s, or with a failure)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._started = time.monotonic()

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append((name, now - self._started))
        self._started = now

    def __str__(self) -> str:
        total = sum(seconds for _, seconds in self.steps)
        rows = [f"  {name:<40} {seconds:6.1f} s" for name, seconds in self.steps]
        return "\n".join(["new-project test timings:", *rows, f"  {'total':<40} {total:6.1f} s"])


class User:
    """A shell in ``cwd`` with the new virtual environment first on PATH, and nothing else of
    this checkout: no PYTHONPATH, no pubsub-kit settings."""

    def __init__(self, venv: Path, env: dict[str, str]) -> None:
        self.venv = venv
        self.env = env
        self.cwd = venv.parent

    def run(self, *args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in args],
            cwd=self.cwd,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert "Traceback (most recent call last)" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str | Path) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}{done.stderr}"
        return done.stdout


class Dev:
    """``pubsub-kit dev`` running in the background; its lines, as they come."""

    def __init__(self, user: User, *args: str) -> None:
        self.process = subprocess.Popen(
            ["pubsub-kit", "dev", *args],
            cwd=user.cwd,
            env=user.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"dev never printed {text!r}; it printed:\n{''.join(self.seen[-40:])}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dev did not stop within 60 s of Ctrl-C:\n{''.join(self.seen[-40:])}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def user(tmp_path: Path, project: str, pubsub_emulator: str) -> Iterator[User]:
    """A fresh venv with pubsub-kit installed from this checkout, and a folder to work in."""
    timings = Timings()
    source = tmp_path / "pubsub-kit-source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    work = tmp_path / "work"
    work.mkdir()
    venv = work / ".venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("PUBSUB_KIT")
    }
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"{source}[otel]", "pytest"],
        check=True, timeout=PIP_TIMEOUT, env=env, cwd=work,
    )  # fmt: skip
    timings.step("venv, pip install pubsub-kit[otel] pytest")
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "PUBSUB_EMULATOR_HOST": pubsub_emulator,
        "PUBSUB_PROJECT_ID": project,
    }
    shell = User(venv, env)
    shell.timings = timings  # type: ignore[attr-defined]
    yield shell
    print(timings)


@pytest.mark.emulator
@pytest.mark.e2e
def test_a_new_user_starts_a_project_outside_the_checkout(user: User, project: str) -> None:
    timings: Timings = user.timings  # type: ignore[attr-defined]
    where = user.ok("python", "-c", "import shared; print(shared.__file__)")
    assert Path(where.strip()).is_relative_to(user.venv), "pubsub-kit must come from the venv"

    out = user.ok("pubsub-kit", "new", "project", "shop")
    assert "wrote shop/topology.py" in out
    user.cwd = user.cwd / "shop"
    out = user.ok("pubsub-kit", "new", "consumer", "greeter", "--topic", "item-created")
    assert 'added Consumer("greeter", topics=["item-created"]) to shop/topology.py' in out
    assert "1 passed" in user.ok("python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    timings.step("new project, new consumer, its unit test")

    dev = Dev(user, "--port-base", str(ports.free_ports()[0]), "--project", project)
    try:
        dev.wait_for("delivering on project")
        timings.step("pubsub-kit dev ready")
        published = user.ok(
            "pubsub-kit", "publish", "item.created.v1",
            '{"item_id": "i-1", "name": "lamp", "created_at": "2026-01-31T12:00:00Z"}',
        )  # fmt: skip
        assert published.startswith("published item.created.v1 to item-created")
        dev.wait_for("greeter handled item.created.v1 (subject i-1)")
        timings.step("publish, handled")

        # A code change restarts the function; the next event runs the new code.
        handler = user.cwd / "functions" / "greeter" / "greeter_handler.py"
        handler.write_text(handler.read_text().replace("greeter handled", "greeter greeted"))
        dev.wait_for("functions/greeter/greeter_handler.py changed: restarting")
        dev.wait_for("restarted")
        user.ok(
            "pubsub-kit", "publish", "item.created.v1",
            '{"item_id": "i-2", "name": "desk", "created_at": "2026-01-31T12:05:00Z"}',
        )  # fmt: skip
        dev.wait_for("greeter greeted item.created.v1 (subject i-2)")
        timings.step("code change, restart, handled again")
        assert dev.interrupt() == 0
        timings.step("Ctrl-C, stopped")
    finally:
        dev.kill()

    state = user.cwd / ".pubsub-kit"
    store = open_store(f"sqlite:///{state / 'dev.db'}")
    try:
        assert store.counters("greeter", "events") == {"item.created.v1": 2}
    finally:
        store.close()
    assert (state / "ports.json").is_file()

    out = user.ok("pubsub-kit", "topology", "export", "--terraform")
    assert out == f"wrote {user.cwd / 'infra' / 'topology.json'}\n"
    assert '"item-created--greeter"' in (user.cwd / "infra" / "topology.json").read_text()
    out = user.ok("pubsub-kit", "package")
    assert out == f"{user.cwd / 'dist-functions' / 'greeter.zip'}\n"
    # The emulator's lifecycle comes with the package: no emulator.sh in the project.
    status = user.run("pubsub-kit", "emulator", "status")
    assert status.stdout.startswith("pubsub: "), status.stderr
    assert not (user.cwd / "emulator.sh").exists()
    timings.step("export, package, emulator status")
