"""checkov, a security scanner for Terraform, over ``infra/``: clean, with every skip explained.

checkov runs offline (``--skip-download``) from its own virtual environment, ``.venv-checkov``,
which ``make checkov`` (and so ``make test``) creates with the version the Makefile pins: its
dependencies clash with the project's (it installs a module named ``hcl2`` of its own). Set
``CHECKOV`` to use another executable. Like the Terraform CLI for tests/test_infra.py, checkov is
required: these tests fail, rather than skip, without it.

The checks skipped live in one place, ``infra/.checkov.yaml``, each with a comment saying why it
does not apply. The scan runs twice: once without the skips, to show that every skip still
matches a finding (none is stale) and that nothing else is found; once with them, as CI's gate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
CONFIG = INFRA / ".checkov.yaml"
CHECKOV_TIMEOUT = 300  # seconds; a scan of infra/ takes about 3 s

Report = dict[str, Any]


def checkov_binary() -> str:
    binary = os.environ.get("CHECKOV") or str(REPO / ".venv-checkov" / "bin" / "checkov")
    if not Path(binary).is_file():
        pytest.fail(f"checkov is not installed at {binary}: run `make checkov` (or set CHECKOV)")
    return binary


def pinned_version() -> str:
    found = re.search(
        r"^CHECKOV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE
    )
    assert found, "the Makefile pins no CHECKOV_VERSION"
    return found.group(1)


def scan(directory: Path, config: Path | None) -> Report:
    command = [
        checkov_binary(),
        "--skip-download",  # no call to the Prisma Cloud platform
        "--framework",
        "terraform",
        "-d",
        str(directory),
        *(["--config-file", str(config)] if config else []),
        "--compact",
        "--quiet",
        "-o",
        "json",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT, check=False, cwd=REPO
    )
    # Exit status 1 means "failed checks"; anything else but 0 is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    # One framework gives one report (a list when several ran).
    single: Report = report[0] if isinstance(report, list) else report
    return single


@pytest.fixture(scope="module")
def with_skips() -> Report:
    return scan(INFRA, CONFIG)


@pytest.fixture(scope="module")
def without_skips(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A scan of a copy of infra/ without its .checkov.yaml, which checkov finds by itself."""
    copy = tmp_path_factory.mktemp("checkov") / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".checkov.y*ml", ".terraform*"))
    return scan(copy, None)


def failed(report: Report) -> list[tuple[str, str, str]]:
    return sorted(
        (c["check_id"], c["resource"], c["file_path"])
        for c in report["results"].get("failed_checks", [])
    )


def skips() -> dict[str, str]:
    """The skipped check ids of infra/.checkov.yaml, each with the comment above it."""
    found: dict[str, str] = {}
    comment: list[str] = []
    for line in CONFIG.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif entry := re.fullmatch(r"-\s*(CKV\w+)", stripped):
            found[entry.group(1)] = " ".join(comment)
            comment = []
        else:
            comment = []
    return found


def test_the_pinned_checkov_is_the_one_that_runs() -> None:
    result = subprocess.run(
        [checkov_binary(), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == pinned_version()


def test_every_skipped_check_says_why_it_does_not_apply() -> None:
    assert skips(), f"{CONFIG.name} lists no skip-check entry"
    for check_id, reason in skips().items():
        assert reason.startswith(check_id), f"{check_id}: the comment above it must name it"
        assert len(reason.split()) >= 15, f"{check_id}: give the reason, not just the name"


def test_checkov_parses_every_file_and_finds_only_what_is_skipped(without_skips) -> None:
    report = without_skips
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["passed"] > 0, report["summary"]
    found = {check_id for check_id, _, _ in failed(report)}
    stale = sorted(set(skips()) - found)
    assert not stale, f"skips in {CONFIG.name} that match no finding any more: {stale}"
    unexplained = [f for f in failed(report) if f[0] not in skips()]
    assert not unexplained, f"findings with no skip: {unexplained}"


def test_checkov_is_clean_with_the_documented_skips(with_skips) -> None:
    report = with_skips
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert not failed(report), json.dumps(report["results"]["failed_checks"], indent=1)
