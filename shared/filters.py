"""Pub/Sub subscription filters: parse them at declaration, evaluate them in the runtime.

The emulator accepts a filter and silently delivers every message, so the consumer runtime
applies the declared filter itself; that way a filter behaves the same locally and on GCP.
Supported: the attribute part of the Pub/Sub filter language, which is all it has:

    attributes.KEY = "v"    attributes.KEY != "v"    attributes:KEY
    hasPrefix(attributes.KEY, "p")    NOT x    -x    x AND y    x OR y    ( ... )

A KEY of letters, digits, ``-`` and ``_`` is written as it is, any other KEY as a string literal
or between backquotes; the quotes are not part of the KEY:

    attributes."iana.org/language_tag" = "en"    attributes:`my key`

String literals read the escapes \\" \\\\ \\n (and the rest of C's), \\xHH, \\uHHHH,
\\UHHHHHHHH and octal \\ooo. As in Pub/Sub, AND and OR cannot be mixed without parentheses,
and a filter is at most 256 bytes of UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from shared.errors import TopologyError

Predicate = Callable[[Mapping[str, str]], bool]

MAX_BYTES = 256  # Pub/Sub's limit on the length of a filter, in bytes of UTF-8

_STRING = r'"(?:[^"\\]|\\.)*"'
_TOKEN = re.compile(
    rf"""\s*(
        attributes\.(?:{_STRING}|`[^`]+`)
      | {_STRING}
      | `[^`]+`
      | !=|=|:|\(|\)|,|-
      | [A-Za-z_][A-Za-z0-9_.\-]*
    )""",
    re.VERBOSE,
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-3][0-7]{2}|.)")
_SIMPLE_ESCAPES = dict(zip("\"'\\?`abfnrtv", "\"'\\?`\a\b\f\n\r\t\v", strict=True))
_ESCAPES_EXPECTED = (
    "an escape \\\" \\\\ \\' \\? \\` \\a \\b \\f \\n \\r \\t \\v "
    "\\xHH \\uHHHH \\UHHHHHHHH or \\ooo (octal) in a string"
)


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise TopologyError(f"filter {text!r}: cannot read from position {pos}: {text[pos:]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def error(self, problem: str) -> TopologyError:
        return TopologyError(f"filter {self.text!r}: {problem}")

    def fail(self, expected: str) -> TopologyError:
        return self.error(f"expected {expected}, found {self.peek() or 'end of filter'!r}")

    def peek(self) -> str:
        """The next token; "" at the end of the filter."""
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def advance(self) -> str:
        token = self.peek()
        self.i += 1
        return token

    def take(self, expected: str) -> None:
        if self.peek() != expected:
            raise self.fail(repr(expected))
        self.i += 1

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self.fail("an expression")
        predicate = self.expression()
        if self.peek():
            raise self.fail("AND, OR or the end of the filter")
        return predicate

    def expression(self) -> Predicate:
        terms = [self.unary()]
        joiner: str | None = None
        while self.peek() in ("AND", "OR"):
            if joiner is not None and self.peek() != joiner:
                raise self.fail(f"{joiner} (AND and OR cannot be mixed without parentheses)")
            joiner = self.advance()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        if joiner == "AND":
            return lambda attrs: all(t(attrs) for t in terms)
        return lambda attrs: any(t(attrs) for t in terms)

    def unary(self) -> Predicate:
        token = self.peek()
        if token in ("NOT", "-"):
            self.advance()
            inner = self.unary()
            return lambda attrs: not inner(attrs)
        if token == "(":
            self.advance()
            inner = self.expression()
            self.take(")")
            return inner
        if token == "hasPrefix":
            return self.has_prefix()
        if token == "attributes":
            return self.has_key()
        if token.startswith("attributes."):
            return self.comparison()
        raise self.fail("attributes.KEY, attributes:KEY, hasPrefix(...), NOT or '('")

    def has_prefix(self) -> Predicate:
        self.take("hasPrefix")
        self.take("(")
        key = self.attribute()
        self.take(",")
        prefix = self.string()
        self.take(")")
        return lambda attrs: key in attrs and attrs[key].startswith(prefix)

    def has_key(self) -> Predicate:
        self.take("attributes")
        self.take(":")
        key = self.key("attributes:", self.advance())
        return lambda attrs: key in attrs

    def comparison(self) -> Predicate:
        written = self.peek()
        key = self.attribute()
        op = self.peek()
        if op not in ("=", "!="):
            raise self.fail(f"= or != after {written}")
        self.advance()
        value = self.string()
        if op == "=":
            return lambda attrs: attrs.get(key) == value
        return lambda attrs: attrs.get(key) != value

    def attribute(self) -> str:
        """The KEY of the next token, which must be ``attributes.KEY``."""
        if not self.peek().startswith("attributes."):
            raise self.fail("attributes.KEY")
        return self.key("attributes.", self.advance().removeprefix("attributes."))

    def key(self, form: str, written: str) -> str:
        if written[:1] == '"':
            return self.unescape(written)
        if written[:1] == "`":
            return written[1:-1]  # no escapes between backquotes
        if _BARE_KEY.fullmatch(written):
            return written
        raise self.error(
            f"expected {form}KEY, found {form + written!r}; a KEY other than letters, digits, "
            "'-' and '_' is written as a \"string literal\""
        )

    def string(self) -> str:
        if self.peek()[:1] != '"':
            raise self.fail('a "quoted string"')
        return self.unescape(self.advance())

    def unescape(self, literal: str) -> str:
        """The value of a string literal token, quotes included."""
        return _ESCAPE.sub(self.escaped, literal[1:-1])

    def escaped(self, escape: re.Match[str]) -> str:
        code = escape.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if len(code) >= 3:  # \ooo, \xHH, \uHHHH or \UHHHHHHHH
            code_point = int(code, 8) if code[0].isdigit() else int(code[1:], 16)
            if code_point <= 0x10FFFF and not 0xD800 <= code_point <= 0xDFFF:
                return chr(code_point)
        raise self.error(f"expected {_ESCAPES_EXPECTED}, found {escape.group()!r}")


def compile_filter(text: str) -> Predicate:
    """Parse a Pub/Sub filter into a predicate over message attributes.

    Args:
        text: the filter, in Pub/Sub's filter language; at most 256 bytes of UTF-8.

    Returns:
        A predicate over a message's attributes: true when the filter lets the message through.

    Raises:
        TopologyError: the filter is not valid; the message says where and what was expected.

    Example:
        >>> wants_english = compile_filter('attributes."iana.org/language_tag" = "en"')
        >>> wants_english({"iana.org/language_tag": "en"})
        True
    """
    size = len(text.encode())  # str.encode() is UTF-8
    if size > MAX_BYTES:
        raise TopologyError(
            f"filter is {size} bytes long in UTF-8; Pub/Sub allows {MAX_BYTES} bytes"
        )
    return _Parser(text).parse()
