"""A progress bar on standard error, for commands that can take more than a few seconds.

On a terminal the bar is redrawn in place; otherwise (a log, a pipe, a test) it prints a line
at each tenth of the way, so a log shows progress without a line per item.
"""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30  # characters of the bar


class Progress:
    """``label [#########.........] done/total`` on ``stream``.

    Use as a context manager, or call :meth:`close` to end the line.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 0)
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._done = 0
        self._tenth = 0  # the last tenth printed when not live

    def update(self, done: int) -> None:
        """Show that ``done`` items are finished."""
        self._done = min(done, self.total) if self.total else done
        if self.live:
            self.stream.write("\r" + self._text())
            self.stream.flush()
            return
        tenth = self._done * 10 // self.total if self.total else 0
        if tenth > self._tenth:
            self._tenth = tenth
            print(self._text(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.live and self.total:
            self.stream.write("\n")
            self.stream.flush()

    def _text(self) -> str:
        filled = WIDTH * self._done // self.total if self.total else WIDTH
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {self._done}/{self.total}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
