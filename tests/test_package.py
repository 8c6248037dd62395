"""``shared.tools.package``: reproducible function archives that deploy and run on their own.

The packaging mechanics are tested on a project of their own (``project`` below: two consumers,
a topology of the test's), so that the example system can grow without breaking them; the last
test serves one of the example's functions from its archive, as GCP would.
"""

from __future__ import annotations

import ast
import base64
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from shared import Consumer, Event, Topic, Topology
from shared.errors import ToolkitError
from shared.stores import open_store
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.tools.package import build_packages
from shared.wire import encode, new_envelope
from tests.conftest import REPO

PIP_TIMEOUT = 600  # seconds: a cold pip cache downloads grpc and friends
SERVE_TIMEOUT = 60  # seconds for functions-framework to listen


class Pinged(Event):
    event_type: ClassVar[str] = "test.pinged.v1"

    ping_id: str


PROJECT_TOPOLOGY = Topology(
    topics=[Topic("pings", events=[Pinged])],
    consumers=[
        Consumer("ping_counter", topics=["pings"]),
        Consumer("ping_logger", topics=["pings"]),
    ],
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a function per consumer of PROJECT_TOPOLOGY, and a package of its own."""
    root = tmp_path / "project"
    for name in PROJECT_TOPOLOGY.consumers:
        folder = root / "functions" / name
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(f"from {name}_logic import run  # {name}\n")
        (folder / f"{name}_logic.py").write_text("def run() -> None: ...\n")
        (folder / "__pycache__").mkdir()
        (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"cache")
    (root / "pings").mkdir()
    (root / "pings" / "__init__.py").write_text("")
    (root / "pings" / "topology.py").write_text("TOPOLOGY = ...\n")
    return root


def test_archives_are_reproducible_and_deployable_in_shape(project: Path, tmp_path: Path) -> None:
    first = build_packages(PROJECT_TOPOLOGY, tmp_path / "a", root=project)
    second = build_packages(PROJECT_TOPOLOGY, tmp_path / "b", root=project)

    assert [p.name for p in first] == ["ping_counter.zip", "ping_logger.zip"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two builds"
        with zipfile.ZipFile(a) as archive:
            names = archive.namelist()
            requirements = archive.read("requirements.txt").decode()
        assert names == sorted(names)
        assert {"main.py", "requirements.txt", "shared/__init__.py", "shared/py.typed"} <= set(
            names
        )
        assert f"{a.stem}_logic.py" in names, "the function's own modules, at the root"
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        pins = dict(line.split("==") for line in requirements.splitlines())
        direct = {
            "functions-framework",
            "google-cloud-firestore",
            "google-cloud-pubsub",
            "pydantic",
        }
        assert direct <= set(pins)
        assert {"grpcio", "protobuf", "flask", "pydantic-core"} <= set(pins), "transitive pins"
        # enable_tracing in infra/ works without repackaging: the exporters are always there.
        assert {"opentelemetry-exporter-gcp-trace", "opentelemetry-exporter-otlp-proto-http"} <= (
            set(pins)
        )
        assert not {"pytest", "google-cloud-testutils", "python-hcl2"} & set(pins), (
            "test extras ship"
        )
        assert all(pins[name] == importlib.metadata.version(name) for name in pins)
    assert not list((tmp_path / "a").glob(".*")), "a temporary file was left behind"


def test_archives_carry_the_runtime_and_none_of_the_local_tools(
    project: Path, tmp_path: Path
) -> None:
    [path] = build_packages(PROJECT_TOPOLOGY, tmp_path, only=["ping_counter"], root=project)
    with zipfile.ZipFile(path) as archive:
        modules = {n: archive.read(n) for n in archive.namelist() if n.endswith(".py")}
    assert not [n for n in modules if n.startswith("shared/tools/")]
    for local_tool in (
        "cli",
        "dev",
        "demo",
        "provision",
        "package",
        "dlq",
        "contracts",
        "emulator",
    ):
        assert not [n for n in modules if n.rsplit("/", 1)[-1] == f"{local_tool}.py"], local_tool
    assert {"shared/consumer.py", "shared/runtime/pipeline.py", "shared/wire.py"} <= set(modules)
    for name, source in modules.items():  # nothing deployed may need what was left behind
        imported = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ]
        assert not [m for m in imported if m and m.startswith("shared.tools")], name


def test_only_packages_the_named_consumers_and_refuses_unknown_ones(
    project: Path, tmp_path: Path
) -> None:
    built = build_packages(PROJECT_TOPOLOGY, tmp_path, only=["ping_logger"], root=project)
    assert built == [tmp_path / "ping_logger.zip"]
    with pytest.raises(
        ToolkitError, match=r"'nope'.*declared consumers: ping_counter, ping_logger"
    ):
        build_packages(PROJECT_TOPOLOGY, tmp_path, only=["nope"], root=project)


def test_a_consumer_without_its_main_py_is_refused_before_anything_is_written(
    project: Path, tmp_path: Path
) -> None:
    (project / "functions" / "ping_logger" / "main.py").unlink()
    with pytest.raises(ToolkitError, match=r"'ping_logger' has no functions/ping_logger/main.py"):
        build_packages(PROJECT_TOPOLOGY, tmp_path / "out", root=project)
    assert not (tmp_path / "out").exists()


def test_the_projects_own_package_ships_beside_shared(project: Path, tmp_path: Path) -> None:
    [path] = build_packages(
        PROJECT_TOPOLOGY, tmp_path, only=["ping_counter"], root=project, vendor=[project / "pings"]
    )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert {"pings/__init__.py", "pings/topology.py", "shared/__init__.py"} <= set(names)


def test_a_function_file_named_like_a_vendored_package_is_refused(
    project: Path, tmp_path: Path
) -> None:
    clash = project / "functions" / "ping_counter" / "pings"
    clash.mkdir()
    (clash / "x.py").write_text("")
    with pytest.raises(ToolkitError, match=r"functions/ping_counter/ has pings/x.py"):
        build_packages(PROJECT_TOPOLOGY, tmp_path, root=project, vendor=[project / "pings"])


def test_refuses_to_package_without_the_installed_distribution(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", missing)
    with pytest.raises(ToolkitError, match="pubsub-kit is not installed"):
        build_packages(PROJECT_TOPOLOGY, tmp_path, root=project)
    assert not list(tmp_path.glob("*.zip"))


@pytest.mark.e2e
def test_archive_serves_the_function_from_its_own_folder_in_a_fresh_venv(tmp_path: Path) -> None:
    (archive,) = build_packages(
        TOPOLOGY, tmp_path / "dist", only=["timeline_enrichment"], root=REPO
    )
    folder = tmp_path / "function"
    with zipfile.ZipFile(archive) as z:
        z.extractall(folder)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run(
        [
            venv / "bin/python",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            folder / "requirements.txt",
        ],
        check=True,
        timeout=PIP_TIMEOUT,
        env=pip_env,
    )

    # The Cloud Trace exporter that enable_tracing names is installed from the archive alone.
    subprocess.run(
        [venv / "bin/python", "-c", "import opentelemetry.exporter.cloud_trace"],
        check=True,
        timeout=120,
        env=pip_env,
    )

    # Nothing from the repository: the archive and its requirements must be enough.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PUBSUB_KIT_STORE": f"sqlite:///{tmp_path}/state.db",
        "PUBSUB_PROJECT_ID": "test-project",
    }
    assert not (folder / "shared" / "__pycache__").exists()
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                venv / "bin/functions-framework",
                "--source",
                "main.py",
                "--target",
                "timeline_enrichment",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(server, port, log)
        event = PostLiked(
            post_id="p-1",
            liker_id="u-liker",
            author_id="u-author",
            liked_at=datetime.now(UTC),
        )
        body = _push_body(event)
        assert _post(port, body) == 204, log.read_text()
        assert _post(port, body) == 204, log.read_text()  # a redelivery: acked, not counted
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        assert store.counters("timeline_affinity", "u-liker") == {"u-author": 1}
    finally:
        store.close()
    # The server compiled shared/ in the unpacked folder; the venv alone has no `shared`.
    assert (folder / "shared" / "system" / "__pycache__").is_dir()
    where: list[str | Path] = [venv / "bin/python", "-c", "import shared; print(shared.__file__)"]
    found = subprocess.run(where, cwd=folder, env=env, capture_output=True, text=True, check=True)
    assert Path(found.stdout.strip()) == folder / "shared" / "__init__.py"
    elsewhere = subprocess.run(where, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "No module named 'shared'" in elsewhere.stderr


def _push_body(event: PostLiked) -> bytes:
    data, attributes = encode(event, new_envelope(event, source="//tests/test_package"))
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes,
                "messageId": "1",
                "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
            "subscription": "projects/test-project/subscriptions/post-liked--timeline_enrichment",
            "deliveryAttempt": 1,
        }
    ).encode()


def _post(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        status: int = response.status
        return status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        try:  # pause between attempts, and notice a server that died
            server.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"functions-framework exited with {server.returncode}:\n{log.read_text()}")
    pytest.fail(
        f"functions-framework did not listen on {port} in {SERVE_TIMEOUT} s:\n{log.read_text()}"
    )
