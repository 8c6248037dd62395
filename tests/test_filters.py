"""Subscription filters: parsed at declaration, applied by the runtime as Pub/Sub would."""

from __future__ import annotations

import pytest

from shared import TopologyError
from shared.filters import compile_filter

QUOTE_IT = "; a KEY other than letters, digits, '-' and '_' is written as a \"string literal\""


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


def test_a_filter_may_be_256_bytes_long_and_no_longer() -> None:
    at_limit = 'attributes.k = "' + "v" * 239 + '"'
    assert len(at_limit) == 256
    assert compile_filter(at_limit)({"k": "v" * 239}) is True
    with pytest.raises(TopologyError) as info:
        compile_filter(at_limit + " ")
    assert str(info.value) == "filter is 257 bytes long in UTF-8; Pub/Sub allows 256 bytes"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('attributes.a = "1" & attributes:b', "cannot read from position 18: ' & attributes:b'"),
        (
            "attributes:a attributes:b",
            "expected AND, OR or the end of the filter, found 'attributes'",
        ),
        ("(attributes:a", "expected ')', found 'end of filter'"),
        ("attributes.a =", "expected a \"quoted string\", found 'end of filter'"),
        ('attributes = "x"', "expected ':', found '='"),
        ('attributes.a hasPrefix "x"', "expected = or != after attributes.a, found 'hasPrefix'"),
        ("attributes.a = priority", "expected a \"quoted string\", found 'priority'"),
        ('attributes. = "x"', f"expected attributes.KEY, found 'attributes.'{QUOTE_IT}"),
        (
            "NOT",
            "expected attributes.KEY, attributes:KEY, hasPrefix(...), NOT or '(', "
            "found 'end of filter'",
        ),
        ('hasPrefix attributes.a, "x")', "expected '(', found 'attributes.a'"),
        ('hasPrefix(attributes.a "x")', "expected ',', found '\"x\"'"),
        ('hasPrefix(attributes.a, "x"', "expected ')', found 'end of filter'"),
        ('hasPrefix(attributes., "x")', f"expected attributes.KEY, found 'attributes.'{QUOTE_IT}"),
        ('hasPrefix(message_data_x, "x")', "expected attributes.KEY, found 'message_data_x'"),
        ("hasPrefix(attributes.a, prefix)", "expected a \"quoted string\", found 'prefix'"),
        (
            "attributes:a AND attributes:b OR attributes:c",
            "expected AND (AND and OR cannot be mixed without parentheses), found 'OR'",
        ),
        (
            "attributes:a OR -attributes:b AND attributes:c",
            "expected OR (AND and OR cannot be mixed without parentheses), found 'AND'",
        ),
    ],
)
def test_a_malformed_filter_quotes_itself_and_says_what_was_expected(text, problem) -> None:
    with pytest.raises(TopologyError) as info:
        compile_filter(text)
    assert str(info.value) == f"filter {text!r}: {problem}"


# Pub/Sub writes a key with characters other than letters, digits, "-" and "_" as a string
# literal; backquotes are also seen. Both name the key without their quotes, in every form.
@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ('attributes."odd key" = "x"', {"odd key": "x"}, True),
        ('attributes."odd key" = "x"', {'"odd key"': "x"}, False),
        ('attributes."odd key" != "x"', {"odd key": "x"}, False),
        ('attributes."odd key" != "x"', {"odd key": "y"}, True),
        ('attributes:"odd key"', {"odd key": "x"}, True),
        ('attributes:"odd key"', {'"odd key"': "x"}, False),
        ('hasPrefix(attributes."odd key", "p")', {"odd key": "pq"}, True),
        ('hasPrefix(attributes."odd key", "p")', {'"odd key"': "pq"}, False),
        ('attributes."iana.org/language_tag" = "en"', {"iana.org/language_tag": "en"}, True),
        ('attributes."a\\"b" = "x"', {'a"b': "x"}, True),
        ('attributes:"\\u307F\\u3093\\u306A"', {"\u307f\u3093\u306a": "x"}, True),
        ('attributes.`my-key` = "x"', {"my-key": "x"}, True),
        ('attributes.`my-key` = "x"', {"`my-key`": "x"}, False),
        ('attributes.`my key` != "x"', {"my key": "x"}, False),
        ('attributes.`my key` != "x"', {"my key": "y"}, True),
        ("attributes:`my key`", {"my key": ""}, True),
        ('hasPrefix(attributes.`my key`, "p")', {"my key": "pq"}, True),
        ('hasPrefix(attributes.`my key`, "p")', {"`my key`": "pq"}, False),
        ('NOT attributes."odd key" = "x"', {"odd key": "x"}, False),
        ("-attributes:`my key`", {}, True),
        (
            '(attributes."a b" = "1" OR attributes.`c d` = "2") AND NOT attributes:"e f"',
            {"c d": "2"},
            True,
        ),
        (
            '(attributes."a b" = "1" OR attributes.`c d` = "2") AND NOT attributes:"e f"',
            {"a b": "1", "e f": ""},
            False,
        ),
        ('attributes:"" OR attributes:"AND"', {"AND": ""}, True),
    ],
)
def test_quoted_keys_name_the_key_without_its_quotes(text, attributes, expected) -> None:
    assert compile_filter(text)(attributes) is expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"a\\"b"', 'a"b'),
        ('"a\\\\b"', "a\\b"),
        ('"a\\\\"', "a\\"),
        ('"\\a\\b\\f\\n\\r\\t\\v"', "\a\b\f\n\r\t\v"),
        ('"\\\'\\?\\`"', "'?`"),
        ('"\\x41\\x7e"', "A~"),
        ('"\\u00e9\\u00E9"', "\u00e9\u00e9"),
        ('"\\U0001F600"', "\U0001f600"),
        ('"\\U0010FFFF"', "\U0010ffff"),
        ('"\\uD7FF\\uE000"', "\ud7ff\ue000"),
        ('"\\101\\0121\\377"', "A\n1\u00ff"),
        ('"a\\\\nb"', "a\\nb"),
    ],
)
def test_string_escapes_are_read_as_pubsub_reads_them(text, value) -> None:
    predicate = compile_filter(f"attributes.k = {text}")
    assert predicate({"k": value}) is True
    assert predicate({"k": text[1:-1]}) is False


@pytest.mark.parametrize(
    ("escape", "found"),
    [
        ("\\q", "\\q"),
        ("\\x4", "\\x"),
        ("\\u00e", "\\u"),
        ("\\U0001F60", "\\U"),
        ("\\12", "\\1"),
        ("\\400", "\\4"),
        ("\\8", "\\8"),
        ("\\U00110000", "\\U00110000"),
        ("\\uD800", "\\uD800"),
        ("\\uDFFF", "\\uDFFF"),
    ],
)
def test_an_unknown_escape_is_refused(escape, found) -> None:
    text = f'attributes.k = "{escape}"'
    with pytest.raises(TopologyError) as info:
        compile_filter(text)
    assert str(info.value) == (
        f"filter {text!r}: expected an escape \\\" \\\\ \\' \\? \\` \\a \\b \\f \\n \\r \\t \\v "
        f"\\xHH \\uHHHH \\UHHHHHHHH or \\ooo (octal) in a string, found {found!r}"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('attributes.a.b = "x"', f"expected attributes.KEY, found 'attributes.a.b'{QUOTE_IT}"),
        (
            'hasPrefix(attributes.a.b, "x")',
            f"expected attributes.KEY, found 'attributes.a.b'{QUOTE_IT}",
        ),
        ('attributes. "k" = "x"', f"expected attributes.KEY, found 'attributes.'{QUOTE_IT}"),
        ("attributes:a.b", f"expected attributes:KEY, found 'attributes:a.b'{QUOTE_IT}"),
        ("attributes:(", f"expected attributes:KEY, found 'attributes:('{QUOTE_IT}"),
        ("attributes:", f"expected attributes:KEY, found 'attributes:'{QUOTE_IT}"),
        ('attributes."k" = x', "expected a \"quoted string\", found 'x'"),
        ('attributes."k" < "x"', "cannot read from position 14: ' < \"x\"'"),
        ('attributes.`k` "x"', "expected = or != after attributes.`k`, found '\"x\"'"),
        ('attributes:"k', "cannot read from position 11: '\"k'"),
        ("attributes:``", "cannot read from position 11: '``'"),
    ],
)
def test_a_malformed_key_says_how_to_write_it(text, problem) -> None:
    with pytest.raises(TopologyError) as info:
        compile_filter(text)
    assert str(info.value) == f"filter {text!r}: {problem}"


def test_the_limit_is_256_bytes_of_utf8_not_256_characters() -> None:
    # Pub/Sub: "The maximum length of a filter is 256 bytes."
    at_limit = 'attributes.k = "' + "é" * 119 + "v" + '"'  # 17 + 238 + 1 bytes
    assert len(at_limit.encode("utf-8")) == 256
    assert compile_filter(at_limit)({"k": "é" * 119 + "v"}) is True
    over = 'attributes.k = "' + "é" * 120 + '"'
    assert len(over) == 137
    with pytest.raises(TopologyError) as info:
        compile_filter(over)
    assert str(info.value) == "filter is 257 bytes long in UTF-8; Pub/Sub allows 256 bytes"
