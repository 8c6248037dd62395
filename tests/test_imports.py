"""What loading a function costs: the modules its main.py does not import, and a function that
works where OpenTelemetry cannot be imported at all.

Each case is a fresh process that loads a real ``functions/<name>/main.py`` with
functions-framework's ``create_app``, as Cloud Functions does, so nothing this test process has
imported hides what the function loads. Nothing here is timed: ``bench/cold_bench.py`` measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

FUNCTIONS = ("audit_log", "order_notifications", "timeline_enrichment")

# Imported on first use only: a function pays for none of them at start-up.
NEVER_AT_IMPORT = (
    "google.cloud.pubsub_v1",  # the Pub/Sub client: first publish or dead letter
    "google.cloud.firestore",  # the Firestore store: first message, and only on GCP
    "grpc",
    "opentelemetry",  # telemetry: first message, and only when configured
    "shared.worker",  # the pull runtime: never, in a function
    "pydantic.root_model",  # no event here is a RootModel; the toolkit does not load it to look
)
# Imported by a function whose handler publishes (notifications.py names it), by no other.
PUBLISHER = "shared.publisher"

# Makes ``import opentelemetry`` (and every submodule) fail as if it were not installed.
HIDE_OPENTELEMETRY = """
import sys

class HideOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideOpenTelemetry())
"""

LOAD = """
import json, sys
import functions_framework

app = functions_framework.create_app({name!r}, {source!r})
loaded = sorted({{m for m in sys.modules for h in {watched!r} if m == h or m.startswith(h + ".")}})
"""

# One like, pushed as a push subscription delivers it.
HANDLE_ONE_LIKE = """
import base64
from datetime import UTC, datetime

from shared import wire
from shared.system.events import PostLiked

event = PostLiked(post_id="p1", liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))
data, attributes = wire.encode(event, wire.new_envelope(event, source="/tests"))
body = {
    "message": {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": "m-1",
        "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    },
    "subscription": "projects/imports-tests/subscriptions/post-liked--timeline_enrichment",
    "deliveryAttempt": 1,
}
status = app.test_client().post("/", json=body).status_code
"""

REPORT = """
print(json.dumps({"loaded": loaded, "status": globals().get("status"), "after_message": sorted(
    m for m in sys.modules if m.split(".")[0] == "opentelemetry")}))
"""


def load(
    tmp_path: Path,
    name: str,
    *,
    hide_opentelemetry: bool = False,
    handle_one: bool = False,
    **env: str,
) -> tuple[dict[str, Any], str]:
    """Load function ``name`` in a new process: (what it reports, its stdout and stderr)."""
    source = REPO / "functions" / name / "main.py"
    code = LOAD.format(name=name, source=str(source), watched=(*NEVER_AT_IMPORT, PUBLISHER))
    if hide_opentelemetry:
        code = HIDE_OPENTELEMETRY + code
    if handle_one:
        code += HANDLE_ONE_LIKE
    code += REPORT
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in ("PUBSUB_KIT_TRACE_DIR", "K_SERVICE")
    }
    environment |= {
        "PUBSUB_KIT_STORE": f"sqlite:///{tmp_path / 'state.db'}",
        "PUBSUB_PROJECT_ID": "imports-tests",
        "PYTHONPATH": str(REPO),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=source.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [report] = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"loaded"')]
    return report, done.stdout + done.stderr


@pytest.mark.parametrize("name", FUNCTIONS)
def test_loading_a_function_imports_no_client_no_opentelemetry_and_no_worker(tmp_path, name):
    report, _ = load(tmp_path, name)
    assert [m for m in report["loaded"] if m != PUBLISHER] == []


@pytest.mark.parametrize("name", ["audit_log", "timeline_enrichment"])
def test_a_function_that_never_publishes_does_not_load_the_publisher(tmp_path, name):
    report, _ = load(tmp_path, name)
    assert PUBLISHER not in report["loaded"]


def test_a_function_loads_when_opentelemetry_cannot_be_imported(tmp_path):
    report, _ = load(tmp_path, "order_notifications", hide_opentelemetry=True)
    assert [m for m in report["loaded"] if m != PUBLISHER] == []


def test_a_function_handles_an_event_when_opentelemetry_cannot_be_imported(tmp_path):
    report, _ = load(tmp_path, "timeline_enrichment", hide_opentelemetry=True, handle_one=True)
    assert report["status"] == 204
    assert report["after_message"] == []


def test_telemetry_asked_for_without_opentelemetry_is_reported_and_the_event_still_handled(
    tmp_path,
):
    report, output = load(
        tmp_path,
        "timeline_enrichment",
        hide_opentelemetry=True,
        handle_one=True,
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="console",
    )
    assert report["status"] == 204
    assert "OTEL_TRACES_EXPORTER or PUBSUB_KIT_TRACE_DIR asks for traces" in output
    assert "OTEL_METRICS_EXPORTER asks for metrics" in output
    assert "OpenTelemetry cannot be imported" in output
