"""tests/node: the Node.js packages some tests run (`make node`, a part of `make test`)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO

NODE_PROJECT = REPO / "tests" / "node"


def node_for(package: str) -> str:
    """The ``node`` executable, once ``package`` is installed in tests/node.

    Fails the test (never skips it) with what to run when Node.js or the package is missing.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: install Node.js 20+ (and npm), then run `make node`",
            pytrace=False,
        )
    if not (NODE_PROJECT / "node_modules" / package).is_dir():
        pytest.fail(
            f"tests/node has no {package}: run `make node` (npm ci in tests/node)", pytrace=False
        )
    return node
