"""The command line: bad arguments get a sentence saying what was expected."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.tools.cli import main
from tests.conftest import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dev", "--port-base", "80"], "expected a port number from 1024 to 65000, found 80"),
        (["dev", "--port-base", "abc"], "expected a port number, found 'abc'"),
        (["demo", "--timeout", "-1"], "expected a positive, finite number of seconds"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["topology", "export"], "--terraform"),
    ],
)
def test_bad_arguments_exit_2_with_what_was_expected(args, expected) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert expected in done.stderr


def test_bad_topology_spec_is_an_error_not_a_traceback(capsys) -> None:
    assert main(["--topology", "nope", "topology", "show"]) == 1
    assert "--topology must look like 'package.module:NAME'" in capsys.readouterr().err


def test_topology_export_check_detects_a_stale_file(tmp_path) -> None:
    stale = tmp_path / "topology.json"
    stale.write_text("{}\n")
    assert main(["topology", "export", "--terraform", "--output", str(stale), "--check"]) == 1
    assert main(["topology", "export", "--terraform", "--output", str(stale)]) == 0
    assert main(["topology", "export", "--terraform", "--output", str(stale), "--check"]) == 0


def test_dlq_of_an_unknown_subscription_names_the_declared_ones(capsys, monkeypatch) -> None:
    monkeypatch.setenv("PUBSUB_PROJECT_ID", "any")
    assert main(["dlq", "inspect", "nope--nobody"]) == 1
    err = capsys.readouterr().err
    assert "no subscription named 'nope--nobody'" in err and "post-liked--audit_log" in err
