"""A maintenance window as the monitor reckons with it: its systems, its customer-facing note,
and when it is (once, or on some days of the week at a local time), in seconds since the epoch
and a time zone; and one ``Occurrence`` of it, from one moment to another.

``window_of`` turns what a file or the API wrote (``config.MaintenanceWindow``) into one: a
date and time without an offset is in the window's ``timezone``, else monitor.yaml's
``default_timezone``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from monitor.config import Config, MaintenanceWindow, NamedMaintenanceWindow
from monitor.config.schema import WEEKDAYS

API_SOURCE = "api"  # a window's ``source`` when it was posted to the API


class NoticeKind(StrEnum):
    """The messages about planned work: the notice before it (``maintenance.j2``), the note
    once it is over (``maintenance-over.j2``), and the word that it will not happen as
    announced (``maintenance-cancelled.j2``), each once per person and occurrence."""

    NOTICE = "maintenance"
    OVER = "maintenance-over"
    CANCELLED = "maintenance-cancelled"

    @property
    def label(self) -> str:
        """Its part of an outbox key: ``maintenance-weekly-202612130100.notice.u1``."""
        return "notice" if self is NoticeKind.NOTICE else self.value.removeprefix("maintenance-")


@dataclass(frozen=True, slots=True)
class Window:
    """Planned work on ``systems``. ``ref`` names it for good: a file window's name
    (``db-upgrade``: it starts with a letter), an API window's id (``7``), so the two never
    meet. Once: from ``start`` to ``end``. Recurring: on ``days`` (0 Monday .. 6 Sunday) from
    the local time ``at`` until ``until`` (the next day's when it is not after ``at``), in
    ``zone``. ``notify_before``: this window's own lead for the notice, ``grace``: its own
    ``maintenance_grace`` (None: the setting's)."""

    ref: str
    systems: tuple[str, ...]
    note: str
    zone: str
    source: str  # the file it came from, or ``API_SOURCE``
    start: float | None = None
    end: float | None = None
    days: frozenset[int] = frozenset()
    at: time | None = None
    until: time | None = None
    notify_before: float | None = None
    grace: float | None = None

    @property
    def recurs(self) -> bool:
        return self.at is not None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One time a window happens: from ``start`` to ``end``."""

    window: Window
    start: float
    end: float

    @property
    def ref(self) -> str:
        """Names this occurrence for good (its notices' keys, the database's record of them):
        the window's ref and the start in UTC, ``weekly-202612130100``."""
        return f"{self.window.ref}-{datetime.fromtimestamp(self.start, UTC):%Y%m%d%H%M}"

    @property
    def systems(self) -> tuple[str, ...]:
        return self.window.systems

    def covers(self, at: float) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class UnusableWindow:
    """A window the API stored that this monitor cannot read (stored by an older version, or
    its time zone is gone from tzdata): ``ref`` its id, ``spec`` its settings as stored,
    ``why`` what is wrong with them. It is not applied: no failure is covered by it and no
    notice goes for it; removing it by its id works whatever it holds."""

    ref: str
    spec: str
    why: str


def recorded_occurrence(ref: str, systems: Sequence[str], start: float, end: float) -> Occurrence:
    """The occurrence ``ref`` as it was told (the database's record of it), when no window may
    have it any more: its systems and times, no note (``note`` is "")."""
    window = Window(
        ref=window_ref(ref),
        systems=tuple(systems),
        note="",
        zone="UTC",
        source="",
        start=start,
        end=end,
    )
    return Occurrence(window, start, end)


def window_ref(occurrence_ref: str) -> str:
    """The window's ref in an occurrence's (``weekly`` of ``weekly-202612130100``)."""
    return occurrence_ref.rsplit("-", 1)[0]


def window_of(
    spec: MaintenanceWindow, ref: str, default_zone: str, source: str = API_SOURCE
) -> Window:
    """The window ``spec`` writes, named ``ref``: its times read in its zone (its own, else
    ``default_zone``)."""
    zone_name = spec.timezone or default_zone
    window = Window(
        ref=ref,
        systems=tuple(dict.fromkeys(spec.systems)),
        note=spec.note.strip(),
        zone=zone_name,
        source=source,
        notify_before=spec.notify_before,
        grace=spec.grace,
    )
    start, end = spec.start, spec.end
    if spec.every is not None and isinstance(start, time) and isinstance(end, time):
        days = frozenset(WEEKDAYS.index(day) for day in spec.every)
        return replace(window, days=days, at=start, until=end)
    # The schema's rule: without every, both are dates and times.
    assert isinstance(start, datetime)
    assert isinstance(end, datetime)
    zone = ZoneInfo(zone_name)
    return replace(window, start=_aware(start, zone).timestamp(), end=_aware(end, zone).timestamp())


def file_window(spec: NamedMaintenanceWindow, default_zone: str, source: str) -> Window:
    """A window written in a file, named by its name."""
    return window_of(spec, spec.name, default_zone, source)


def config_windows(config: Config) -> tuple[Window, ...]:
    """Every window the files of ``config`` write (monitor.yaml's, then checks/maintenance/'s)."""
    zone = config.settings.default_timezone
    return tuple(
        file_window(spec, zone, config.maintenance_files.get(spec.name, ""))
        for spec in config.maintenance
    )


def windows_digest(config: Config) -> str:
    """A short name for the windows the files of ``config`` write, as they are read ("" for
    none): replicas whose files write the same windows have the same one."""
    if not config.maintenance:
        return ""
    written = [spec.model_dump_json() for spec in config.maintenance]
    said = json.dumps([config.settings.default_timezone, sorted(written)])
    return hashlib.blake2b(said.encode(), digest_size=12).hexdigest()


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
