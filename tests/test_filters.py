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
        ('(attributes.a = "1" OR attributes.b = "2") AND NOT attributes:c', {"a": "1", "c": "x"}, False),
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
        ('(attributes:a', "expected '\\)'"),
        ("x" * 300, "256"),
    ],
)
def test_invalid_filters_say_what_was_expected(text, message) -> None:
    with pytest.raises(TopologyError, match=message):
        compile_filter(text)
