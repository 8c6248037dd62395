"""``pubsub-kit status``, run as a user runs it, against the emulator and a running local system;
the Cloud Monitoring reading and the runtime's status file on their own."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.delivery import RawMessage
from shared.publisher import Publisher
from shared.system.topology import TOPOLOGY
from shared.tools import local_status
from shared.tools.commands import status
from shared.tools.commands._pubsub import Backlog
from shared.tools.provision import provision
from tests.cli.conftest import PubsubKit, closed_port, no_credentials
from tests.cli.test_tail import dead_letter, like, publish_raw
from tests.conftest import wait_until

FAST = 15.0  # seconds
LIKES = "post-liked--timeline_enrichment"


def rows(ran_out: str) -> dict[str, dict[str, Any]]:
    document = json.loads(ran_out)
    return {row["subscription"]: row for row in document["subscriptions"]}


def first_attempt(project: str, subscription: str) -> int:
    """Pull one message of ``subscription`` and say which delivery attempt this was."""
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as client:
        response = client.pull(
            request={
                "subscription": f"projects/{project}/subscriptions/{subscription}",
                "max_messages": 1,
            },
            timeout=30,
        )
    [received] = response.received_messages
    return int(received.delivery_attempt)


# -- the emulator ---------------------------------------------------------------------------------


@pytest.mark.emulator
def test_a_dead_letter_shows_up_first_flagged_failing(pubsub_kit: PubsubKit, project: str) -> None:
    provision(TOPOLOGY, project=project)
    dead_letter(project, like(), LIKES, "PermanentError: post not found")

    ran = pubsub_kit("status")
    assert ran.status == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith(f"project {project} on the emulator at ")
    header, worst = lines[2], lines[3]
    assert header.split()[:3] == ["STATE", "SUBSCRIPTION", "CONSUMER"]
    assert worst.split()[:6] == ["FAILING", LIKES, "timeline_enrichment", "-", "-", "1"]
    assert lines[-1] == (
        f"1 of {len(TOPOLOGY.subscriptions)} subscriptions needs attention, worst {LIKES} "
        "(1 dead letter(s) waiting: pubsub-kit dlq)"
    )
    assert "backlogs not counted" in ran.err

    document = json.loads(pubsub_kit("status", "--json").out)
    row = {r["subscription"]: r for r in document["subscriptions"]}[LIKES]
    assert row["state"] == "FAILING"
    assert row["dead_letters"]["count"] == 1
    assert row["dead_letters"]["oldest_age_seconds"] >= 0
    assert document["subscriptions"][0]["subscription"] == LIKES  # worst first
    # Peeking at dead letters leaves them there.
    assert rows(pubsub_kit("status", "--json").out)[LIKES]["dead_letters"]["count"] == 1


@pytest.mark.emulator
def test_with_peek_a_backlog_shows_its_count_and_age_and_is_behind(
    pubsub_kit: PubsubKit, project: str
) -> None:
    provision(TOPOLOGY, project=project)
    publisher = Publisher(TOPOLOGY, project=project, source="/tests")
    publisher.publish_all([like(f"post-{n}") for n in range(3)])
    published = time.monotonic()
    wait_until(lambda: time.monotonic() - published >= 1.0, what="the backlog to age 1 s")

    ran = pubsub_kit("status", "--peek", "--behind", "0.5", "--json")
    assert ran.status == 0, ran.err
    found = rows(ran.out)
    for name in (LIKES, "post-liked--audit_log"):
        assert found[name]["state"] == "BEHIND"
        assert found[name]["backlog"]["count"] == 3
        assert found[name]["backlog"]["oldest_age_seconds"] >= 1.0
    assert found["order-dispatched--audit_log"]["state"] == "ok"
    assert found["order-dispatched--audit_log"]["backlog"]["count"] == 0
    assert any("spent one delivery attempt" in note for note in json.loads(ran.out)["notes"])

    table = pubsub_kit("status", "--peek", "--behind", "0.5")
    behind = next(line for line in table.out.splitlines() if LIKES in line).split()
    assert behind[0] == "BEHIND" and behind[3] == "3" and behind[4].endswith("s")


@pytest.mark.emulator
def test_without_peek_no_delivery_attempt_is_spent_and_with_peek_one_is(
    pubsub_kit: PubsubKit, project: str
) -> None:
    provision(TOPOLOGY, project=project)
    Publisher(TOPOLOGY, project=project, source="/tests").publish(like()).result(30)

    for _ in range(3):
        assert rows(pubsub_kit("status", "--json").out)[LIKES]["backlog"]["count"] is None
    assert first_attempt(project, "post-liked--audit_log") == 1

    assert rows(pubsub_kit("status", "--peek", "--json").out)[LIKES]["backlog"]["count"] == 1
    assert first_attempt(project, LIKES) == 2  # the peek was delivery attempt 1


@pytest.mark.emulator
def test_an_unprovisioned_project_shows_every_subscription_missing(
    pubsub_kit: PubsubKit, project: str
) -> None:
    ran = pubsub_kit("status")
    assert ran.status == 0, ran.err
    states = {line.split()[0] for line in ran.out.splitlines()[3:-1]}
    assert states == {"MISSING"}
    assert "missing: run pubsub-kit provision, or check --project" in ran.out.splitlines()[-1]


@pytest.mark.e2e
@pytest.mark.emulator
def test_under_a_running_local_system_each_function_shows_its_outcomes(
    pubsub_kit: PubsubKit, project: str, local_system
) -> None:
    local_system(TOPOLOGY, ["timeline_enrichment"])
    publisher = Publisher(TOPOLOGY, project=project, source="/tests")
    publisher.publish_all([like(f"post-{n}") for n in range(3)])
    publish_raw(  # can never succeed: dead-lettered at once
        project,
        "post-liked",
        b"{not json",
        **{"ce-id": "poison-1", "ce-type": "post.liked.v1", "ce-source": "/tests"},
    )

    def functions() -> dict[str, Any]:
        ran = pubsub_kit("status", "--json")
        found = json.loads(ran.out)["functions"] if ran.status == 0 else None
        return {fn["function"]: fn for fn in found or []}

    wait_until(
        lambda: (
            functions().get("timeline_enrichment", {}).get("handled") == 3
            and functions()["timeline_enrichment"]["dead_lettered"] == 1
        ),
        timeout=60,
        interval=0.5,
        what="the function's outcomes in status",
    )
    fn = functions()["timeline_enrichment"]
    assert fn["state"] == "FAILING" and fn["retried"] == 0 and fn["in_delivery"] == 0
    assert fn["outcomes"] == {"handled": 3, "dead_lettered": 1}

    table = pubsub_kit("status").out.splitlines()
    header = next(i for i, line in enumerate(table) if "FUNCTION" in line)
    assert table[header].split() == [
        "STATE",
        "FUNCTION",
        "IN",
        "DELIVERY",
        "OLDEST",
        "HANDLED",
        "RETRIED",
        "DEAD-LETTERED",
    ]
    assert table[header + 1].split() == ["FAILING", "timeline_enrichment", "0", "-", "3", "0", "1"]
    assert "functions: timeline_enrichment FAILING" in table[-1]


# -- wrong input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--behind", "0"], "argument --behind: expected a positive"),
        (["--behind=-5"], "found -5"),
        (["--behind", "soon"], "argument --behind: expected a number of seconds, found 'soon'"),
        (["--peek", "yes"], "unrecognized arguments: yes"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_expected(
    pubsub_kit: PubsubKit, args: list[str], expected: str
) -> None:
    ran = pubsub_kit("status", *args)
    assert ran.status == 2
    assert expected in ran.error


def test_without_the_emulator_it_fails_within_seconds_saying_what_to_start(
    pubsub_kit: PubsubKit,
) -> None:
    host = closed_port()
    started = time.monotonic()
    ran = pubsub_kit(
        "status", env={"PUBSUB_EMULATOR_HOST": host, "PUBSUB_PROJECT_ID": "p-1"}, timeout=60
    )
    assert time.monotonic() - started < FAST
    assert ran.status == 1
    assert f"the Pub/Sub emulator at {host} does not answer" in ran.error


def test_without_emulator_or_credentials_it_says_how_to_get_either(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    ran = pubsub_kit("status", env=no_credentials(tmp_path), timeout=60)
    assert ran.status == 1
    assert "PUBSUB_EMULATOR_HOST is not set and there are no Google credentials" in ran.error


def test_without_any_project_it_says_how_to_set_one(pubsub_kit: PubsubKit) -> None:
    ran = pubsub_kit(
        "status",
        env={"PUBSUB_PROJECT_ID": None, "GOOGLE_CLOUD_PROJECT": None, "GCP_PROJECT": None},
    )
    assert ran.status == 1
    assert "no project id" in ran.error


# -- Cloud Monitoring, with a client that answers as the real one ---------------------------------


def series(subscription: str, *values: int) -> SimpleNamespace:
    points = [SimpleNamespace(value=SimpleNamespace(int64_value=v)) for v in values]
    return SimpleNamespace(
        resource=SimpleNamespace(labels={"subscription_id": subscription}), points=points
    )


class FakeMetrics:
    def __init__(self, answers: dict[str, list[SimpleNamespace]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    def list_time_series(self, request: dict[str, Any], timeout: float) -> list[SimpleNamespace]:
        self.requests.append(request)
        metric = request["filter"].split('"')[1].rsplit("/", 1)[-1]
        return self.answers[metric]


def test_monitoring_gives_each_subscription_its_latest_count_and_age() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    client = FakeMetrics(
        {
            "num_undelivered_messages": [
                series("a-sub", 42, 40),
                series("other", 7),
                series("b-sub", 0),
            ],
            "oldest_unacked_message_age": [series("a-sub", 300, 240), series("b-sub", 0)],
        }
    )
    found = status.monitoring_backlogs("proj", ["a-sub", "b-sub", "c-sub"], client, now)
    assert found["a-sub"] == Backlog(42, now - timedelta(seconds=300))
    assert found["b-sub"] == Backlog(0, None)
    assert found["c-sub"].count is None and "no data" in (found["c-sub"].note or "")
    assert "other" not in found
    request = client.requests[0]
    assert request["name"] == "projects/proj"
    assert (
        'metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages"'
        in (request["filter"])
    )
    interval = request["interval"]
    assert interval["end_time"]["seconds"] - interval["start_time"]["seconds"] == 600


def test_monitoring_refusing_access_is_one_sentence_naming_the_role() -> None:
    from google.api_core import exceptions

    from shared.errors import ToolkitError

    class Refusing:
        def list_time_series(self, request: dict[str, Any], timeout: float) -> None:
            raise exceptions.PermissionDenied("no")

    with pytest.raises(ToolkitError, match=r"roles/monitoring\.viewer"):
        status.monitoring_backlogs("proj", ["a-sub"], Refusing())


def test_without_the_monitoring_client_the_import_fails_for_the_caller_to_explain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.monitoring_v3", None)
    with pytest.raises(ImportError):
        status.monitoring_backlogs("proj", ["a-sub"])


# -- what the local runtime writes ----------------------------------------------------------------


def outcome(consumer: str, status_name: str) -> str:
    return json.dumps({"severity": "INFO", "consumer": consumer, "status": status_name})


def named(path: Path, function: str) -> local_status.FunctionStatus:
    [found] = [f for f in local_status.read(path) or [] if f.name == function]
    return found


def in_delivery(path: Path, function: str) -> int | None:
    found = [f.in_delivery for f in local_status.read(path) or [] if f.name == function]
    return found[0] if found else None


def test_the_runtime_counts_outcome_lines_and_deliveries_and_removes_its_file(
    tmp_path: Path,
) -> None:
    path = local_status.status_file(tmp_path, "proj-1")
    runtime = local_status.RuntimeStatus(path, "proj-1")
    lines: list[tuple[str, str]] = []
    on_line = runtime.observing(lambda name, line: lines.append((name, line)))
    runtime.start(["likes", "audit"])
    try:
        for line in [
            outcome("likes", "handled"),
            outcome("likes", "handled"),
            outcome("likes", "duplicate"),
            outcome("likes", "retry"),
            outcome("likes", "dead_lettered"),
            "not json at all",
            '{"status": "handled"}',  # no consumer: not a message's last line
            json.dumps({"message": "starting", "consumer": "likes"}),
        ]:
            on_line("likes", line)
        published = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
        raw = RawMessage(data=b"", attributes={}, message_id="m-1", publish_time=published)
        with runtime.delivering("audit", raw):
            wait_until(
                lambda: in_delivery(path, "audit") == 1, timeout=5, what="the delivery in the file"
            )
            assert named(path, "audit").oldest_in_delivery == published
        wait_until(lambda: in_delivery(path, "audit") == 0, timeout=5, what="the delivery to end")
        likes = named(path, "likes")
        assert (likes.handled, likes.retried, likes.dead_lettered) == (3, 1, 1)
        assert likes.outcomes == {"dead_lettered": 1, "duplicate": 1, "handled": 2, "retry": 1}
        assert len(lines) == 8  # every line still reaches the runtime's own output
    finally:
        runtime.stop()
    assert not path.exists()
    assert local_status.read(path) is None


def test_a_status_file_left_by_a_process_that_is_gone_is_ignored(tmp_path: Path) -> None:
    import subprocess

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = local_status.status_file(tmp_path, "proj-1")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"project": "proj-1", "pid": int(gone.stdout), "functions": {}}))
    assert local_status.read(path) is None
    path.write_text("{half a file")
    assert local_status.read(path) is None
