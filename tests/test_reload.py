"""``pubsub-kit dev`` restarts the function whose code changed, and only that one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from shared.tools.reload import Reloader, affected, changed_files, snapshot


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project: two functions, its own package, tests, and things that are not code."""
    for name in ("alpha_fn", "beta_fn"):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "main.py").write_text("")
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "__init__.py").write_text("")
    (tmp_path / "orders" / "events.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_x.py").write_text("")
    (tmp_path / "scripts").mkdir()  # not a package: not imported by the functions
    (tmp_path / "scripts" / "tool.py").write_text("")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "site.py").write_text("")
    return tmp_path


def touch(path: Path) -> None:
    """Change ``path``'s modification time for certain (file systems with coarse clocks too)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_only_the_functions_and_the_projects_own_packages_are_watched(root: Path) -> None:
    watched = {p.relative_to(root).as_posix() for p in snapshot(root)}
    assert watched == {
        "functions/alpha_fn/main.py",
        "functions/beta_fn/main.py",
        "orders/__init__.py",
        "orders/events.py",
    }


def test_a_change_in_a_function_folder_restarts_that_function(root: Path) -> None:
    before = snapshot(root)
    touch(root / "functions" / "beta_fn" / "main.py")
    (root / "functions" / "beta_fn" / "helpers.py").write_text("")  # a new module counts too
    changed = changed_files(before, snapshot(root))
    assert [p.name for p in changed] == ["helpers.py", "main.py"]
    assert affected(changed, root, {"alpha_fn", "beta_fn"}) == {"beta_fn"}


def test_a_change_to_shared_code_restarts_every_function(root: Path) -> None:
    before = snapshot(root)
    (root / "orders" / "events.py").unlink()
    changed = changed_files(before, snapshot(root))
    assert affected(changed, root, {"alpha_fn", "beta_fn"}) == {"alpha_fn", "beta_fn"}


def test_a_function_not_running_is_not_restarted(root: Path) -> None:
    assert affected([root / "functions" / "beta_fn" / "main.py"], root, {"alpha_fn"}) == set()


def test_the_reloader_restarts_what_changed_and_says_which_file(root: Path) -> None:
    restarted: list[tuple[str, str]] = []
    done = threading.Event()

    def restart(name: str, why: str) -> None:
        restarted.append((name, why))
        done.set()

    reloader = Reloader(root, ["alpha_fn", "beta_fn"], restart, interval=0.05)
    reloader.start()
    try:
        assert reloader.poll() == set(), "nothing changed yet"
        touch(root / "functions" / "alpha_fn" / "main.py")
        assert done.wait(10), "no restart within 10 s"
    finally:
        reloader.stop()
    assert restarted == [("alpha_fn", "functions/alpha_fn/main.py changed")]
