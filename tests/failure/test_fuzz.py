"""Property-based fuzzing of every boundary where the outside world hands the toolkit bytes.

No emulator: the HTTP endpoint runs in functions-framework's test client with a recording
dead-letter sink, the pipeline through :class:`~shared.testing.HandlerHarness`, and every command
of the CLI in process, with the emulators' variables pointing where nothing listens. Each property
is bounded (``max_examples``) so the module runs in seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import socket
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import wire
from shared.errors import EventValidationError, PermanentError, RetryableError
from shared.events import Event
from shared.push import PUBSUB_EVENT_TYPE
from shared.runtime import Outcome
from shared.system.events import FieldChange, PostLiked, UserUpdated
from shared.system.topology import TOPOLOGY
from shared.testing import HandlerHarness, RecordingSink
from shared.tools.cli import build_parser, main

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing kept between runs: each run explores afresh
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # caplog, tmp_path: checked per example below
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

SUBSCRIPTION = "post-liked--timeline_enrichment"
ACKED = {Outcome.HANDLED, Outcome.DUPLICATE, Outcome.FILTERED, Outcome.DEAD_LETTERED}
CANARY = "canary-7f3a@secret.example"

# --- strategies: values ----------------------------------------------------------------------

texts = st.text(max_size=40)
ids = st.text(min_size=1, max_size=128)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
ADVERSARIAL_JSON = [
    b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion
    b'{"a": ' * 1000 + b"1" + b"}" * 1000,
    b'{"post_id": ' + b"9" * 5000 + b"}",  # beyond Python's int digits limit
    b'{"post_id": 1e999999}',
    b'{"post_id": NaN, "liker_id": Infinity}',
    b'{"post_id": "\\ud800"}',  # a lone surrogate
    b"\xef\xbb\xbf{}",  # a byte-order mark
    b"\xff\xfe\x00{",  # not UTF-8
    b'{"post_id": "a", "post_id": "b"}',
    b"null",
    b"[]",
    b'""',
    b"",
    b"{" * 5,
]
adversarial_json = st.sampled_from(ADVERSARIAL_JSON)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
recent = st.builds(lambda s: datetime.now(UTC) - timedelta(seconds=s), st.integers(0, 3600))
likes = st.builds(PostLiked, post_id=ids, liker_id=ids, author_id=ids, liked_at=moments | recent)


@st.composite
def envelopes(draw: st.DrawFn, event: Event | None = None) -> dict[str, str]:
    """The attributes of a well-formed CloudEvent carrying ``event`` (or a random like)."""
    event = event if event is not None else draw(likes)
    envelope = wire.new_envelope(
        event,
        source=draw(st.sampled_from(["/tests", "//pubsub/x", "/é/ü"]) | ids),
        event_id=draw(ids),
        time=draw(recent | moments),
        correlation_id=draw(st.none() | ids),
        traceparent=draw(st.none() | texts | st.just(f"00-{'a' * 32}-{'b' * 16}-01")),
    )
    return wire.encode(event, envelope)[1]


ATTRIBUTE_NAMES = [
    wire.ATTR_ID,
    wire.ATTR_TYPE,
    wire.ATTR_SOURCE,
    wire.ATTR_TIME,
    wire.ATTR_SUBJECT,
    wire.ATTR_SPECVERSION,
    wire.ATTR_CONTENT_TYPE,
    wire.ATTR_CORRELATION,
    wire.ATTR_TRACEPARENT,
    wire.ATTR_TRACESTATE,
]
ATTRIBUTE_VALUES = texts | st.sampled_from(
    [
        "",
        "post.liked.v1",
        "user.updated.v1",
        "order.dispatched.v1",
        "post.shared.v1",
        "application/xml",
        "application/json; charset=utf-8",
        "0.3",
        "2.0",
        "1",
        "not a time",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-01-31t12:00:00z",
        "é" * 512,  # 1,024 bytes: Pub/Sub's largest value
        "x" * 5000,
    ]
)


@st.composite
def attribute_maps(draw: st.DrawFn) -> dict[str, str]:
    """A well-formed envelope with some attributes dropped, changed or added; or any map."""
    if draw(st.booleans()):
        return draw(st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES) | texts, ATTRIBUTE_VALUES))
    attributes = draw(envelopes())
    for name in draw(st.lists(st.sampled_from(ATTRIBUTE_NAMES), max_size=3)):
        if draw(st.booleans()):
            attributes.pop(name, None)
        else:
            attributes[name] = draw(ATTRIBUTE_VALUES)
    attributes.update(draw(st.dictionaries(texts, texts, max_size=3)))
    return attributes


event_data = (
    likes.map(lambda e: e.model_dump_json().encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.sampled_from(list(PostLiked.model_fields)), json_values).map(
        lambda v: json.dumps(v).encode()
    )
    | adversarial_json
    | st.binary(max_size=64)
)

# --- strategies: HTTP requests ---------------------------------------------------------------


@st.composite
def push_messages(draw: st.DrawFn) -> Any:
    """The ``message`` of a push body: mostly well-formed, each field possibly wrong."""
    data = draw(event_data)
    message: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "attributes": draw(attribute_maps()),
        "messageId": draw(ids),
        "publishTime": draw(st.sampled_from(["2026-01-31T12:00:01.123456789Z", ""]) | texts),
    }
    if draw(st.booleans()):
        message["orderingKey"] = draw(texts)
    wrong: dict[str, st.SearchStrategy[Any]] = {
        "data": json_values | st.sampled_from(["not base64!", "YQ", "YQ==\n", "@@@@"]),
        "attributes": json_values | st.dictionaries(texts, json_values, max_size=3),
        "messageId": json_values,
        "message_id": json_values,
        "publishTime": json_values,
        "publish_time": json_values,
        "orderingKey": json_values,
    }
    broken = st.lists(st.sampled_from(sorted(wrong)), min_size=1, max_size=2, unique=True)
    for field in sometimes(draw, [], broken, one_in=3):
        if draw(st.booleans()):
            message.pop(field, None)
        else:
            message[field] = draw(wrong[field])
    return sometimes(draw, message, json_values, one_in=10)


ODD_ATTEMPTS = ["2", "007", " 1", "٣", "²"]  # str.isdigit() takes the last two


@st.composite
def push_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"message": draw(push_messages())}
    if draw(st.booleans()):
        body["subscription"] = draw(
            st.sampled_from(
                [f"projects/p/subscriptions/{SUBSCRIPTION}", "projects/p/subscriptions/eventarc-x"]
            )
            | json_values
        )
    if draw(st.sampled_from([True, True, False])):
        body["deliveryAttempt"] = draw(
            st.integers(-5, 10**30) | st.sampled_from(ODD_ATTEMPTS) | json_values
        )
    return body


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
TOPIC_SOURCE = "//pubsub.googleapis.com/projects/p/topics/post-liked"


def sometimes(draw: st.DrawFn, usual: Any, odd: st.SearchStrategy[Any], one_in: int = 5) -> Any:
    """``usual`` most of the time; one draw in ``one_in`` something from ``odd``."""
    odd_one = draw(st.sampled_from([False] * (one_in - 1) + [True]))  # uniform, unlike integers
    return draw(odd) if odd_one else usual


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """One HTTP request in one of the three shapes of shared.push, or in none of them."""
    body: Any = sometimes(draw, draw(push_bodies()), json_values)
    shape = draw(st.sampled_from(["push", "push", "binary", "structured", "raw"]))
    event_type = sometimes(draw, PUBSUB_EVENT_TYPE, header_text)
    source = sometimes(draw, TOPIC_SOURCE, header_text)
    headers = {"Content-Type": "application/json"}
    if shape == "binary":
        headers.update({"ce-type": event_type, "ce-source": source, "ce-id": "1"})
    elif shape == "structured":
        headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
        envelope: dict[str, Any] = {"type": event_type, "source": source, "data": body}
        body = sometimes(draw, envelope, json_values)
    elif shape == "raw":
        headers["Content-Type"] = draw(header_text)
        return headers, draw(st.binary(max_size=128) | adversarial_json)
    return headers, json.dumps(body).encode()


def carries_message(headers: dict[str, str], body: bytes) -> bool:
    """Whether a request carries a Pub/Sub message as GCP would send it (shared.push's shapes).

    Written from the three shapes, not from the parser: a message object with a non-empty
    string ``messageId``, base64 ``data`` (or none) and string attributes (or none).
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return False
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-type", "").split(";")[0].strip() == "application/cloudevents+json":
        if not isinstance(payload, dict) or payload.get("type") != PUBSUB_EVENT_TYPE:
            return False
        payload = payload.get("data")
    elif "ce-type" in lower and lower["ce-type"] != PUBSUB_EVENT_TYPE:
        return False
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, dict):
        return False
    message_id = message.get("messageId") or message.get("message_id")
    data = message.get("data")
    attributes = message.get("attributes")
    return (
        isinstance(message_id, str)
        and bool(message_id)
        and (data in (None, "") or (isinstance(data, str) and _is_base64(data)))
        and (
            attributes is None
            or (
                isinstance(attributes, dict)
                and all(isinstance(v, str) for v in attributes.values())
            )
        )
    )


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


# --- the HTTP endpoint, served by functions-framework ----------------------------------------

FUNCTION_SOURCE = '''
"""A consumer whose handler never fails: any 5xx would be the runtime's own."""

import functions_framework

from shared import Delivery, consumer
from shared.system.events import PostLiked
from shared.system.topology import TOPOLOGY
from shared.testing import RecordingSink


class Sink(RecordingSink):
    def close(self) -> None:
        pass


app = consumer(TOPOLOGY, "timeline_enrichment")
app.dead_letters = SINK = Sink()  # no Pub/Sub: dead letters are recorded
CALLS: list[str] = []


@functions_framework.http
@app.handler
def fuzz_target(event: PostLiked, delivery: Delivery) -> None:
    CALLS.append(delivery.event_key)
'''


class Records(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Endpoint:
    """The function's test client, its recording sink and handler calls, and its log lines."""

    def __init__(self, client: Any, module: Any, records: Records) -> None:
        self.client = client
        self.sink: RecordingSink = module.SINK
        self.calls: list[str] = module.CALLS
        self.records = records

    def outcomes(self) -> list[dict[str, Any]]:
        """The fields of each ``<status> <type>`` line the runtime wrote, one per message."""
        return [
            r.fields  # type: ignore[attr-defined]
            for r in self.records.records
            if isinstance(getattr(r, "fields", None), dict) and "status" in r.fields  # type: ignore[attr-defined]
        ]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    from functions_framework import create_app

    folder = tmp_path_factory.mktemp("fuzz_function")
    (folder / "main.py").write_text(textwrap.dedent(FUNCTION_SOURCE))
    records = Records()
    consumer_log = logging.getLogger("pubsub_kit.consumer")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUBSUB_KIT_STORE", f"sqlite:///{folder / 'state.db'}")
        env.delenv("K_SERVICE", raising=False)
        app = create_app(target="fuzz_target", source=str(folder / "main.py"))
        app.config["PROPAGATE_EXCEPTIONS"] = True  # an exception fails the test, not a 500
        module = sys.modules["main"]
        consumer_log.addHandler(records)
        try:
            yield Endpoint(app.test_client(), module, records)
        finally:
            consumer_log.removeHandler(records)
            module.app.close()


@FUZZ
@given(request=requests())
# What this property found once; kept so that every run tries them.
@example(request=({}, b'{"message": {"messageId": "1", "data": [null]}}'))
@example(request=({}, b'{"message": {"messageId": "1"}, "deliveryAttempt": "\\u00b2"}'))
def test_the_http_endpoint_answers_400_or_an_outcome_and_never_raises(endpoint, request) -> None:
    headers, body = request
    endpoint.records.records.clear()
    letters, calls = len(endpoint.sink.sent), len(endpoint.calls)
    response = endpoint.client.post("/", data=body, headers=headers)
    status = response.status_code
    if status == 400:
        assert not carries_message(headers, body), response.data
        assert response.data.startswith(b"bad request: ")
        assert endpoint.outcomes() == []
        return
    # A handler that never fails: every message it does not take must be dead-lettered, acked.
    assert status == 204, (status, response.data)
    [line] = endpoint.outcomes()
    assert line["status"] in {outcome.value for outcome in ACKED}, line
    new_letters = endpoint.sink.sent[letters:]
    if line["status"] == "dead_lettered":
        [letter] = new_letters
        assert letter.reason and letter.reason == line["reason"]
        assert letter.subscription == SUBSCRIPTION
    else:
        assert new_letters == []
    assert len(endpoint.calls) - calls == (line["status"] == "handled")


# --- the pipeline, through the harness -------------------------------------------------------

HARNESSES: dict[str, HandlerHarness] = {}


def harness(consumer: str) -> HandlerHarness:
    """One harness per consumer, with a handler that never fails (built once per module)."""
    if consumer not in HARNESSES:
        HARNESSES[consumer] = HandlerHarness(TOPOLOGY, consumer, lambda event: None)
    return HARNESSES[consumer]


CONSUMERS = sorted(TOPOLOGY.consumers)


@FUZZ
@given(
    consumer=st.sampled_from(CONSUMERS),
    data=event_data,
    attributes=attribute_maps(),
    attempt=st.integers(1, 100),
)
def test_any_message_ends_in_an_acked_outcome_and_is_dead_lettered_with_a_reason(
    consumer, data, attributes, attempt
) -> None:
    h = harness(consumer)
    before = len(h.dead_letters)
    result = h.deliver_raw(data, attributes, attempt=attempt)
    # RETRY and BUSY come only from a handler's errors or another instance: neither is here.
    assert result.outcome in ACKED, result
    letters = h.dead_letters[before:]
    if result.outcome is Outcome.DEAD_LETTERED:
        assert result.reason, result
        assert [letter.reason for letter in letters] == [result.reason]
    else:
        assert letters == []


class Unexpected(Exception):
    """Not one of the toolkit's errors."""


failures = st.one_of(
    st.builds(RetryableError, texts),
    st.builds(PermanentError, texts),
    st.builds(Unexpected, texts),
    st.builds(KeyError, texts),
    st.builds(ValueError, texts),
    st.just(RecursionError()),
)


@FUZZ
@given(event=likes, failure=st.none() | failures, attempt=st.integers(1, 100))
def test_how_the_handler_ends_decides_the_outcome(event, failure, attempt) -> None:
    def handler(e: PostLiked) -> None:
        if failure is not None:
            raise failure

    h = HandlerHarness(TOPOLOGY, "timeline_enrichment", handler)
    result = h.deliver(event, attempt=attempt, time=datetime.now(UTC))
    if failure is None:
        assert result.outcome is Outcome.HANDLED
    elif isinstance(failure, PermanentError):
        assert result.outcome is Outcome.DEAD_LETTERED, result
        assert result.reason == f"PermanentError: {failure.reason}"
        assert [letter.reason for letter in h.dead_letters] == [result.reason]
    else:
        assert result.outcome is Outcome.RETRY, result
        expected = failure.reason if isinstance(failure, RetryableError) else type(failure).__name__
        assert result.reason == expected, result
        assert h.dead_letters == []


# --- sensitive values never leak -------------------------------------------------------------

secrets = st.builds(lambda pre, post: f"{pre}{CANARY}{post}", texts, texts)
SENSITIVE_KEYS = ["email", "Email", "EMAIL", "phone", "address", "ADDRESS"]
harmless_keys = st.sampled_from(["name", "bio", "avatar", "locale", "x"])
harmless = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(harmless_keys, inner, max_size=3),
    max_leaves=8,
)
# Anything, as long as the canary sits only in places a sensitive key or field covers.
secret_values = st.recursive(
    secrets | harmless,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(secrets | harmless_keys, inner, max_size=3)
    ),
    max_leaves=8,
)
covered = st.recursive(
    harmless,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(harmless_keys, inner, max_size=3)
        | st.dictionaries(st.sampled_from(SENSITIVE_KEYS), secret_values, min_size=1, max_size=2)
    ),
    max_leaves=8,
)


@st.composite
def updates(draw: st.DrawFn) -> UserUpdated:
    """A UserUpdated with the canary in ``email`` and under sensitive keys, at any depth."""
    changes = draw(
        st.dictionaries(
            st.sampled_from(SENSITIVE_KEYS),
            st.builds(FieldChange, old=secret_values, new=secret_values),
            max_size=3,
        )
    )
    changes.update(
        draw(
            st.dictionaries(
                harmless_keys, st.builds(FieldChange, old=covered, new=covered), max_size=2
            )
        )
    )
    return UserUpdated(
        user_id=draw(ids.filter(lambda s: CANARY not in s)),
        changed_by=draw(ids.filter(lambda s: CANARY not in s)),
        email=draw(st.none() | secrets),
        changes=changes,
    )


invalid_updates = st.fixed_dictionaries(
    {},
    optional={
        "user_id": json_values | secrets,
        "changed_by": json_values,
        "email": json_values | secrets | st.dictionaries(secrets, secrets, min_size=1),
        "changes": json_values
        | st.dictionaries(secrets | st.sampled_from(SENSITIVE_KEYS), json_values | secret_values)
        | st.dictionaries(
            st.sampled_from(SENSITIVE_KEYS),
            st.dictionaries(secrets | st.sampled_from(["old", "new"]), secret_values),
        ),
        CANARY: json_values,  # an unknown field named by the secret itself
    },
).map(lambda d: {**d, **({} if "user_id" in d else {"user_id": 5})})  # never valid


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured record, rendered with its extra fields, that contains the canary."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if CANARY in r.getMessage() or CANARY in repr(vars(r))
    ]


@FUZZ
@given(event=updates(), attempt=st.integers(1, 10))
def test_sensitive_values_of_a_valid_event_reach_no_log_and_no_redacted_output(
    event, attempt, caplog
) -> None:
    assert CANARY not in json.dumps(event.redacted())
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        h = HandlerHarness(TOPOLOGY, "audit_log", audit_like_handler)
        result = h.deliver(event, attempt=attempt, time=datetime.now(UTC))
        assert result.outcome is Outcome.HANDLED, result
        # A handler that fails with a sentence of its own still leaks nothing of the event's.
        h = HandlerHarness(TOPOLOGY, "audit_log", refusing_handler)
        result = h.deliver(event, attempt=attempt, time=datetime.now(UTC))
        assert result.outcome is Outcome.RETRY, result
    assert leaks(caplog) == []


def audit_like_handler(event: Event) -> None:
    logging.getLogger("fuzz.audit").info("recorded", extra={"fields": event.redacted()})


def refusing_handler(event: Event) -> None:
    raise RuntimeError(f"cannot handle {event.event_type}")


@FUZZ
@given(data=invalid_updates, attempt=st.integers(1, 10))
def test_sensitive_values_in_invalid_data_reach_no_reason_error_or_log(
    data, attempt, caplog
) -> None:
    with pytest.raises(EventValidationError) as error:
        TOPOLOGY.registry.parse(UserUpdated.event_type, data)
    assert CANARY not in str(error.value)
    assert CANARY not in repr(error.value.fields)
    with pytest.raises(EventValidationError) as error:
        TOPOLOGY.registry.parse(UserUpdated.event_type, json.dumps(data))
    assert CANARY not in str(error.value)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        h = harness("audit_log")
        attributes = {
            wire.ATTR_ID: "e-1",
            wire.ATTR_TYPE: UserUpdated.event_type,
            wire.ATTR_SOURCE: "/tests",
        }
        before = len(h.dead_letters)
        result = h.deliver_raw(json.dumps(data).encode(), attributes, attempt=attempt)
        assert result.outcome is Outcome.DEAD_LETTERED, result
    assert CANARY not in (result.reason or "")
    assert all(CANARY not in letter.reason for letter in h.dead_letters[before:])
    assert leaks(caplog) == []


# --- the CLI: every command, with Pub/Sub down ------------------------------------------------
#
# Every command of the parser is fuzzed (new ones are picked up from it), in process, in a project
# of its own under a temporary folder, with the emulators' variables pointing at a port where
# nothing listens: a command that talks to Pub/Sub must then fail within seconds with a sentence,
# so even valid arguments end quickly. PUBSUB_KIT_DEBUG is set, so the last-resort handler (an
# exception no command anticipated) would print a traceback, and fail the property.

TOPOLOGY_SPECS = [
    "shared.system.topology:TOPOLOGY",
    "shared.system.topology:NOPE",
    "shared.system.events:PostLiked",
    "no_such_module_for_fuzzing:TOPOLOGY",
    "shared.system.topology",
    ".system.topology:TOPOLOGY",
    ":TOPOLOGY",
    "",
]
json_texts = json_values.map(json.dumps) | adversarial_json.map(
    lambda b: b.decode("utf-8", "replace")
)
numbers = st.integers(-(10**6), 10**6).map(str) | st.sampled_from(
    ["-0", "0", "-5", "1e3", "nan", "inf", "-inf", "", "x", "1.5", "8090", "65536"]
)
tokens = texts.filter(lambda t: not t.startswith("-")) | numbers
# Commands that start or change things outside the folder they are given, fuzzed only where
# they are safe: `emulator start|stop` would run real emulators; `new consumer` edits the
# topology's module (here, the checkout's).
UNSAFE = {("emulator", "start"), ("emulator", "stop"), ("new", "consumer")}
MAX_SECONDS = 30  # per example; a command that hangs fails the property instead of the run


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
    for action in subcommands:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


PARSER = build_parser()
GLOBAL_OPTIONS = [a for a in PARSER._actions if a.option_strings and a.dest != "help"]
LEAVES = {path: sub for path, sub in _leaves(PARSER) if path[:2] not in UNSAFE}


def values(folder: Path, action: argparse.Action) -> st.SearchStrategy[str]:
    """A value for ``action``: one of its choices now and then, else anything."""
    paths = st.sampled_from(["out.json", "dir", "file", "file/under", "", "project"]).map(
        lambda name: str(folder / name)
    )
    anything = tokens | json_texts | paths
    if action.choices:
        return st.sampled_from(sorted(map(str, action.choices))) | anything
    return anything


@st.composite
def command_args(draw: st.DrawFn, folder: Path) -> list[str]:
    """A command of the parser with its positionals and some of its options, mostly nonsense."""
    path = draw(st.sampled_from(sorted(LEAVES)))
    parser = LEAVES[path]
    argv = list(path)
    for action in parser._actions:
        if action.option_strings or action.dest == "help":
            continue
        if path[:2] == ("new", "project"):  # DIR: only under the folder, never the checkout
            argv.append(str(folder / "new" / draw(st.text("abc-_.", min_size=1, max_size=8))))
        elif draw(st.integers(0, 9)):  # leave a positional out now and then
            argv.append(draw(values(folder, action)))
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    for action in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        argv.append(draw(st.sampled_from(action.option_strings)))
        if action.nargs != 0:
            argv.append(draw(values(folder, action)))
    return argv


def publish_args(draw: st.DrawFn, folder: Path) -> list[str]:
    event_type = draw(st.sampled_from(TOPOLOGY.registry.types) | texts | st.just(""))
    argv = ["publish", event_type, draw(json_texts | tokens)]
    for flag in draw(st.lists(st.sampled_from(["--ordering-key", "--correlation-id"]))):
        argv += [flag, draw(tokens)]
    return argv


def dlq_args(draw: st.DrawFn, folder: Path) -> list[str]:
    subscription = draw(st.sampled_from(sorted(TOPOLOGY.subscriptions)) | tokens)
    argv = ["dlq", draw(st.sampled_from(["inspect", "replay", "list", "purge"])), subscription]
    if draw(st.booleans()):
        argv += [draw(st.sampled_from(["--max", "--limit"])), draw(numbers)]
    return argv


def topology_args(draw: st.DrawFn, folder: Path) -> list[str]:
    argv = ["topology", draw(st.sampled_from(["export", "show", "import", ""]))]
    if draw(st.booleans()):
        argv.append("--terraform")
    if draw(st.booleans()):
        name = draw(st.sampled_from(["out.json", "dir", "", "file", "file/under"]))
        argv += ["--output", str(folder / name)]
    if draw(st.booleans()):
        argv.append("--check")
    return argv


def schema_args(draw: st.DrawFn, folder: Path) -> list[str]:
    name = draw(st.sampled_from(["c", "dir", "file", "file/under"]))
    argv = ["schema", "--output-dir", str(folder / name)]
    if draw(st.booleans()):
        argv.append("--check")
    return argv


def numbers_args(draw: st.DrawFn, folder: Path) -> list[str]:
    """Every numeric option of dev and demo, given numbers of every kind."""
    command = draw(st.sampled_from(["dev", "demo"]))
    options = ["--port-base"] + (["--timeout"] if command == "demo" else [])
    argv = [command]
    for option in draw(st.lists(st.sampled_from(options), min_size=1, max_size=2)):
        argv += [option, draw(numbers)]
    return argv


# Arguments written for a command's meaning, beside the ones drawn from the parser for all.
COMMANDS: dict[str, Callable[[st.DrawFn, Path], list[str]]] = {
    "publish": publish_args,
    "dlq": dlq_args,
    "topology": topology_args,
    "schema": schema_args,
    "dev/demo numbers": numbers_args,
}


@st.composite
def argvs(draw: st.DrawFn, folder: Path) -> list[str]:
    argv: list[str] = []
    # A global option in one example of three, so that most reach their command.
    for option in draw(st.lists(st.sampled_from(GLOBAL_OPTIONS), max_size=2)) * (
        draw(st.integers(0, 2)) == 0
    ):
        argv.append(option.option_strings[-1])
        if option.dest == "topology":
            argv.append(draw(st.sampled_from(TOPOLOGY_SPECS)))
        else:
            folders = st.sampled_from(["project", "project", "dir", "file", "nowhere"])
            argv.append(draw(folders.map(lambda name: str(folder / name)) | tokens))
    if draw(st.booleans()):
        argv += draw(command_args(folder))
    else:
        argv += COMMANDS[draw(st.sampled_from(sorted(COMMANDS)))](draw, folder)
    extra = st.sampled_from(["--bogus", "--max", "--check", "-x", "--", "--project"]) | tokens
    return argv + draw(st.lists(extra, max_size=2))


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with a project of its own (``project/``), a folder and a file, as the working
    directory; the environment of a machine whose emulators are down and has no project set."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "dir").mkdir()
    (folder / "file").write_text("a file, not a folder\n")
    project = folder / "project"
    (project / "functions").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[tool.pubsub-kit]\ntopology = "shared.system.topology:TOPOLOGY"\n'
    )
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{sock.getsockname()[1]}"
    with pytest.MonkeyPatch.context() as env:
        env.chdir(folder)  # a relative path drawn (`--output-dir 1`) is written here
        for name in ("PUBSUB_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "K_SERVICE"):
            env.delenv(name, raising=False)
        env.delenv("PUBSUB_KIT_TOPOLOGY", raising=False)
        env.setenv("PUBSUB_EMULATOR_HOST", down)
        env.setenv("FIRESTORE_EMULATOR_HOST", down)
        env.setenv("PUBSUB_KIT_ROOT", str(project))
        env.setenv("PUBSUB_KIT_STORE", f"sqlite:///{folder / 'state.db'}")
        env.setenv("EMULATOR_STATE_DIR", str(folder / "emulator"))
        env.setenv("PUBSUB_KIT_DEBUG", "1")  # the last resort prints a traceback: a failure
        env.setenv("NO_GCE_CHECK", "True")
        yield folder


@FUZZ
@given(data=st.data())
def test_the_cli_returns_a_status_or_exits_2_with_a_message(cli_folder, data, capsys) -> None:
    """Any arguments to any command: a status (with a sentence when it is not 0), or argparse's
    exit 2 with a message; never a traceback, never a hang."""
    argv = data.draw(argvs(cli_folder))
    capsys.readouterr()
    status = run_cli(argv)
    out = capsys.readouterr()
    assert "Traceback (most recent call last)" not in out.err, (argv, out.err)
    if isinstance(status, SystemExit):  # argparse refused the arguments and said why, or --help
        assert status.code in (0, 2), argv
        assert "error:" in out.err if status.code == 2 else "usage:" in out.out, argv
        return
    assert isinstance(status, int) and 0 <= status < 256, (argv, status)
    if status != 0:  # and it says why
        assert (out.err + out.out).strip(), argv


@pytest.mark.parametrize("check", [[], ["--check"]])
def test_the_cli_says_why_when_the_export_output_is_a_folder(cli_folder, check, capsys) -> None:
    """Found by the property above; kept so that every run tries it."""
    argv = ["topology", "export", "--terraform", "--output", str(cli_folder / "dir"), *check]
    assert run_cli(argv) == 1
    assert "dir is a folder" in capsys.readouterr().err


def test_every_command_of_the_parser_is_fuzzed() -> None:
    """A new command is fuzzed as soon as it is in the parser, unless it is listed as unsafe."""
    fuzzed = {path[0] for path in LEAVES}
    commands = {path[0] for path, _ in _leaves(PARSER)}
    assert fuzzed == commands, commands - fuzzed
    for command in ("tail", "audit", "dlq", "publish", "emulator", "new", "provision", "dev"):
        if command in commands:
            assert command in fuzzed


class _Hung(BaseException):
    """Raised in a command that outlived MAX_SECONDS; not an Exception, so main() lets it out."""


def run_cli(argv: list[str]) -> int | SystemExit:
    """``main(argv)``, with the environment as it was afterwards and a bound on its time."""

    def hung(signum: int, frame: object) -> None:
        raise _Hung(f"pubsub-kit {' '.join(argv)} ran for more than {MAX_SECONDS} s")

    saved = dict(os.environ)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(MAX_SECONDS)
    try:
        return main(argv)
    except SystemExit as exc:
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.environ.clear()
        os.environ.update(saved)
