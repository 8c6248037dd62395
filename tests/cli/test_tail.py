"""``pubsub-kit tail``, run as a user runs it, against the emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared import wire
from shared.delivery import RawMessage
from shared.events import Event
from shared.publisher import Publisher
from shared.runtime import PubSubDeadLetterSink
from shared.system.events import FieldChange, PostLiked, PostLikedV2, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.tools.provision import provision
from tests.cli.conftest import CONSOLE_SCRIPT, PubsubKit, Ran, closed_port, no_credentials
from tests.conftest import wait_until

pytestmark = pytest.mark.emulator

CANARY = "canary-7f3a@example.com"  # a sensitive value: must never be printed
FAST = 15.0  # seconds: "within seconds", with room for a slow CI machine


class Tail:
    """``pubsub-kit tail ...`` running in the background, its output collected as it comes."""

    def __init__(self, *args: str, env: Mapping[str, str | None] | None = None) -> None:
        environment = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        self.process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "tail", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    def wait_waiting(self) -> None:
        """Until tail says it waits (its subscription exists from then on)."""
        wait_until(
            lambda: (
                any("waiting for events" in line for line in self.err)
                or self.process.poll() is not None
            ),
            timeout=30,
            what="tail to wait for events",
        )
        assert self.process.poll() is None, "".join(self.err)

    def finish(self, timeout: float = 60.0) -> Ran:
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        err = "".join(self.err)
        assert "Traceback (most recent call last)" not in err, err
        return Ran(self.process.returncode, "".join(self.out), err)


def tail_subscriptions(project: str) -> list[str]:
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as client:
        return [
            s.name
            for s in client.list_subscriptions(request={"project": f"projects/{project}"})
            if "--tail-" in s.name
        ]


def user_updated(user: str = "u-1") -> UserUpdated:
    return UserUpdated(
        user_id=user,
        changed_by="admin-3",
        changes={
            "email": FieldChange(old="old@example.com", new=CANARY),
            "display_name": FieldChange(old="Ann", new="Anne"),
        },
        email=CANARY,
    )


def like(post_id: str = "post-1") -> PostLiked:
    return PostLiked(post_id=post_id, liker_id="u1", author_id="u2", liked_at=datetime.now(UTC))


def publish_raw(project: str, topic: str, data: bytes, **attributes: str) -> None:
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    try:
        client.publish(f"projects/{project}/topics/{topic}", data, **attributes).result(30)
    finally:
        client.stop()


def dead_letter(project: str, event: Event, subscription: str, reason: str) -> str:
    """Put ``event`` on ``subscription``'s dead-letter topic as the runtime does; its ce-id."""
    envelope = wire.new_envelope(event, source="/tests")
    data, attributes = wire.encode(event, envelope)
    raw = RawMessage(data=data, attributes=attributes, message_id=f"m-{envelope.id}", attempt=1)
    consumer = TOPOLOGY.subscription(subscription).consumer.name
    PubSubDeadLetterSink(consumer, project).send(raw, subscription, reason)
    return envelope.id


# -- a topic --------------------------------------------------------------------------------------


def test_a_topic_shows_each_event_decoded_and_redacted_and_its_subscription_is_deleted(
    project: str,
) -> None:
    provision(TOPOLOGY, project=project)
    tail = Tail("user-updated", "--limit", "3")
    tail.wait_waiting()
    [temporary] = tail_subscriptions(project)
    assert temporary.rsplit("/", 1)[-1].startswith("user-updated--tail-")

    publisher = Publisher(TOPOLOGY, project=project, source="/tests")
    event_id = "ev-" + "0123456789abcdef" * 2  # long: shown in full, never cut
    publisher.publish(user_updated(), event_id=event_id, correlation_id="corr-42").result(30)
    # A producer's message that does not fit the model, holding the same secret: no data shown.
    publish_raw(
        project,
        "user-updated",
        json.dumps({"user_id": "u-2", "email": CANARY}).encode(),
        **{"ce-id": "bad-fields", "ce-type": "user.updated.v1", "ce-source": "/other"},
    )
    publish_raw(
        project,
        "user-updated",
        f"not json {CANARY}".encode(),
        **{"ce-id": "bad-json", "ce-type": "user.updated.v1", "ce-source": "/other"},
    )
    ran = tail.finish()

    assert ran.status == 0, ran.err
    lines = ran.out.splitlines()
    assert len(lines) == 3
    good = next(line for line in lines if event_id in line)
    for expected in ("user.updated.v1", f"id={event_id}", "subject=u-1", "correlation=corr-42"):
        assert expected in good
    assert '"email":"[redacted]"' in good and '"display_name":{"old":"Ann","new":"Anne"}' in good
    assert " ago " in good
    bad = {line.split("id=")[1].split()[0]: line for line in lines if event_id not in line}
    assert "changed_by: Field required" in bad["bad-fields"]
    assert "message data is not JSON" in bad["bad-json"]
    assert all("undecodable" in line for line in bad.values())
    assert CANARY not in ran.out + ran.err
    assert "3 event(s) shown" in ran.err
    assert tail_subscriptions(project) == []


def test_json_prints_one_object_per_line_and_type_keeps_only_that_type(
    project: str,
) -> None:
    provision(TOPOLOGY, project=project)
    tail = Tail("post-liked", "--type", "post.liked.v2", "--limit", "1", "--json")
    tail.wait_waiting()
    publisher = Publisher(TOPOLOGY, project=project, source="/tests")
    publisher.publish(like("post-v1")).result(30)
    v2 = PostLikedV2(**like("post-v2").model_dump(), reaction="wow")
    v2_id = "v2-event"
    publisher.publish(v2, event_id=v2_id).result(30)
    ran = tail.finish()

    assert ran.status == 0, ran.err
    [entry] = [json.loads(line) for line in ran.out.splitlines()]
    assert entry["event_type"] == "post.liked.v2"
    assert entry["event_id"] == v2_id and entry["correlation_id"] == v2_id
    assert entry["subject"] == "post-v2"
    assert entry["data"]["reaction"] == "wow"
    assert entry["age_seconds"] >= 0 and entry["time"].endswith("Z")
    assert tail_subscriptions(project) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopped_by_a_signal_mid_run_it_deletes_its_subscription_and_exits_130(
    project: str, sig: int
) -> None:
    provision(TOPOLOGY, project=project)
    tail = Tail("order-dispatched")
    tail.wait_waiting()
    assert len(tail_subscriptions(project)) == 1
    started = time.monotonic()
    tail.process.send_signal(sig)
    ran = tail.finish(timeout=30)
    assert time.monotonic() - started < FAST
    assert ran.status == 130
    assert "temporary subscription" in ran.err and "deleted" in ran.err
    assert tail_subscriptions(project) == []


def test_a_consumers_subscription_is_read_through_its_topic_and_the_consumer_loses_nothing(
    project: str, pull_all
) -> None:
    provision(TOPOLOGY, project=project)
    tail = Tail("post-liked--audit_log", "--limit", "1")
    tail.wait_waiting()
    Publisher(TOPOLOGY, project=project, source="/tests").publish(like("post-7")).result(30)
    ran = tail.finish()

    assert ran.status == 0, ran.err
    assert "subject=post-7" in ran.out
    assert "tailing its topic post-liked instead" in ran.err
    # The consumer's own subscription still has the message, never delivered before.
    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as client:
        response = client.pull(
            request={
                "subscription": f"projects/{project}/subscriptions/post-liked--audit_log",
                "max_messages": 10,
            },
            timeout=30,
        )
    [received] = response.received_messages
    assert received.delivery_attempt == 1


# -- a dead-letter subscription -------------------------------------------------------------------


def test_a_dead_letter_subscription_is_peeked_with_reasons_and_every_letter_stays(
    pubsub_kit: PubsubKit, project: str, pull_all
) -> None:
    provision(TOPOLOGY, project=project)
    sub = "user-updated--audit_log"
    ids = [
        dead_letter(project, user_updated(f"u-{n}"), sub, f"PermanentError: case {n}")
        for n in range(3)
    ]
    ran = pubsub_kit("tail", f"{sub}--dlq", "--limit", "2")

    assert ran.status == 0, ran.err
    lines = ran.out.splitlines()
    assert len(lines) == 2
    assert all("dead-lettered: PermanentError: case" in line for line in lines)
    assert {line.split("id=")[1].split()[0] for line in lines} <= set(ids)
    assert CANARY not in ran.out + ran.err
    assert "given back" in ran.err
    # Nothing was consumed: the dead letters are all there for dlq replay.
    assert len(pull_all(project, f"{sub}--dlq", expect=3)) == 3


# -- wrong input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["post-liked", "--limit", "0"], "expected a number of events of at least 1, found 0"),
        (["post-liked", "--limit", "-3"], "expected a number of events of at least 1, found -3"),
        (["post-liked", "--limit", "many"], "expected a number of events, found 'many'"),
        ([], "the following arguments are required: TOPIC|SUBSCRIPTION"),
    ],
)
def test_bad_arguments_are_refused_with_what_was_expected(
    pubsub_kit: PubsubKit, args: list[str], expected: str
) -> None:
    ran = pubsub_kit("tail", *args)
    assert ran.status == 2
    assert expected in ran.error


def test_an_unknown_type_is_refused_before_any_io_naming_the_known_ones(
    pubsub_kit: PubsubKit,
) -> None:
    ran = pubsub_kit(
        "tail", "post-liked", "--type", "post.likd.v1", env={"PUBSUB_EMULATOR_HOST": closed_port()}
    )
    assert ran.status == 1
    assert ran.error == (
        "pubsub-kit: error: --type post.likd.v1 is not an event type of the topology; known "
        "types: notification.requested.v1, order.dispatched.v1, post.liked.v1, post.liked.v2, "
        "user.updated.v1"
    )


def test_an_unknown_name_says_what_exists(pubsub_kit: PubsubKit, project: str) -> None:
    provision(TOPOLOGY, project=project)
    ran = pubsub_kit("tail", "post-likes")
    assert ran.status == 1
    assert "no topic or subscription named 'post-likes'" in ran.error
    assert "post-liked" in ran.error


def test_a_topic_that_was_never_provisioned_says_to_provision(
    pubsub_kit: PubsubKit, project: str
) -> None:
    ran = pubsub_kit("tail", "post-liked", "--limit", "1")
    assert ran.status == 1
    assert ran.error.endswith(
        f"topic 'post-liked' does not exist in project {project!r}; create the topology "
        "first: pubsub-kit provision"
    )
    assert tail_subscriptions(project) == []


def test_without_the_emulator_it_fails_within_seconds_saying_what_to_start(
    pubsub_kit: PubsubKit,
) -> None:
    host = closed_port()
    started = time.monotonic()
    env = {"PUBSUB_EMULATOR_HOST": host, "PUBSUB_PROJECT_ID": "some-project"}
    ran = pubsub_kit("tail", "post-liked", env=env, timeout=60)
    assert time.monotonic() - started < FAST
    assert ran.status == 1
    assert f"the Pub/Sub emulator at {host} does not answer" in ran.error


def test_without_emulator_or_credentials_it_says_how_to_get_either(
    pubsub_kit: PubsubKit, tmp_path: Path
) -> None:
    ran = pubsub_kit("tail", "post-liked", env=no_credentials(tmp_path), timeout=60)
    assert ran.status == 1
    assert "PUBSUB_EMULATOR_HOST is not set and there are no Google credentials" in ran.error
