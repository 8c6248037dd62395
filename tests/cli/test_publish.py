"""``pubsub-kit publish``, run as a user runs it, against the emulator."""

from __future__ import annotations

import json
import time

import pytest

from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from tests.cli.conftest import closed_port, no_credentials

AUDIT = "post-liked--audit_log"  # receives every like
SECRET = "secret-value@example.com"
UNREACHABLE_ANSWER = 10.0  # seconds: the reachability check gives up after 3


def like(post_id: str = "p1") -> str:
    data = {"post_id": post_id, "liker_id": "u1", "author_id": "u2"}
    return json.dumps({**data, "liked_at": "2026-01-01T00:00:00Z"})


@pytest.mark.emulator
def test_publish_prints_the_event_id_and_the_message_id(project, pubsub_kit, pull_all) -> None:
    provision(TOPOLOGY)
    ran = pubsub_kit("publish", "post.liked.v1", like())
    assert ran.status == 0, ran.err
    words = ran.out.split()
    assert words[:5] == ["published", "post.liked.v1", "to", "post-liked:", "event"]
    event_id, message_id = words[5].rstrip(","), words[7]
    [message] = pull_all(project, AUDIT, expect=1)
    assert message.attributes["ce-id"] == event_id
    assert message.message_id == message_id
    assert message.attributes["ce-source"] == "/cli/pubsub-kit"


@pytest.mark.emulator
def test_json_time_correlation_id_and_ordering_key(project, pubsub_kit, pull_all) -> None:
    provision(TOPOLOGY)
    ran = pubsub_kit(
        "publish",
        "post.liked.v1",
        like(),
        "--json",
        "--time",
        "2026-01-31T13:00:00+01:00",
        "--correlation-id",
        "c-1",
        "--ordering-key",
        "post-p1",
    )
    assert ran.status == 0, ran.err
    [row] = [json.loads(line) for line in ran.out.splitlines()]
    assert set(row) == {"event_id", "message_id", "event_type", "topic"}
    assert (row["event_type"], row["topic"]) == ("post.liked.v1", "post-liked")
    [message] = pull_all(project, AUDIT, expect=1)
    assert message.attributes["ce-id"] == row["event_id"]
    assert message.message_id == row["message_id"]
    assert message.attributes["ce-time"] == "2026-01-31T12:00:00.000000Z"
    assert message.attributes["ce-correlationid"] == "c-1"
    assert message.ordering_key == "post-p1"


@pytest.mark.emulator
def test_many_events_from_a_file_one_per_line(project, pubsub_kit, pull_all, tmp_path) -> None:
    provision(TOPOLOGY)
    events = tmp_path / "likes.jsonl"
    events.write_text(f"{like('p1')}\n\n{like('p2')}\n{like('p3')}\n")
    ran = pubsub_kit("publish", "post.liked.v1", f"@{events}", "--json")
    assert ran.status == 0, ran.err
    rows = [json.loads(line) for line in ran.out.splitlines()]
    assert len(rows) == 3 and len({r["event_id"] for r in rows}) == 3
    messages = pull_all(project, AUDIT, expect=3)
    posts = {m.attributes["ce-id"]: json.loads(m.data)["post_id"] for m in messages}
    assert [posts[r["event_id"]] for r in rows] == ["p1", "p2", "p3"]  # printed in input order


@pytest.mark.emulator
def test_many_events_from_standard_input(project, pubsub_kit, pull_all) -> None:
    provision(TOPOLOGY)
    ran = pubsub_kit("publish", "post.liked.v1", "-", input=f"{like('p1')}\n{like('p2')}\n")
    assert ran.status == 0, ran.err
    assert len(ran.out.splitlines()) == 2
    assert len(pull_all(project, AUDIT, expect=2)) == 2


@pytest.mark.emulator
def test_a_file_holding_one_pretty_printed_object_is_one_event(
    project, pubsub_kit, pull_all, tmp_path
) -> None:
    provision(TOPOLOGY)
    event = tmp_path / "like.json"
    event.write_text(json.dumps(json.loads(like()), indent=2))
    ran = pubsub_kit("publish", "post.liked.v1", f"@{event}")
    assert ran.status == 0, ran.err
    assert len(pull_all(project, AUDIT, expect=1)) == 1


@pytest.mark.emulator
def test_every_event_is_validated_before_any_is_published(
    project, pubsub_kit, pull_all, tmp_path
) -> None:
    provision(TOPOLOGY)
    events = tmp_path / "likes.jsonl"
    events.write_text(f'{like("p1")}\n{{"post_id": "p2"}}\n{like("p3")}\n')
    ran = pubsub_kit("publish", "post.liked.v1", f"@{events}")
    assert ran.status == 1
    assert ran.error.startswith(f"pubsub-kit: error: line 2 of {events}: post.liked.v1: data does")
    assert "liker_id: Field required" in ran.error
    assert ran.out == ""
    assert pull_all(project, AUDIT, quiet=1) == []


@pytest.mark.parametrize(
    ("data", "stdin", "status", "expected"),
    [
        ('{"post_id": "p1"}', None, 1, "post.liked.v1: data does not fit the model (liker_id: "),
        (like()[:-1] + ', "extra": 1}', None, 1, "[field 5]: Extra inputs are not permitted"),
        ("{oops", None, 1, "DATA: not JSON (Expecting property name enclosed in double quotes)"),
        ("[1, 2]", None, 1, "DATA: expected a JSON object of the event's data, found a JSON array"),
        ("42", None, 1, "found a JSON number"),
        ("", None, 1, "DATA: not JSON (Expecting value)"),
        ("@", None, 1, "DATA is @ without a file name; expected @FILE"),
        ("@/no/such/file.jsonl", None, 1, "cannot read /no/such/file.jsonl: No such file"),
        ("@/", None, 1, "cannot read /: Is a directory"),
        ("-", "", 1, "standard input holds no event: expected a JSON object, or one per line"),
        ("-", "\n  \n", 1, "standard input holds no event"),
        ("-", f"{like()}\nnope\n", 1, "line 2 of standard input: not JSON (Expecting value)"),
        ("-", f"{like()}\n[]\n", 1, "line 2 of standard input: expected a JSON object"),
    ],
)
def test_wrong_data_is_refused_with_a_sentence_naming_where(
    pubsub_kit, data, stdin, status, expected
) -> None:
    ran = pubsub_kit("publish", "post.liked.v1", data, input=stdin, env={"PUBSUB_PROJECT_ID": "p"})
    assert ran.status == status, ran.err
    assert expected in ran.error
    assert ran.out == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["post.likd.v1", like()], "unknown event type 'post.likd.v1'; registered types: "),
        (["", like()], "unknown event type ''"),
    ],
)
def test_an_unknown_event_type_names_the_registered_ones(pubsub_kit, args, expected) -> None:
    ran = pubsub_kit("publish", *args, env={"PUBSUB_PROJECT_ID": "p"})
    assert ran.status == 1
    assert expected in ran.error and "post.liked.v1" in ran.error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--time", "yesterday"], "argument --time: expected an RFC 3339 time with an offset"),
        (["--time", "2026-01-31T12:00:00"], "found '2026-01-31T12:00:00'"),
        (["--time", "2026-01-31"], "expected an RFC 3339 time with an offset"),
        (["--time", "2026-13-31T12:00:00Z"], "expected an RFC 3339 time with an offset"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_wrong_options_exit_2_with_what_was_expected(pubsub_kit, args, expected) -> None:
    ran = pubsub_kit("publish", "post.liked.v1", like(), *args, env={"PUBSUB_PROJECT_ID": "p"})
    assert ran.status == 2
    assert expected in ran.error


def test_missing_arguments_exit_2(pubsub_kit) -> None:
    ran = pubsub_kit("publish", "post.liked.v1")
    assert ran.status == 2
    assert "the following arguments are required: DATA" in ran.error


def test_a_sensitive_value_is_never_echoed_in_an_error(pubsub_kit) -> None:
    data = json.dumps({"user_id": "u7", "changed_by": "u7", "changes": {}, "email": [SECRET]})
    ran = pubsub_kit("publish", "user.updated.v1", data, env={"PUBSUB_PROJECT_ID": "p"})
    assert ran.status == 1
    assert "email" in ran.error
    assert SECRET not in ran.out + ran.err


@pytest.mark.emulator
def test_an_unprovisioned_project_is_one_sentence(pubsub_kit, pubsub_emulator) -> None:
    ran = pubsub_kit("publish", "post.liked.v1", like(), "--project", "never-provisioned")
    assert ran.status == 1
    assert ran.error == (
        "pubsub-kit: error: topic 'post-liked' does not exist in project 'never-provisioned'; "
        "create the topology there first: pubsub-kit provision --project never-provisioned"
    )


def test_no_emulator_fails_within_seconds_saying_what_to_start(pubsub_kit) -> None:
    host = closed_port()
    started = time.monotonic()
    env = {"PUBSUB_EMULATOR_HOST": host, "PUBSUB_PROJECT_ID": "p"}
    ran = pubsub_kit("publish", "post.liked.v1", like(), env=env)
    assert time.monotonic() - started < UNREACHABLE_ANSWER
    assert ran.status == 1
    assert ran.error.startswith(f"pubsub-kit: error: the Pub/Sub emulator at {host} does not")


def test_no_credentials_says_how_to_point_at_the_emulator_or_log_in(pubsub_kit, tmp_path) -> None:
    ran = pubsub_kit(
        "publish",
        "post.liked.v1",
        like(),
        env=no_credentials(tmp_path),
    )
    assert ran.status == 1
    assert "no Pub/Sub to talk to" in ran.error
    assert "gcloud auth application-default login" in ran.error


def test_no_project_is_one_sentence(pubsub_kit) -> None:
    ran = pubsub_kit(
        "publish",
        "post.liked.v1",
        like(),
        env={"PUBSUB_PROJECT_ID": None, "GOOGLE_CLOUD_PROJECT": None, "GCP_PROJECT": None},
    )
    assert ran.status == 1
    assert "no project id" in ran.error
