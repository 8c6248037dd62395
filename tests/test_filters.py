"""Subscription filters: parsed at declaration, applied by the runtime as Pub/Sub would."""

from __future__ import annotations

import pytest

from shared import TopologyError
from shared.filters import compile_filter


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ('attributes.ce-type = "post.liked.v1"', {"ce-type": "post.liked.v1"}, True),
        ('attributes.ce-type = "post.liked.v1"', {"ce-type": "post.liked.v2"}, False),
        ('attributes.ce-type != "post.liked.v1"', {}, True),
        ("attributes:priority", {"priority": ""}, True),
        ("attributes:priority", {}, False),
        ("NOT attributes:priority", {}, True),
        ("-attributes:priority", {"priority": "x"}, False),
        ('hasPrefix(attributes.ce-type, "order.")', {"ce-type": "order.dispatched.v1"}, True),
        ('hasPrefix(attributes.ce-type, "order.")', {}, False),
        ('attributes.a = "1" AND attributes.b = "2"', {"a": "1", "b": "2"}, True),
        ('attributes.a = "1" AND attributes.b = "2"', {"a": "1"}, False),
        ('attributes.a = "1" OR attributes.b = "2"', {"b": "2"}, True),
        (
            '(attributes.a = "1" OR attributes.b = "2") AND NOT attributes:c',
            {"a": "1", "c": "x"},
            False,
        ),
        ('attributes.q = "say \\"hi\\""', {"q": 'say "hi"'}, True),
    ],
)
def test_filters_match_like_pubsub(text, attributes, expected) -> None:
    assert compile_filter(text)(attributes) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected an expression"),
        ("attributes.a = b", "quoted string"),
        ('attributes.a = "1" AND attributes.b = "2" OR attributes:c', "cannot be mixed"),
        ('data = "x"', "expected attributes.KEY"),
        ("(attributes:a", "expected '\\)'"),
        ("x" * 300, "256"),
    ],
)
def test_invalid_filters_say_what_was_expected(text, message) -> None:
    with pytest.raises(TopologyError, match=message):
        compile_filter(text)


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ('attributes.a != "1"', {"a": "1"}, False),
        ('attributes.a != "1"', {"a": "2"}, True),
        ('attributes.a = ""', {"a": ""}, True),
        ('attributes.a = ""', {}, False),
        ('attributes.X-Priority = "high"', {"X-Priority": "high"}, True),
        ('hasPrefix(attributes.X-Region, "eu-")', {"X-Region": "eu-west1"}, True),
        ("attributes:`X-Cloud Trace`", {"X-Cloud Trace": ""}, True),
        ("attributes:`X-Cloud Trace`", {"X-Cloud": ""}, False),
    ],
)
def test_keys_and_values_are_compared_exactly(text, attributes, expected) -> None:
    assert compile_filter(text)(attributes) is expected


def test_a_filter_may_be_256_characters_long_and_no_longer() -> None:
    at_limit = 'attributes.k = "' + "v" * 239 + '"'
    assert len(at_limit) == 256
    assert compile_filter(at_limit)({"k": "v" * 239}) is True
    with pytest.raises(TopologyError) as info:
        compile_filter(at_limit + " ")
    assert str(info.value) == "filter is 257 characters long; Pub/Sub allows 256"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('attributes.a = "1" & attributes:b', "cannot read from position 18: ' & attributes:b'"),
        (
            "attributes:a attributes:b",
            "expected AND, OR or the end of the filter, found 'attributes'",
        ),
        ("(attributes:a", "expected ')', found 'end of filter'"),
        ("attributes.a =", "expected more input, found 'end of filter'"),
        ('attributes = "x"', "expected ':', found '='"),
        ('attributes.a hasPrefix "x"', "expected = or != after attributes.a"),
        ("attributes.a = priority", "expected a \"quoted string\", found 'priority'"),
        ('attributes. = "x"', "expected attributes.KEY, found 'attributes.'"),
        (
            "NOT",
            "expected attributes.KEY, attributes:KEY, hasPrefix(...), NOT or '(', "
            "found 'end of filter'",
        ),
        ('hasPrefix attributes.a, "x")', "expected '(', found 'attributes.a'"),
        ('hasPrefix(attributes.a "x")', "expected ',', found '\"x\"'"),
        ('hasPrefix(attributes.a, "x"', "expected ')', found 'end of filter'"),
        ('hasPrefix(attributes., "x")', "expected attributes.KEY, found 'attributes.'"),
        ('hasPrefix(message_data_x, "x")', "expected attributes.KEY, found 'message_data_x'"),
        ("hasPrefix(attributes.a, prefix)", "expected a \"quoted string\", found 'prefix'"),
    ],
)
def test_a_malformed_filter_quotes_itself_and_says_what_was_expected(text, problem) -> None:
    with pytest.raises(TopologyError) as info:
        compile_filter(text)
    assert str(info.value) == f"filter {text!r}: {problem}"
