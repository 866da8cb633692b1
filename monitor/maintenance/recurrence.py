"""When a window happens: its occurrences between two moments, and the one at a moment.

A window once is one occurrence. A window that recurs starts at its local time ``at`` on each of
its days, in its zone, and lasts as long as ``at`` to ``until`` does on an ordinary day (an hour
for 02:00-03:00): so it stays at 02:00-03:00 local time all year, across DST. On the night the
clocks go forward, a start the clock skips (02:00 in Europe/Berlin on the last Sunday of March)
is where the clock lands (03:00 CEST), and the window still lasts its hour, as a job that cron
starts at 02:00 runs then; on the night they go back, it starts at the first 02:00 (CEST) and
lasts an hour.

Its own small rule, not python-dateutil's rrule: windows recur on days of the week, which is
all the rule needs to say, and the DST handling above is zoneinfo's either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.maintenance.windows import Occurrence, Window

DAY = 86400.0


def occurrences(window: Window, since: float, until: float) -> list[Occurrence]:
    """The window's occurrences that overlap ``[since, until)``, by start."""
    return [o for o in _around(window, since, until) if o.start < until and o.end > since]


def occurrence_at(window: Window, at: float) -> Occurrence | None:
    """The window's occurrence under way at ``at`` (from its start, not at its end)."""
    return next((o for o in _around(window, at, at) if o.covers(at)), None)


def length(window: Window) -> float:
    """How long each occurrence of a recurring window lasts: ``at`` to ``until`` on an ordinary
    day (the next day's ``until`` when it is not after ``at``)."""
    assert window.at is not None
    assert window.until is not None
    return (_seconds(window.until) - _seconds(window.at)) % DAY or DAY


def _around(window: Window, since: float, until: float) -> Iterator[Occurrence]:
    """The occurrences that may overlap ``[since, until]``: once, the one; recurring, those
    starting on the local days from the one before ``since`` (an occurrence that began the
    evening before may still be under way) to the one of ``until``."""
    if window.start is not None and window.end is not None:
        yield Occurrence(window, window.start, window.end)
        return
    if window.at is None:
        return
    zone = ZoneInfo(window.zone)
    lasts = length(window)
    day = _local_day(since - lasts, zone)
    last = _local_day(until, zone)
    while day <= last:
        if day.weekday() in window.days:
            # fold=0: a start the clock skips is where it lands; one it passes twice, the first.
            start = datetime.combine(day, window.at, tzinfo=zone).timestamp()
            yield Occurrence(window, start, start + lasts)
        day += timedelta(days=1)


def _local_day(at: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(at, zone).date()


def _seconds(clock: time) -> float:
    return float(clock.hour * 3600 + clock.minute * 60 + clock.second)
