"""Pub/Sub subscription filters: parse them at declaration, evaluate them in the runtime.

The emulator accepts a filter and silently delivers every message, so the consumer runtime
applies the declared filter itself; that way a filter behaves the same locally and on GCP.
Supported: the attribute part of the Pub/Sub filter language, which is all it has:

    attributes.KEY = "v"    attributes.KEY != "v"    attributes:KEY
    hasPrefix(attributes.KEY, "p")    NOT x    -x    x AND y    x OR y    ( ... )

As in Pub/Sub, AND and OR cannot be mixed without parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from shared.errors import TopologyError

Predicate = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|=|:|\(|\)|,|-)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*|`[^`]+`)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise TopologyError(f"filter {text!r}: cannot read from position {pos}: {text[pos:]!r}")
        tokens.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def fail(self, expected: str) -> TopologyError:
        found = self.tokens[self.i] if self.i < len(self.tokens) else "end of filter"
        return TopologyError(f"filter {self.text!r}: expected {expected}, found {found!r}")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise self.fail(repr(expected) if expected else "more input")
        self.i += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self.fail("an expression")
        predicate = self.expression()
        if self.peek() is not None:
            raise self.fail("AND, OR or the end of the filter")
        return predicate

    def expression(self) -> Predicate:
        terms = [self.unary()]
        joiner: str | None = None
        while self.peek() in ("AND", "OR"):
            word = self.take()
            if joiner is not None and word != joiner:
                raise TopologyError(
                    f"filter {self.text!r}: AND and OR cannot be mixed without parentheses"
                )
            joiner = word
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        if joiner == "AND":
            return lambda attrs: all(t(attrs) for t in terms)
        return lambda attrs: any(t(attrs) for t in terms)

    def unary(self) -> Predicate:
        if self.peek() in ("NOT", "-"):
            self.take()
            inner = self.unary()
            return lambda attrs: not inner(attrs)
        if self.peek() == "(":
            self.take("(")
            inner = self.expression()
            self.take(")")
            return inner
        if self.peek() == "hasPrefix":
            self.take()
            self.take("(")
            key = self.attribute()
            self.take(",")
            prefix = self.string()
            self.take(")")
            return lambda attrs: key in attrs and attrs[key].startswith(prefix)
        token = self.peek() or ""
        if token == "attributes" or token.startswith("attributes."):
            return self.comparison()
        raise self.fail("attributes.KEY, attributes:KEY, hasPrefix(...), NOT or '('")

    def attribute(self) -> str:
        token = self.take()
        if not token.startswith("attributes.") or len(token) <= len("attributes."):
            raise TopologyError(f"filter {self.text!r}: expected attributes.KEY, found {token!r}")
        return token[len("attributes.") :].strip("`")

    def comparison(self) -> Predicate:
        token = self.peek() or ""
        if token == "attributes":
            self.take()
            self.take(":")
            key = self.take().strip("`")
            return lambda attrs: key in attrs
        key = self.attribute()
        op = self.take()
        if op not in ("=", "!="):
            raise TopologyError(f"filter {self.text!r}: expected = or != after attributes.{key}")
        value = self.string()
        if op == "=":
            return lambda attrs: attrs.get(key) == value
        return lambda attrs: attrs.get(key) != value

    def string(self) -> str:
        token = self.take()
        if not (len(token) >= 2 and token[0] == token[-1] == '"'):
            raise TopologyError(
                f'filter {self.text!r}: expected a "quoted string", found {token!r}'
            )
        return re.sub(r"\\(.)", r"\1", token[1:-1])


def compile_filter(text: str) -> Predicate:
    """Parse a Pub/Sub filter into a predicate over message attributes.

    Raises:
        TopologyError: the filter is not valid; the message says where and what was expected.
    """
    if len(text) > 256:
        raise TopologyError(f"filter is {len(text)} characters long; Pub/Sub allows 256")
    return _Parser(text).parse()
