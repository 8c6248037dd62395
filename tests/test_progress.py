"""The progress bar: redrawn in place on a terminal, a line per tenth elsewhere."""

from __future__ import annotations

import io

from shared.tools.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_it_prints_a_line_at_each_tenth() -> None:
    stream = io.StringIO()
    with Progress("replaying", 20, stream) as bar:
        for done in range(1, 21):
            bar.update(done)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == [f"{n}/20" for n in range(2, 21, 2)]
    assert lines[-1] == "replaying [" + "#" * 30 + "] 20/20"
    assert lines[0] == "replaying [" + "#" * 3 + "." * 27 + "] 2/20"


def test_on_a_terminal_it_redraws_one_line_and_ends_it() -> None:
    stream = Terminal()
    with Progress("replaying", 3, stream) as bar:
        for done in range(1, 4):
            bar.update(done)
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("] 3/3\n")
    assert "\n" not in text[:-1]


def test_nothing_to_do_prints_nothing() -> None:
    stream = io.StringIO()
    with Progress("replaying", 0, stream):
        pass
    assert stream.getvalue() == ""
