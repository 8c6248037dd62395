"""The failure suite: each scenario breaks something on purpose and counts what happened.

Every scenario fills a :class:`Tally` (published, delivered, applied, dead-lettered, lost,
duplicate effects) and calls :meth:`Tally.check`, which asserts nothing was lost and nothing
applied twice. The tallies are printed together at the end of the run (the terminal summary),
so CI's log holds the figures that docs/reliability.md quotes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

_TALLIES: list[Tally] = []


@dataclasses.dataclass
class Tally:
    """What one scenario did to its events."""

    scenario: str
    published: int = 0
    delivered: int = 0  # deliveries the consumers saw, duplicates and retries included
    applied: int = 0  # distinct events whose effect is in the store
    dead_lettered: int = 0
    lost: int = 0  # published and confirmed, yet neither applied nor dead-lettered
    duplicates: int = 0  # effects applied more than once
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def line(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.notes.items())
        return (
            f"{self.scenario}: published={self.published} delivered={self.delivered} "
            f"applied={self.applied} dead_lettered={self.dead_lettered} lost={self.lost} "
            f"duplicates={self.duplicates}{extra}"
        )

    def check(self) -> None:
        """The guarantees: nothing lost, nothing applied twice."""
        print(self.line())
        assert (self.lost, self.duplicates) == (0, 0), self.line()


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """A :class:`Tally` named after the test, reported at the end of the run."""
    result = Tally(request.node.name.removeprefix("test_"))
    _TALLIES.append(result)
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TALLIES:
        terminalreporter.section("failure suite: what happened to the events")
        for result in _TALLIES:
            terminalreporter.write_line(result.line())
