"""``pubsub-kit emulator``: the emulators' lifecycle from the installed package, state in the
project's ``.emulator/``; the checkout's ./emulator.sh runs the same script
(tests/test_emulator_script.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.tools import emulator, ports
from tests.cli.conftest import PubsubKit
from tests.conftest import EMULATOR

CLEAN = {"PUBSUB_KIT_ROOT": None, "PUBSUB_KIT_TOPOLOGY": None, "EMULATOR_STATE_DIR": None}


@pytest.fixture
def shop(pubsub_kit: PubsubKit, tmp_path: Path) -> Path:
    assert pubsub_kit("new", "project", "shop", cwd=tmp_path, env=CLEAN).status == 0
    return tmp_path / "shop"


def test_the_script_ships_in_the_package_and_the_checkouts_script_runs_it() -> None:
    assert emulator.script().parent == Path(emulator.__file__).resolve().parent
    assert f'"$here/{emulator.script().relative_to(EMULATOR.parent).as_posix()}"' in (
        EMULATOR.read_text()
    )


def test_status_of_a_project_without_a_running_emulator(pubsub_kit: PubsubKit, shop: Path) -> None:
    port = str(ports.free_ports()[0])
    done = pubsub_kit("emulator", "status", cwd=shop, env={**CLEAN, "PUBSUB_EMULATOR_PORT": port})
    assert (done.status, done.out) == (1, "pubsub: not running\n")


@pytest.mark.parametrize(
    ("args", "status", "error"),
    [
        (["logs", "all"], 1, "`emulator logs` shows one log: give pubsub or firestore, not all"),
        (["env", "pubsub"], 1, "`emulator env` takes no target; found 'pubsub'"),
        (["restart"], 2, "argument ACTION: invalid choice: 'restart'"),
        (["start", "redis"], 2, "argument TARGET: invalid choice: 'redis'"),
    ],
)
def test_wrong_input_is_one_sentence(
    pubsub_kit: PubsubKit, shop: Path, args: list[str], status: int, error: str
) -> None:
    done = pubsub_kit("emulator", *args, cwd=shop, env=CLEAN)
    assert done.status == status
    assert error in done.error


def test_outside_a_project_it_says_where_the_state_would_go(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    done = pubsub_kit("emulator", "status", cwd=tmp_path, env=CLEAN)
    assert done.status == 1 and "no pubsub-kit project in" in done.error


def test_logs_before_any_start_say_how_to_start(pubsub_kit: PubsubKit, shop: Path) -> None:
    done = pubsub_kit("emulator", "logs", cwd=shop, env=CLEAN)
    assert done.status == 1
    assert done.error == (
        f"pubsub-kit emulator: no log for the pubsub emulator yet ({shop}/.emulator/pubsub.log); "
        "start it with 'pubsub-kit emulator start pubsub'"
    )


@pytest.mark.emulator
def test_start_status_env_stop_keep_their_state_in_the_project(
    pubsub_kit: PubsubKit, shop: Path
) -> None:
    port = str(ports.free_ports()[0])
    env = {**CLEAN, "PUBSUB_EMULATOR_PORT": port, "PUBSUB_PROJECT_ID": "shop-local"}
    started = pubsub_kit("emulator", "start", cwd=shop, env=env, timeout=180)
    try:
        assert started.status == 0, started.err
        assert started.out == (
            f"export PUBSUB_EMULATOR_HOST=127.0.0.1:{port}\nexport PUBSUB_PROJECT_ID=shop-local\n"
        )
        assert (shop / ".emulator" / "pubsub.port").read_text().strip() == port
        assert pubsub_kit("emulator", "env", cwd=shop, env=env).out == started.out
        status = pubsub_kit("emulator", "status", cwd=shop / "shop", env=env)  # from a subfolder
        assert status.status == 0 and status.out.startswith(f"pubsub: running on 127.0.0.1:{port}")
    finally:
        stopped = pubsub_kit("emulator", "stop", cwd=shop, env=env)
    assert stopped.status == 0
    assert pubsub_kit("emulator", "status", cwd=shop, env=env).status == 1
