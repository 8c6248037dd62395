"""Helpers for the store tests that other processes import too (so: no fixtures here)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from shared.stores.base import Store

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z, seconds since the epoch


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclasses.dataclass(frozen=True)
class StoreSpec:
    """Enough to open the same store again, here or in a spawned process (it pickles)."""

    backend: str
    path: str | None = None  # sqlite
    project: str | None = None  # firestore
    prefix: str | None = None  # firestore

    def open(self, clock: Any = time.time) -> Store:
        if self.backend == "sqlite":
            from shared.stores.sqlite import SqliteStore

            return SqliteStore(self.path, clock=clock)  # type: ignore[arg-type]
        from shared.stores.firestore import FirestoreStore

        return FirestoreStore(project=self.project, prefix=self.prefix, clock=clock)  # type: ignore[arg-type]


def claim_in_process(spec: StoreSpec, key: str, lease: float, start: Any, results: Any) -> None:
    """Open the store in this (spawned) process, wait for the others, claim ``key``, report."""
    store = spec.open()
    try:
        store.counters("warm-up", "connection")  # connect before the race, not during it
        start.wait(timeout=120)
        results.put(store.claim(key, lease).name)
    except BaseException as exc:
        results.put(f"error: {exc!r}")
        raise
    finally:
        store.close()
