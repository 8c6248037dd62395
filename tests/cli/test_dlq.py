"""``pubsub-kit dlq list|inspect|replay|purge``, run as a user runs them, against the emulator."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime

import pytest

from shared import wire
from shared.delivery import RawMessage
from shared.events import Event
from shared.runtime import PubSubDeadLetterSink
from shared.system.events import FieldChange, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.tools import dlq
from shared.tools.commands.publish import SOURCE as PUBLISH_SOURCE
from shared.tools.provision import provision
from tests.cli.conftest import CONSOLE_SCRIPT, closed_port, no_credentials
from tests.conftest import REPO, wait_until
from tests.failure._support import FunctionOutput

SUB = "post-liked--timeline_enrichment"
AUDIT = "user-updated--audit_log"
SECRET = "secret-value@example.com"
FIXABLE_SPEC = "tests.test_functions.fixable_likes.fixable_topology:TOPOLOGY"
FIXABLE_SUB = "post-liked--fixable_likes"
EMPTY_ANSWER = 4.0  # seconds: a whole command on an empty subscription; it took 5 s and more
# A command must fail within this when Pub/Sub cannot be reached (the check takes up to 3 s).
UNREACHABLE_ANSWER = 10.0


def like(post_id: str) -> PostLiked:
    return PostLiked(post_id=post_id, liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


def dead_letter(
    project: str,
    event: Event,
    *,
    subscription: str = SUB,
    reason: str = "PermanentError: post not found",
    data: bytes | None = None,
    event_id: str | None = None,
) -> str:
    """Put ``event`` on ``subscription``'s dead-letter topic as the runtime does; its ce-id."""
    envelope = wire.new_envelope(event, source="/tests", event_id=event_id)
    encoded, attributes = wire.encode(event, envelope)
    raw = RawMessage(
        data=encoded if data is None else data,
        attributes=attributes,
        message_id=f"m-{envelope.id}",
        attempt=3,
        subscription=subscription,
    )
    consumer = TOPOLOGY.subscription(subscription).consumer.name
    PubSubDeadLetterSink(consumer, project).send(raw, subscription, reason)
    return envelope.id


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- argument types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations_read_as_people_write_them(text, seconds) -> None:
    from shared.tools.commands.dlq import duration

    assert duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "h", "5x", "-5m", "5 m", "1h-5m", "0s", "0m0s"])
def test_other_durations_are_refused_with_what_was_expected(text) -> None:
    import argparse

    from shared.tools.commands.dlq import duration

    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration"):
        duration(text)


# -- list ----------------------------------------------------------------------------------------


@pytest.mark.emulator
def test_list_counts_every_dead_letter_subscription_with_the_oldest_age(
    project, pubsub_kit
) -> None:
    provision(TOPOLOGY)
    for i in range(3):
        dead_letter(project, like(f"p{i}"))
    ran = pubsub_kit("dlq", "list", "--json")
    assert ran.status == 0, ran.err
    rows = {row["subscription"]: row for row in json_lines(ran.out)}
    assert set(rows) == {f"{name}--dlq" for name in TOPOLOGY.subscriptions}
    mine = rows[f"{SUB}--dlq"]
    assert (mine["count"], mine["complete"], mine["source"]) == (3, True, SUB)
    assert isinstance(mine["oldest_age_seconds"], float) and mine["oldest_age_seconds"] >= 0
    assert all(row["count"] == 0 for name, row in rows.items() if name != f"{SUB}--dlq")
    assert "3 dead letter(s) in 1 of 6 subscription(s)" in ran.err

    table = pubsub_kit("dlq", "list")
    assert table.status == 0
    header, *lines = table.out.splitlines()
    assert header.split() == ["DEAD-LETTER", "SUBSCRIPTION", "WAITING", "OLDEST"]
    [row] = [line for line in lines if line.startswith(f"{SUB}--dlq")]
    assert row.split()[1] == "3"
    # Listing is a peek: the dead letters are all still there.
    assert len(dlq.inspect(TOPOLOGY, SUB, project=project)) == 3


@pytest.mark.emulator
def test_an_empty_dead_letter_subscription_answers_at_once(project, pubsub_kit) -> None:
    provision(TOPOLOGY)
    for args in (["dlq", "inspect", SUB], ["dlq", "list"], ["dlq", "replay", SUB]):
        started = time.monotonic()
        ran = pubsub_kit(*args)
        took = time.monotonic() - started
        assert ran.status == 0, ran.err
        assert took < EMPTY_ANSWER, f"{' '.join(args)} took {took:.1f} s"
    assert (
        "0 dead letter(s) on post-liked--timeline_enrichment--dlq"
        in pubsub_kit("dlq", "inspect", SUB).err
    )


# -- inspect -------------------------------------------------------------------------------------


@pytest.mark.emulator
def test_inspect_shows_id_type_reason_attempts_and_age_and_leaves_them(project, pubsub_kit) -> None:
    provision(TOPOLOGY)
    event_id = dead_letter(project, like("p1"), reason="RetryableError: search index down")
    first = pubsub_kit("dlq", "inspect", SUB)
    assert first.status == 0, first.err
    head, reason, data = first.out.splitlines()
    assert head.startswith(f"{event_id}  post.liked.v1  attempts 3  waiting ")
    assert reason.strip() == "reason: RetryableError: search index down"
    assert json.loads(data.split("data:", 1)[1])["post_id"] == "p1"

    again = pubsub_kit("dlq", "inspect", SUB, "--json")
    [line] = json_lines(again.out)
    assert line["event_id"] == event_id and line["event_type"] == "post.liked.v1"
    assert line["reason"] == "RetryableError: search index down"
    assert line["attempts"] == 3 and line["message_id"] == f"m-{event_id}"
    assert isinstance(line["age_seconds"], float) and line["dead_lettered_at"]


@pytest.mark.emulator
def test_inspect_never_prints_a_sensitive_value_nor_data_that_does_not_decode(
    project, pubsub_kit
) -> None:
    provision(TOPOLOGY)
    user = UserUpdated(
        user_id="u7",
        changed_by="u7",
        changes={"email": FieldChange(old="old@example.com", new=SECRET)},
        email=SECRET,
    )
    dead_letter(project, user, subscription=AUDIT)
    broken = b'{"post_id": "' + SECRET.encode() + b'", "oops'
    dead_letter(project, like("p2"), data=broken, reason="post.liked.v1: message data is not JSON")
    for args in ([], ["--json"]):
        for sub in (AUDIT, SUB):
            ran = pubsub_kit("dlq", "inspect", sub, *args)
            assert ran.status == 0, ran.err
            assert SECRET not in ran.out + ran.err
    [user_line] = json_lines(pubsub_kit("dlq", "inspect", AUDIT, "--json").out)
    data = user_line["data"]
    assert isinstance(data, dict) and data["email"] == "[redacted]"
    [broken_line] = json_lines(pubsub_kit("dlq", "inspect", SUB, "--json").out)
    assert broken_line["data"] is None
    assert broken_line["undecodable"] == "post.liked.v1: message data is not JSON"
    readable = pubsub_kit("dlq", "inspect", SUB).out
    assert "data:   not shown, it does not decode: post.liked.v1: message data is not JSON" in (
        readable
    )


@pytest.mark.emulator
def test_inspect_takes_the_dead_letter_subscription_name_a_limit_and_a_type(
    project, pubsub_kit
) -> None:
    provision(TOPOLOGY)
    for i in range(3):
        dead_letter(project, like(f"p{i}"))
    assert len(json_lines(pubsub_kit("dlq", "inspect", f"{SUB}--dlq", "--json").out)) == 3
    assert len(json_lines(pubsub_kit("dlq", "inspect", SUB, "--limit", "2", "--json").out)) == 2
    typed = pubsub_kit("dlq", "inspect", SUB, "--type", "post.liked.v2", "--json")
    assert typed.status == 0 and typed.out == ""
    old = pubsub_kit("dlq", "inspect", SUB, "--max", "1", "--json")
    assert old.status == 0 and len(json_lines(old.out)) == 1
    assert "--max is deprecated; use --limit" in old.err


# -- replay --------------------------------------------------------------------------------------


@pytest.mark.emulator
def test_replay_dry_run_lists_what_would_be_replayed_and_changes_nothing(
    project, pubsub_kit
) -> None:
    provision(TOPOLOGY)
    ids = {dead_letter(project, like(f"p{i}")) for i in range(2)}
    ran = pubsub_kit("dlq", "replay", SUB, "--dry-run", "--json")
    assert ran.status == 0, ran.err
    assert {line["event_id"] for line in json_lines(ran.out)} == ids
    assert "would replay 2 to topic post-liked, skip 0; nothing changed" in ran.err
    assert {d.event_id for d in dlq.inspect(TOPOLOGY, SUB, project=project)} == ids


@pytest.mark.emulator
def test_replay_by_id_publishes_the_original_message_and_removes_only_that_one(
    project, pubsub_kit, pull_all
) -> None:
    provision(TOPOLOGY)
    chosen = dead_letter(project, like("p1"))
    other = dead_letter(project, like("p2"))
    ran = pubsub_kit("dlq", "replay", SUB, "--id", chosen, "--type", "post.liked.v1")
    assert ran.status == 0, ran.err
    assert ran.out.strip() == (f"replayed 1, skipped 1, failed 0: {SUB}--dlq -> topic post-liked")
    [message] = pull_all(project, "post-liked--audit_log", expect=1)
    assert message.attributes["ce-id"] == chosen
    assert not [k for k in message.attributes if k.startswith(("pubsubkit-dlq", "CloudPubSub"))]
    assert json.loads(message.data)["post_id"] == "p1"
    assert [d.event_id for d in dlq.inspect(TOPOLOGY, SUB, project=project)] == [other]


@pytest.mark.emulator
def test_replay_older_than_takes_only_what_waited_longer(project, pubsub_kit) -> None:
    provision(TOPOLOGY)
    dead_letter(project, like("p1"))
    young = pubsub_kit("dlq", "replay", SUB, "--older-than", "1h", "--json")
    assert young.status == 0, young.err
    assert json_lines(young.out) == [
        {
            "replayed": 0,
            "skipped": 1,
            "failed": 0,
            "subscription": f"{SUB}--dlq",
            "topic": "post-liked",
        }
    ]

    def replayed_once_old_enough() -> bool:
        ran = pubsub_kit("dlq", "replay", SUB, "--older-than", "1s", "--json")
        return ran.status == 0 and json_lines(ran.out)[0]["replayed"] == 1

    wait_until(replayed_once_old_enough, timeout=30, what="the dead letter to be 1 s old")
    assert dlq.inspect(TOPOLOGY, SUB, project=project) == []


@pytest.mark.emulator
def test_a_replay_that_cannot_publish_says_why_and_keeps_the_dead_letters(
    project, pubsub_kit
) -> None:
    from google.cloud import pubsub_v1

    provision(TOPOLOGY)
    for i in range(2):
        dead_letter(project, like(f"p{i}"))
    publisher = pubsub_v1.PublisherClient()
    publisher.delete_topic(request={"topic": f"projects/{project}/topics/post-liked"})
    ran = pubsub_kit("dlq", "replay", SUB)
    assert ran.status == 1
    assert ran.out.strip() == f"replayed 0, skipped 0, failed 2: {SUB}--dlq -> topic post-liked"
    assert ran.error.startswith("pubsub-kit: error: re-publishing to topic 'post-liked' failed: ")
    assert ran.error.endswith(
        f"2 dead letter(s) stay on {SUB}--dlq: run the replay again once that is fixed"
    )
    assert len(dlq.inspect(TOPOLOGY, SUB, project=project)) == 2


@pytest.mark.emulator
def test_a_replay_stopped_by_a_signal_hands_back_what_it_held_at_once(
    project, pubsub_kit, pull_all
) -> None:
    """SIGTERM (or Ctrl-C) ends a replay the clean way: what it pulled but did not replay is
    available again at once, not after its lease."""
    provision(TOPOLOGY)
    for i in range(20):
        dead_letter(project, like(f"p{i}"))
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "dlq", "replay", SUB, "--rate", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # a line at every tenth: 2/20, 4/20, ...
        if line.strip().endswith("4/20"):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in err
    waiting = len(dlq.inspect(TOPOLOGY, SUB, project=project))  # at once: within the lease
    replayed = len(pull_all(project, "post-liked--audit_log", quiet=1))
    assert replayed >= 4
    # One may have been re-published but not yet acked when the signal came: then it is both.
    assert waiting + replayed in (20, 21), (waiting, replayed)


@pytest.mark.emulator
def test_a_second_replay_leaves_alone_what_a_running_replay_holds(
    project, pubsub_kit, pull_all
) -> None:
    """A replay keeps the dead letters it selected until it is done with them: a second replay
    started meanwhile finds none of them, so none is published twice."""
    provision(TOPOLOGY)
    for i in range(20):
        dead_letter(project, like(f"p{i}"))
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "dlq", "replay", SUB, "--rate", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # a line at every tenth: 2/20, 4/20, ...
            if line.strip().endswith("2/20"):
                break
        second = pubsub_kit("dlq", "replay", SUB, "--json")
        still_running = process.poll() is None
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(10)
    assert second.status == 0, second.err
    assert still_running, "the first replay ended before the second one looked"
    [counts] = json_lines(second.out)
    assert (counts["replayed"], counts["skipped"], counts["failed"]) == (0, 0, 0)
    assert process.returncode == 0, err
    assert out.strip() == f"replayed 20, skipped 0, failed 0: {SUB}--dlq -> topic post-liked"
    replayed = pull_all(project, "post-liked--audit_log", expect=20)
    assert sorted(json.loads(m.data)["post_id"] for m in replayed) == sorted(
        f"p{i}" for i in range(20)
    )


# -- purge ---------------------------------------------------------------------------------------


@pytest.mark.emulator
def test_purge_refuses_without_a_terminal_unless_yes_and_says_how_many(project, pubsub_kit) -> None:
    provision(TOPOLOGY)
    for i in range(2):
        dead_letter(project, like(f"p{i}"))
    refused = pubsub_kit("dlq", "purge", SUB, input="y\n")
    assert refused.status == 1
    assert refused.error == (
        f"pubsub-kit: error: purge would delete 2 dead letter(s) from {SUB}--dlq in project "
        f"{project}, and there is no terminal to confirm on; add --yes to delete them"
    )
    assert len(dlq.inspect(TOPOLOGY, SUB, project=project)) == 2
    typed = pubsub_kit("dlq", "purge", SUB, "--type", "post.liked.v2", "--yes")
    assert typed.out.strip() == f"deleted 0 dead letter(s) from {SUB}--dlq"
    done = pubsub_kit("dlq", "purge", SUB, "--yes")
    assert done.status == 0, done.err
    assert done.out.strip() == f"deleted 2 dead letter(s) from {SUB}--dlq"
    assert dlq.inspect(TOPOLOGY, SUB, project=project) == []


@pytest.mark.emulator
@pytest.mark.parametrize(("answer", "deleted"), [("n\n", 0), ("y\n", 1)])
def test_purge_asks_on_a_terminal(project, answer, deleted) -> None:
    provision(TOPOLOGY)
    dead_letter(project, like("p1"))
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "dlq", "purge", SUB],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(leader, answer.encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert "Traceback" not in err
    assert f"Delete 1 dead letter(s) from {SUB}--dlq in project {project}?" in err
    assert len(dlq.inspect(TOPOLOGY, SUB, project=project)) == 1 - deleted
    if deleted:
        assert process.returncode == 0 and "deleted 1 dead letter(s)" in out
    else:
        assert process.returncode == 1 and "nothing deleted" in err


# -- wrong input, and no Pub/Sub -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        (["inspect", SUB, "--limit", "0"], 2, "expected a whole number of at least 1, found 0"),
        (["inspect", SUB, "--limit", "-5"], 2, "expected a whole number of at least 1, found -5"),
        (["inspect", SUB, "--max", "-5"], 2, "argument --max: expected a whole number of at"),
        (["inspect", SUB, "--limit", "many"], 2, "expected a whole number, found 'many'"),
        (["replay", SUB, "--limit", "0"], 2, "expected a whole number of at least 1, found 0"),
        (["replay", SUB, "--older-than", "5x"], 2, "expected a duration like 30s, 15m, 2h or 7d"),
        (["replay", SUB, "--older-than", "0s"], 2, "expected a duration of more than 0 s"),
        (["purge", SUB, "--older-than", "soon"], 2, "expected a duration like 30s, 15m, 2h or 7d"),
        (["replay", SUB, "--rate", "0"], 2, "expected a positive number of messages per second"),
        (["replay", SUB, "--rate", "fast"], 2, "expected a number of messages per second"),
        (["replay", SUB, "--id"], 2, "argument --id: expected at least one argument"),
        (["replay", SUB, "--id", " "], 1, "--id takes event ids or message ids; found an empty"),
        (["inspect", SUB, "--max", "3", "--limit", "3"], 1, "--max is the old name of --limit"),
        (["inspect", "nope--nobody"], 1, "no subscription named 'nope--nobody'; declared: "),
        (["purge", "post-liked--audit_log--dlq--dlq"], 1, "no subscription named"),
        (["replay", SUB, "--type", "post.likd.v1"], 1, "not an event type of this topology"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        ([], 2, "the following arguments are required: ACTION"),
        (["inspect"], 2, "the following arguments are required: SUBSCRIPTION"),
    ],
)
def test_wrong_input_is_refused_with_a_sentence(pubsub_kit, args, status, expected) -> None:
    ran = pubsub_kit("dlq", *args, env={"PUBSUB_PROJECT_ID": "any"})
    assert ran.status == status, ran.err
    assert expected in ran.error


def test_the_subscription_list_names_every_declared_one(pubsub_kit) -> None:
    ran = pubsub_kit("dlq", "inspect", "nope", env={"PUBSUB_PROJECT_ID": "any"})
    assert all(name in ran.error for name in TOPOLOGY.subscriptions)


@pytest.mark.emulator
@pytest.mark.parametrize(
    "args",
    [["list"], ["inspect", SUB], ["replay", SUB], ["replay", SUB, "--dry-run"], ["purge", SUB]],
)
def test_an_unprovisioned_project_is_one_sentence(pubsub_kit, pubsub_emulator, args) -> None:
    confirm = ["--yes"] if args[0] == "purge" else []
    ran = pubsub_kit("dlq", *args, *confirm, "--project", "never-provisioned")
    assert ran.status == 1
    assert "does not exist in project 'never-provisioned'" in ran.error or (
        "none of the topology's dead-letter subscriptions exists" in ran.error
    )
    assert ran.error.endswith("pubsub-kit provision --project never-provisioned")


@pytest.mark.parametrize(
    "args", [["list"], ["inspect", SUB], ["replay", SUB], ["purge", SUB, "--yes"]]
)
def test_no_emulator_fails_within_seconds_saying_what_to_start(pubsub_kit, args) -> None:
    host = closed_port()
    started = time.monotonic()
    ran = pubsub_kit("dlq", *args, env={"PUBSUB_EMULATOR_HOST": host, "PUBSUB_PROJECT_ID": "p"})
    assert time.monotonic() - started < UNREACHABLE_ANSWER
    assert ran.status == 1
    assert ran.error.startswith(f"pubsub-kit: error: the Pub/Sub emulator at {host} does not")
    assert "pubsub-kit emulator start" in ran.error


@pytest.mark.parametrize("args", [["list"], ["inspect", SUB], ["replay", SUB]])
def test_no_credentials_says_how_to_point_at_the_emulator_or_log_in(
    pubsub_kit, tmp_path, args
) -> None:
    ran = pubsub_kit(
        "dlq",
        *args,
        env=no_credentials(tmp_path),
    )
    assert ran.status == 1
    assert "no Pub/Sub to talk to" in ran.error
    assert "gcloud auth application-default login" in ran.error


def test_no_project_is_one_sentence(pubsub_kit) -> None:
    ran = pubsub_kit(
        "dlq",
        "list",
        env={"PUBSUB_PROJECT_ID": None, "GOOGLE_CLOUD_PROJECT": None, "GCP_PROJECT": None},
    )
    assert ran.status == 1
    assert "no project id" in ran.error


# -- replay after the fix: each event handled exactly once ---------------------------------------

EVENTS = 50


class Fixable:
    """The fixable_likes consumer, running, with 50 of its events dead-lettered."""

    def __init__(self, project, tmp_path, monkeypatch, local_system, pubsub_kit) -> None:
        from shared.stores import open_store
        from tests.test_functions.fixable_likes.fixable_topology import TOPOLOGY as FIXABLE

        self.project = project
        self.topology = FIXABLE
        self.pubsub_kit = pubsub_kit
        self.fixed = tmp_path / "fixed"
        self.env = {"PYTHONPATH": str(REPO)}
        monkeypatch.setenv("FIXABLE_LIKES_FIXED", str(self.fixed))  # the function inherits it
        self.output = FunctionOutput()
        local_system(
            FIXABLE,
            ["fixable_likes"],
            functions_dir=REPO / "tests" / "test_functions",
            on_line=self.output,
        )
        self.store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
        self.posts = [f"post-{i}" for i in range(EVENTS)]
        lines = "".join(like(p).model_dump_json() + "\n" for p in self.posts)
        published = self.cli("publish", "post.liked.v1", "-", "--json", input=lines)
        assert published.status == 0, published.err
        ids = [str(row["event_id"]) for row in json_lines(published.out)]
        self.post_of = dict(zip(ids, self.posts, strict=True))
        wait_until(
            lambda: len(self.waiting()) == EVENTS,
            timeout=90,
            interval=0.5,
            what=f"{EVENTS} dead letters",
        )

    def cli(self, *args: str, **kwargs):
        return self.pubsub_kit("--topology", FIXABLE_SPEC, *args, env=self.env, cwd=REPO, **kwargs)

    def waiting(self) -> set[str]:
        """Posts whose dead letter can be pulled now."""
        letters = dlq.inspect(self.topology, FIXABLE_SUB, project=self.project, max_messages=1000)
        return {self.post_of[str(d.event_id)] for d in letters}

    def leave_dead_letter(self, post: str) -> None:
        """Dead-letter ``post``'s event again, as a replay killed before its ack leaves it."""
        event_id = next(i for i, p in self.post_of.items() if p == post)
        event = like(post)
        envelope = wire.new_envelope(event, source=PUBLISH_SOURCE, event_id=event_id)
        data, attributes = wire.encode(event, envelope)
        raw = RawMessage(data, attributes, f"m-{event_id}", subscription=FIXABLE_SUB)
        PubSubDeadLetterSink("fixable_likes", self.project).send(raw, FIXABLE_SUB, "killed")

    def runs(self) -> dict[str, int]:
        return {p: self.store.counters("handled", p).get("runs", 0) for p in self.posts}

    def handled_once_each(self) -> bool:
        return set(self.runs().values()) == {1}


@pytest.fixture
def fixable(project, tmp_path, monkeypatch, local_system, pubsub_kit):
    broken = Fixable(project, tmp_path, monkeypatch, local_system, pubsub_kit)
    yield broken
    broken.store.close()


@pytest.mark.emulator
@pytest.mark.e2e
def test_replay_after_the_fix_handles_each_of_50_dead_letters_exactly_once(fixable) -> None:
    assert set(fixable.runs().values()) == {0}
    fixable.fixed.touch()
    ran = fixable.cli("dlq", "replay", FIXABLE_SUB)
    assert ran.status == 0, ran.err
    assert ran.out.strip() == (
        f"replayed {EVENTS}, skipped 0, failed 0: {FIXABLE_SUB}--dlq -> topic post-liked"
    )
    assert re.search(rf"replaying \[#+\] {EVENTS}/{EVENTS}$", ran.err, re.MULTILINE)
    wait_until(fixable.handled_once_each, timeout=60, what="every replayed like handled")
    wait_until(lambda: fixable.output.quiet_for(1.0), timeout=30, what="the consumer idle")
    assert fixable.handled_once_each(), fixable.runs()
    assert fixable.waiting() == set()


@pytest.mark.emulator
@pytest.mark.e2e
def test_a_replay_killed_halfway_and_run_again_handles_each_exactly_once(fixable) -> None:
    fixable.fixed.touch()
    # Rate-limited so that it is surely still running when it is killed; killed (SIGKILL: no
    # cleanup) once it reported 10 of 50 replayed.
    command = ["dlq", "replay", FIXABLE_SUB, "--rate", "5"]
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--topology", FIXABLE_SPEC, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, **fixable.env},
    )
    progress: list[int] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            found = re.search(r"(\d+)/\d+$", line.strip())
            if found:
                progress.append(int(found.group(1)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: progress and progress[-1] >= 10, timeout=60, what="10 replayed")
        assert process.poll() is None, "the replay ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(10)
    reader.join(10)
    assert process.returncode == -signal.SIGKILL
    assert 10 <= progress[-1] < EVENTS

    # What the killed run published is handled; the rest is still dead-lettered, or comes back
    # once the killed run's lease on it ends (dlq.LEASE seconds).
    def all_accounted_for() -> bool:
        runs = fixable.runs()
        unhandled = {p for p, n in runs.items() if n == 0}
        return bool(unhandled) and unhandled <= fixable.waiting()

    wait_until(all_accounted_for, timeout=dlq.LEASE + 30, interval=0.5, what="the rest back")
    assert max(fixable.runs().values()) == 1
    # A kill between a re-publish and its ack leaves an event both handled and dead-lettered;
    # the kill above may or may not have hit that instant, so make sure one such is there.
    handled = next(p for p, n in fixable.runs().items() if n == 1)
    fixable.leave_dead_letter(handled)

    again = fixable.cli("dlq", "replay", FIXABLE_SUB)
    assert again.status == 0, again.err
    wait_until(fixable.handled_once_each, timeout=60, what="every like handled")
    wait_until(lambda: fixable.output.quiet_for(1.0), timeout=30, what="the consumer idle")
    assert fixable.handled_once_each(), fixable.runs()
    assert fixable.waiting() == set()
    # What was re-published twice was dropped by its ce-id the second time.
    statuses = fixable.output.statuses()
    assert statuses["handled"] == EVENTS and statuses["duplicate"] >= 1, statuses
