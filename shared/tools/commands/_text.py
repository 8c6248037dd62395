"""Text for people: instants, ages and aligned tables, the same in ``tail``, ``audit`` and
``status``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


def instant(moment: datetime | None) -> str:
    """``2026-01-31T12:00:03Z``: RFC 3339 in UTC, to the second; ``-`` for none."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(seconds: float | None) -> str:
    """``850ms``, ``4s``, ``3m12s``, ``2h05m``, ``3d04h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f}ms"
    whole = int(seconds)
    for unit, size, smaller, small_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // small_size:02d}{smaller}"
    return f"{whole}s"


def compact(data: Any, width: int | None = None) -> str:
    """``data`` as one line of JSON, cut to ``width`` characters (ending in ``…``) if given."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    if width is not None and len(text) > width:
        return text[: width - 1] + "…"
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 0) -> list[str]:
    """``rows`` under ``headers``, columns aligned; the last ``right`` columns (counts, ages)
    right-aligned. Trailing spaces are stripped."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    first_right = len(headers) - right

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i >= first_right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), *(line(row) for row in rows)]
