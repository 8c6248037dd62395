"""The rules of the gate: what kind of change was found, and what it says about it."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Sequence


class Rule(enum.Enum):
    """A kind of change, with what the gate says about it."""

    label: str
    breaking: bool
    phrase: str
    reason: str

    def __init__(self, label: str, breaking: bool, phrase: str, reason: str) -> None:
        self.label = label  # the rule's name, as reported
        self.breaking = breaking  # whether it fails the gate
        self.phrase = phrase  # what happened, with {subject}
        self.reason = reason  # why it is (not) breaking, with {type}

    FIELD_REMOVED = (
        "removed or renamed",
        True,
        "{subject} removed or renamed",
        "readers written for {type} need it",
    )
    """A field of the old contract is gone; a rename is a removal and an addition."""
    NEW_REQUIRED = (
        "new field is required",
        True,
        "{subject} added, and the new field is required",
        "producers written for {type} do not send it, so their events no longer fit",
    )
    """A field that old producers do not send is required."""
    NEW_OPTIONAL = (
        "new optional field",
        False,
        "{subject} added as a new optional field",
        "events without it still fit; upgrade consumers before producers send it",
    )
    """A field old events may leave out."""
    MADE_REQUIRED = (
        "optional made required",
        True,
        "{subject} optional made required",
        "producers written for {type} may leave it out",
    )
    """A field old events may leave out must now be sent."""
    MADE_OPTIONAL = (
        "required made optional",
        False,
        "{subject} required made optional",
        "every old event still fits; upgrade consumers before producers leave it out",
    )
    """A required field may now be left out."""
    TYPE_CHANGED = (
        "type changed",
        True,
        "{subject} type changed",
        "events valid for {type} may no longer fit, and readers expect the old type",
    )
    """A type the old contract allowed is no longer allowed."""
    TYPE_WIDENED = (
        "type widened",
        False,
        "{subject} type widened",
        "every old event still fits; upgrade consumers before producers send the new type",
    )
    """Every value of the old type is still valid (``null`` added, ``integer`` to ``number``)."""
    ENUM_NARROWED = (
        "enum narrowed",
        True,
        "{subject} enum narrowed",
        "producers written for {type} may still send the values it lost",
    )
    """An enum or ``Literal`` lost values (or a free value became an enum)."""
    ENUM_WIDENED = (
        "enum widened",
        False,
        "{subject} enum widened",
        "every old event still fits; upgrade consumers before producers send the new values",
    )
    """An enum or ``Literal`` gained values."""
    CONSTRAINT_TIGHTENED = (
        "constraint tightened",
        True,
        "{subject} constraint tightened",
        "events valid for {type} may no longer fit",
    )
    """A bound, pattern, format, uniqueness or closed object refuses values it accepted."""
    CONSTRAINT_RELAXED = (
        "constraint relaxed",
        False,
        "{subject} constraint relaxed",
        "every old event still fits; upgrade consumers before producers rely on it",
    )
    """A constraint was loosened or removed."""
    UNCHECKED = (
        "unchecked keyword changed",
        True,
        "{subject} unchecked keyword changed",
        "the gate does not compare this keyword, so it cannot tell whether old events still fit",
    )
    """A keyword the gate does not compare changed; assumed breaking."""
    ANNOTATION = (
        "annotation changed",
        False,
        "{subject} annotation changed",
        "annotations do not change which events are valid",
    )
    """A description, title, examples, default or other annotation changed."""
    SENSITIVITY = (
        "sensitivity changed",
        False,
        "{subject} sensitivity changed",
        "validation is unchanged; check that what reaches logs and the audit store is as meant",
    )
    """``Sensitive`` or ``SensitiveKeys`` markers changed: what is redacted, not what is valid."""
    RETIRED = (
        "retired",
        True,
        "event type retired",
        "consumers of {type} may still receive it from queued messages and dead-letter "
        "replays; keep its model until no producer sends it, or declare the retirement with "
        "--retire {type}",
    )
    """An event type of the contracts is no longer in the topology."""
    RETIRED_DECLARED = (
        "retired as declared",
        False,
        "event type retired as declared with --retire",
        "its producers and consumers are meant to be gone",
    )
    """The same, named with ``--retire``."""
    NEW_TYPE = (
        "new",
        False,
        "new event type",
        "no contract exists for it yet",
    )
    """An event type the contracts do not have yet."""


@dataclasses.dataclass(frozen=True)
class Change:
    """One classified difference between an event type's old and new contract.

    Attributes:
        event_type: the event type, e.g. ``post.liked.v1``.
        path: dotted path of the field (``changes.*.new``, ``tags[]``); ``""`` for the event.
        rule: which rule it falls under.
        detail: the specifics, e.g. ``maxLength 128 to 64`` (may be empty).
    """

    event_type: str
    path: str
    rule: Rule
    detail: str = ""

    @property
    def breaking(self) -> bool:
        """Whether this change fails the gate."""
        return self.rule.breaking

    @property
    def sentence(self) -> str:
        """The change in one line: type, field, rule, verdict, why, and what to do."""
        subject = f"field '{self.path}'" if self.path else "the event data"
        what = self.rule.phrase.format(subject=subject)
        if self.detail:
            what += f" ({self.detail})"
        verdict = "breaking" if self.breaking else "compatible"
        reason = self.rule.reason.format(type=self.event_type)
        text = f"{self.event_type}: {what}: {verdict}; {reason}."
        if self.breaking and self.rule is not Rule.RETIRED:
            text += (
                f" Publish the change as a new version ({next_version(self.event_type)}) "
                f"and keep {self.event_type} until no producer sends it."
            )
        return text

    def as_json(self) -> dict[str, str]:
        """The change as a JSON object (for ``--json``)."""
        return {
            "event_type": self.event_type,
            "path": self.path,
            "rule": self.rule.label,
            "verdict": "breaking" if self.breaking else "compatible",
            "detail": self.detail,
            "sentence": self.sentence,
        }


def next_version(event_type: str) -> str:
    """``post.liked.v1`` -> ``post.liked.v2``; a type without a version gets ``.v2`` appended."""
    match = re.fullmatch(r"(.*\.v)([0-9]+)", event_type)
    return f"{match[1]}{int(match[2]) + 1}" if match else f"{event_type}.v2"


def summary(changes: Sequence[Change], checked: int, against: str) -> str:
    """One line: how many types were checked against what, what changed, and the verdict."""
    breaking = sum(change.breaking for change in changes)
    types = f"{checked} event type{'' if checked == 1 else 's'}"
    if not changes:
        found = "no change"
    else:
        found = f"{len(changes)} change{'' if len(changes) == 1 else 's'} ({breaking} breaking)"
    verdict = "fails" if breaking else "passes"
    return f"contracts check against {against}: {types}, {found}: {verdict}"
