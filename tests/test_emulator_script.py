"""emulator.sh: the one way anything here starts an emulator."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.conftest import EMULATOR


def script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(EMULATOR), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.emulator
def test_start_is_idempotent_and_stop_stops_it(tmp_path) -> None:
    """start; env; start; status; stop; status.

    On a port of its own, so the suite's emulator is untouched.
    """
    port = str(free_port())
    state = {"PUBSUB_EMULATOR_PORT": port, "EMULATOR_STATE_DIR": str(tmp_path)}
    first = script("start", env=state)
    try:
        assert first.returncode == 0, first.stderr
        assert f"export PUBSUB_EMULATOR_HOST=127.0.0.1:{port}" in first.stdout
        assert "export PUBSUB_PROJECT_ID=" in first.stdout
        env_lines = script("env", env=state)
        assert env_lines.stdout == first.stdout
        again = script("start", env=state)
        assert again.returncode == 0 and again.stdout == first.stdout
        assert script("status", env=state).returncode == 0
    finally:
        stopped = script("stop", env=state)
    assert stopped.returncode == 0
    assert script("status", env=state).returncode == 1
    assert script("stop", env=state).returncode == 0  # nothing running is not an error


def test_a_taken_port_is_an_error_that_names_it(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        done = script(
            "start", env={"PUBSUB_EMULATOR_PORT": port, "EMULATOR_STATE_DIR": str(tmp_path)}
        )
    assert done.returncode != 0
    assert port in done.stderr


def test_a_missing_emulator_binary_is_named(tmp_path) -> None:
    done = script(
        "start",
        env={
            "PUBSUB_EMULATOR_BIN": "/nonexistent/cloud-pubsub-emulator",
            "PUBSUB_EMULATOR_PORT": str(free_port()),
            "EMULATOR_STATE_DIR": str(tmp_path),
        },
    )
    assert done.returncode != 0
    assert (
        "PUBSUB_EMULATOR_BIN=/nonexistent/cloud-pubsub-emulator is not an executable" in done.stderr
    )


def test_unknown_command_prints_usage_and_exits_2() -> None:
    done = script("launch")
    assert done.returncode == 2
    assert "usage" in (done.stderr + done.stdout).lower()
