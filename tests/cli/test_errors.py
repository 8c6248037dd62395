"""No tracebacks, no silent hangs: each way a user got one, run as the user ran it.

Every case is the ``pubsub-kit`` console script in a subprocess (the ``pubsub_kit`` fixture fails
on any traceback). A command that talks to Pub/Sub must fail within seconds, with a sentence
saying what to start; bad input is refused before any I/O with what was expected.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from shared.tools.cli import DEBUG_VARIABLE, build_parser, dev_store_url
from tests.cli.conftest import CONSOLE_SCRIPT, PubsubKit, Ran, closed_port
from tests.conftest import REPO

FAST = 15.0  # seconds: "within seconds", with room for a slow CI machine

# The environment of a machine with neither an emulator nor Google credentials.
NO_PUBSUB = {
    "PUBSUB_EMULATOR_HOST": None,
    "GOOGLE_APPLICATION_CREDENTIALS": None,
    "NO_GCE_CHECK": "True",  # google-auth: do not probe a metadata server
}


def _no_credentials(tmp_path: Path) -> dict[str, str | None]:
    # gcloud's application default credentials live under CLOUDSDK_CONFIG: an empty folder.
    return {**NO_PUBSUB, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}


@pytest.fixture(name="closed_port")
def closed_port_fixture() -> str:
    """``127.0.0.1:PORT`` where nothing listens: an emulator that is down."""
    return closed_port()


@pytest.fixture
def open_port() -> Iterator[str]:
    """``127.0.0.1:PORT`` that accepts connections (and answers nothing)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _timed(run: PubsubKit, *args: str, env: Mapping[str, str | None]) -> tuple[float, Ran]:
    started = time.monotonic()
    ran = run(*args, env=env, timeout=60)
    return time.monotonic() - started, ran


# --- the topology ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        ('raise RuntimeError("boom while importing")\n', "RuntimeError"),
        ('settings = {}\nTOPOLOGY = settings["topology"]\n', "KeyError"),
        ("from shared import Topic\nTopic('Not A Name', events=[])\n", "TopologyError"),
        ("def broken(:\n", "SyntaxError"),
    ],
)
def test_a_topology_module_that_raises_on_import_is_named_with_what_it_raised(
    pubsub_kit: PubsubKit, tmp_path: Path, source: str, raised: str
) -> None:
    (tmp_path / "broken_topology.py").write_text(source)
    ran = pubsub_kit(
        "--topology", "broken_topology:TOPOLOGY", "topology", "show",
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert ran.status == 1
    assert ran.error.startswith(
        "pubsub-kit: error: cannot import topology module 'broken_topology'"
    )
    assert raised in ran.error
    assert len(ran.err.strip().splitlines()) == 1


def test_a_relative_topology_module_is_refused_with_the_form_expected(
    pubsub_kit: PubsubKit,
) -> None:
    ran = pubsub_kit("--topology", ".x:T", "topology", "show")
    assert ran.status == 1
    assert "absolute module path like 'package.module:NAME'" in ran.error
    assert "'.x:T'" in ran.error


def test_a_topology_attribute_that_is_not_a_topology_says_what_it_found(
    pubsub_kit: PubsubKit,
) -> None:
    ran = pubsub_kit("--topology", "shared.system.events:PostLiked", "topology", "show")
    assert ran.status == 1
    assert "is not a Topology" in ran.error


# --- Pub/Sub that is not there ---------------------------------------------------------------


def test_provision_without_emulator_or_credentials_says_how_to_get_either(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    took, ran = _timed(
        pubsub_kit, "provision", env={**_no_credentials(tmp_path), "PUBSUB_PROJECT_ID": "p"}
    )
    assert ran.status == 1, ran
    assert "PUBSUB_EMULATOR_HOST is not set and there are no Google credentials" in ran.error
    assert "application-default login" in ran.error
    assert took < FAST


def test_provision_without_any_project_says_how_to_set_one(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    env = {
        **_no_credentials(tmp_path),
        "PUBSUB_PROJECT_ID": None,
        "GOOGLE_CLOUD_PROJECT": None,
        "GCP_PROJECT": None,
    }
    ran = pubsub_kit("provision", env=env)
    assert ran.status == 1
    assert "no project id: set PUBSUB_PROJECT_ID" in ran.error


@pytest.mark.parametrize(
    "command",
    [
        ["provision"],
        ["dev", "--port-base", "18990"],
        ["demo", "--port-base", "18990"],
        ["demo", "--store", "firestore", "--port-base", "18990"],
    ],
)
def test_a_command_given_an_emulator_that_is_down_fails_in_seconds_saying_what_to_start(
    pubsub_kit: PubsubKit, closed_port: str, command: list[str]
) -> None:
    """Before: ``provision`` printed nothing for 10 minutes; ``dev`` and ``demo`` likewise."""
    took, ran = _timed(
        pubsub_kit, *command, env={"PUBSUB_EMULATOR_HOST": closed_port, "PUBSUB_PROJECT_ID": "p"}
    )
    assert ran.status == 1
    assert closed_port in ran.error and "emulator start" in ran.error
    assert took < FAST


@pytest.mark.parametrize("command", ["dev", "demo"])
def test_dev_and_demo_say_when_the_firestore_emulator_they_were_given_is_down(
    pubsub_kit: PubsubKit, open_port: str, closed_port: str, command: str
) -> None:
    env = {
        "PUBSUB_EMULATOR_HOST": open_port,  # up: only Firestore is down
        "FIRESTORE_EMULATOR_HOST": closed_port,
        "PUBSUB_PROJECT_ID": "p",
    }
    took, ran = _timed(pubsub_kit, command, "--store", "firestore", env=env)
    assert ran.status == 1
    assert ran.error.startswith(
        f"pubsub-kit: error: FIRESTORE_EMULATOR_HOST is {closed_port}, but no emulator answers"
    )
    assert f"unset FIRESTORE_EMULATOR_HOST and `pubsub-kit {command}` starts one" in ran.error
    assert took < FAST


def test_an_emulator_host_that_is_not_host_and_port_says_the_form(pubsub_kit: PubsubKit) -> None:
    ran = pubsub_kit("dev", env={"PUBSUB_EMULATOR_HOST": "localhost"})
    assert ran.status == 1
    assert "expected host:port, e.g. 127.0.0.1:8085" in ran.error


@pytest.mark.emulator
def test_provision_on_the_emulator_reports_what_it_did(pubsub_kit: PubsubKit, project: str) -> None:
    first = pubsub_kit("provision", env={"PUBSUB_PROJECT_ID": project})
    assert first.status == 0
    assert first.out.strip().splitlines()[-1].startswith("provisioned: ")
    again = pubsub_kit("provision", env={"PUBSUB_PROJECT_ID": project})
    assert again.out.strip().splitlines()[-1].startswith("provisioned: 0 created, 0 updated, ")


# --- where files are written -----------------------------------------------------------------


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "README.md"
    path.write_text("a file, not a folder\n")
    return path


@pytest.mark.parametrize(
    ("command", "option", "kind"),
    [
        (["topology", "export", "--terraform"], "--output", "file"),
        (["topology", "export", "--terraform", "--check"], "--output", "file"),
        (["catalog"], "--output", "file"),
        (["catalog", "--check"], "--output", "file"),
        (["schema"], "--output-dir", "folder"),
        (["schema", "--check"], "--output-dir", "folder"),
        (["package"], "--output-dir", "folder"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_one_sentence(
    pubsub_kit: PubsubKit, tmp_path: Path, a_file: Path, command: list[str], option: str, kind: str
) -> None:
    wrong = tmp_path if kind == "file" else a_file  # a folder for a file, and the reverse
    ran = pubsub_kit(*command, option, str(wrong))
    assert ran.status == 1
    expected = "a folder; --output takes a file path" if kind == "file" else "a file; "
    assert f"{option} {wrong} is {expected}" in ran.error
    under = pubsub_kit(*command, option, str(a_file / "x"))
    assert under.status == 1
    assert (
        under.error
        == f"pubsub-kit: error: {option} {a_file / 'x'} is under {a_file}, which is a file"
    )
    assert not (tmp_path / "x").exists()


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dev", "--port-base", "0"], "expected a port number from 1024 to 65000, found 0"),
        (["dev", "--port-base", "-5"], "expected a port number from 1024 to 65000, found -5"),
        (["demo", "--port-base", "70000"], "expected a port number from 1024 to 65000"),
        (["demo", "--port-base", "8090.5"], "expected a port number, found '8090.5'"),
        (["demo", "--timeout", "-1"], "expected a positive, finite number of seconds, found -1"),
        (["demo", "--timeout", "0"], "expected a positive, finite number of seconds, found 0"),
        (["demo", "--timeout", "nan"], "expected a positive, finite number of seconds"),
        (["demo", "--timeout", "inf"], "expected a positive, finite number of seconds"),
        (["demo", "--timeout", "soon"], "expected a number of seconds, found 'soon'"),
    ],
)
def test_bad_numbers_are_refused_with_what_was_expected(
    pubsub_kit: PubsubKit, args: list[str], expected: str
) -> None:
    ran = pubsub_kit(*args)
    assert ran.status == 2
    assert expected in ran.error


# --- help ------------------------------------------------------------------------------------


def _command_lines(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_lines(sub, (*prefix, name))


@pytest.mark.parametrize("command", sorted(_command_lines(build_parser())), ids=" ".join)
def test_help_works_for_every_command_and_subcommand(
    pubsub_kit: PubsubKit, command: tuple[str, ...]
) -> None:
    ran = pubsub_kit(*command, "--help")
    assert ran.status == 0
    assert ran.out.startswith(f"usage: {' '.join(('pubsub-kit', *command))}")


# --- counts, in every command that takes one ------------------------------------------------

COUNT_OPTIONS = ("--limit", "--max", "--count")


def _count_options() -> list[tuple[str, ...]]:
    """Every command line taking a count, from the parser: new commands are covered too."""
    found = []
    for command in _command_lines(build_parser()):
        parser = build_parser()
        for name in command:
            parser = next(
                a.choices[name]
                for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)
            )
        for action in parser._actions:
            for option in set(action.option_strings) & set(COUNT_OPTIONS):
                positionals = [
                    "post-liked--audit_log"
                    for a in parser._actions
                    if not a.option_strings and a.dest != "help" and a.nargs in (None, 1)
                ]
                found.append((*command, *positionals, option))
    return sorted(found)


@pytest.mark.parametrize("count", ["0", "-5", "2.5", "many"])
def test_counts_below_one_or_not_whole_are_refused_by_every_command_taking_one(
    pubsub_kit: PubsubKit, count: str
) -> None:
    commands = _count_options()
    assert commands, "some command takes --limit or --max"
    for command in commands:
        ran = pubsub_kit(*command, count, env={"PUBSUB_EMULATOR_HOST": "127.0.0.1:1"})
        assert ran.status == 2, (command, ran)
        assert "expected" in ran.error and count in ran.error, (command, ran.error)


# --- stopping, and the last resort -----------------------------------------------------------

SLOW_TOPOLOGY = """\
import pathlib, time
pathlib.Path({marker!r}).write_text("importing")
time.sleep(60)  # held until the test interrupts it (its deadline is 30 s)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_anywhere_it_exits_130_quietly(tmp_path: Path, sig: int) -> None:
    """Ctrl-C while the topology imports: no traceback, nothing on stderr, status 130."""
    marker = tmp_path / "importing"
    (tmp_path / "slow_topology.py").write_text(SLOW_TOPOLOGY.format(marker=str(marker)))
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--topology", "slow_topology:T", "topology", "show"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval; bounded by the deadline
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    assert (process.returncode, err) == (130, "")


def test_a_reader_that_leaves_ends_the_command_quietly() -> None:
    """``pubsub-kit catalog --output - | head -1``: no BrokenPipeError at exit."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before anything is written
    try:
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), "catalog", "--output", "-"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


BUGGY_TOPOLOGY = """\
from shared.system.topology import TOPOLOGY as EXAMPLE
from shared.topology import Topology


class Buggy(Topology):
    def to_terraform(self):
        raise RuntimeError("a secret in an exception message: hunter2")


TOPOLOGY = Buggy(topics=list(EXAMPLE.topics.values()), consumers=list(EXAMPLE.consumers.values()))
"""


@pytest.fixture
def buggy(tmp_path: Path) -> dict[str, str | None]:
    (tmp_path / "buggy_topology.py").write_text(BUGGY_TOPOLOGY)
    return {"PYTHONPATH": str(tmp_path), DEBUG_VARIABLE: None}


def test_an_unexpected_exception_is_one_sentence_naming_its_type_and_where(
    pubsub_kit: PubsubKit, tmp_path: Path, buggy: dict[str, str | None]
) -> None:
    output = tmp_path / "topology.json"
    ran = pubsub_kit(
        "--topology", "buggy_topology:TOPOLOGY", "topology", "export", "--terraform",
        "--output", str(output), env=buggy,
    )  # fmt: skip
    assert ran.status == 1
    assert ran.err.count("\n") == 1
    assert ran.error.startswith("pubsub-kit: error: unexpected RuntimeError (raised at ")
    assert "buggy_topology.py:7)" in ran.error
    assert f"rerun with {DEBUG_VARIABLE}=1 to see the traceback" in ran.error
    assert "hunter2" not in ran.err  # its message could hold data: not shown
    assert not output.exists()


def test_the_traceback_of_an_unexpected_exception_is_shown_when_asked_for(
    tmp_path: Path, buggy: dict[str, str | None]
) -> None:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--topology", "buggy_topology:TOPOLOGY", "topology", "export",
         "--terraform", "--output", str(tmp_path / "t.json")],
        env={**os.environ, "PYTHONPATH": str(tmp_path), DEBUG_VARIABLE: "1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "hunter2" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("pubsub-kit: error: unexpected")


# --- the store dev writes --------------------------------------------------------------------


def test_dev_writes_the_store_the_configuration_names_by_default(monkeypatch) -> None:
    """One truth: the local default of shared.config is the file ``dev`` writes (and the audit
    command reads), in the project."""
    from shared.config import DEFAULT_SQLITE_PATH, store_url

    monkeypatch.setenv("PUBSUB_KIT_ROOT", str(REPO))
    monkeypatch.delenv("PUBSUB_KIT_STORE", raising=False)
    monkeypatch.delenv("K_SERVICE", raising=False)
    assert DEFAULT_SQLITE_PATH == ".pubsub-kit/dev.db"
    assert store_url() == f"sqlite:///{DEFAULT_SQLITE_PATH}"
    assert dev_store_url() == f"sqlite:///{REPO / '.pubsub-kit' / 'dev.db'}"
