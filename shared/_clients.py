"""One way to own a client: made on first use, made again after a fork, closed once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """A client (or connection) created by ``make`` on first :meth:`get`.

    gunicorn forks workers after importing the function module, and a gRPC channel does not
    survive a fork: a child process gets a client of its own on first use. Creation happens
    under a lock because the first requests arrive together on several threads.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], object] | None = None) -> None:
        self._make = make
        self._close = close
        self._value: T | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The client of this process, created now if needed."""
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value = self._make()
                self._pid = os.getpid()
            return self._value

    def peek(self) -> T | None:
        """The client if this process created one, without creating it."""
        return self._value if self._pid == os.getpid() else None

    def close(self) -> None:
        """Close this process's client, if any; the next :meth:`get` makes a new one."""
        with self._lock:
            value, self._value = self._value, None
            ours, self._pid = self._pid == os.getpid(), None
        if value is not None and ours and self._close is not None:
            self._close(value)
