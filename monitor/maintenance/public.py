"""What customers may see of planned work (the status page, the feed): the titles of its
systems, when it is, and the note on-call wrote for them. No window names, files or people."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.maintenance.schedule import Schedule

AHEAD = 14 * 86400.0  # how far ahead planned work is shown


@dataclass(frozen=True, slots=True)
class PublicWindow:
    """One occurrence of planned work, as customers may see it. ``id`` names it for good (a
    feed entry's id) without saying the window's name; ``active``: under way now."""

    id: str
    systems: tuple[str, ...]  # titles
    start: float
    end: float
    note: str
    active: bool


def public_windows(
    schedule: Schedule, titles: Mapping[str, str], now: float, ahead: float = AHEAD
) -> list[PublicWindow]:
    """Planned work under way at ``now`` and starting within ``ahead``, by start."""
    return [
        PublicWindow(
            id=hashlib.sha256(o.ref.encode()).hexdigest()[:16],
            systems=tuple(titles.get(name, name) for name in o.systems),
            start=o.start,
            end=o.end,
            note=o.window.note,
            active=o.covers(now),
        )
        for o in schedule.between(now, now + ahead)
    ]
