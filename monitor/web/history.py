"""Each system's days over the status page's history: how much of each day it worked, and the
incidents it was part of that day, in the calendar days of ``default_timezone``.

A day that has closed never changes, so ``DailyHistory`` works the closed days out once (and
each new one once, as it closes) and reads only the open ones at each request: today, and for
``SETTLE`` after midnight yesterday too, since a replica that could not reach the store at
midnight saves the transitions it kept, at their own times, once it can.

What is kept is sparse and by day: the seconds DOWN and the incidents of the systems that had
any that day, so 10,000 systems that mostly worked cost little, and a day all of them failed on
is one table of 10,000 entries. A system is watched from its first decided state on:
every transition is to UP or DOWN, so its time watched is the time since then, and its time UP
that less the time DOWN.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.incidents.correlation import Incident
from monitor.model import Health
from monitor.web.services import WebStore

# A day nothing happened on.
_NO_DOWN: Mapping[str, float] = {}
_NO_INCIDENTS: Mapping[str, tuple[int, ...]] = {}
SETTLE = 3600.0  # how long after its end a day is still read afresh at each request


@dataclass(frozen=True, slots=True)
class Window:
    """The history's days in one zone, oldest first: ``dates[i]`` runs from ``starts[i]`` to
    ``starts[i + 1]`` (23 or 25 hours across a change of clocks)."""

    zone: str
    dates: tuple[date, ...]
    starts: tuple[float, ...]  # one more than ``dates``: the last is the end of today

    @property
    def start(self) -> float:
        return self.starts[0]


def window(now: float, zone: str, days: int) -> Window:
    """The ``days`` calendar days of ``zone`` ending with the one ``now`` is in."""
    tz = ZoneInfo(zone)
    today = datetime.fromtimestamp(now, tz).date()
    dates = tuple(today - timedelta(days=n) for n in range(days - 1, -1, -1))
    ends = (*dates, today + timedelta(days=1))
    return Window(zone, dates, tuple(datetime.combine(d, time(), tz).timestamp() for d in ends))


@dataclass(slots=True)
class Tally:
    """What a run of days says of each system: when its state was first decided (or the run's
    start, when it was before) and its health when the run ends, by name; and by day (its
    ``date.toordinal()``), the seconds each system was DOWN and the incidents (ids, in order)
    each was part of, for the systems that had any that day. A day's tables are made once and
    never changed after."""

    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, Health] = field(default_factory=dict)
    down: dict[int, dict[str, float]] = field(default_factory=dict)
    incidents: dict[int, dict[str, tuple[int, ...]]] = field(default_factory=dict)

    def down_by_system(self, oldest: int) -> dict[str, float]:
        """The seconds each system was DOWN over the days from the ordinal ``oldest`` on."""
        totals: dict[str, float] = {}
        for day, by_system in self.down.items():
            if day >= oldest:
                for system, seconds in by_system.items():
                    totals[system] = totals.get(system, 0.0) + seconds
        return totals


def tally(
    history: Mapping[str, Sequence[tuple[float, Health]]],
    incidents: Iterable[Incident],
    days: Window,
    first_day: int,
    end: float,
) -> Tally:
    """The days ``days.dates[first_day:]`` up to ``end``, from ``Store.health_history`` read
    from the first of them and the incidents that were open in them (in id order)."""
    found = Tally()
    start = days.starts[first_day]
    for system, entries in history.items():
        if not entries or entries[0][0] > end:
            continue
        found.first[system] = max(entries[0][0], start)
        ends = [at for at, _ in entries[1:]] + [end]
        for (at, health), until in zip(entries, ends, strict=True):
            if at <= end:  # as ``health_history`` reads it: a change at the moment counts
                found.last[system] = health
            if health is Health.DOWN:
                for day, seconds in _spread(days, first_day, max(at, start), min(until, end)):
                    down = found.down.setdefault(day, {})
                    down[system] = down.get(system, 0.0) + seconds
    same: dict[tuple[int, ...], tuple[int, ...]] = {}  # 10,000 systems share one (id,)
    for incident in incidents:
        for member in incident.members:
            up = member.up_at if member.up_at is not None else incident.resolved_at
            until = min(end, up if up is not None else end)
            since = max(member.down_at, start)
            if since > until or since >= end:
                continue
            for day in _days_touched(days, first_day, since, until):
                by_system = found.incidents.setdefault(day, {})
                ids = by_system.get(member.name, ())
                if not ids or ids[-1] != incident.id:
                    grown = (*ids, incident.id)
                    by_system[member.name] = same.setdefault(grown, grown)
    return found


def _spread(days: Window, first_day: int, since: float, until: float) -> list[tuple[int, float]]:
    """The time from ``since`` to ``until`` split by day: ``[(ordinal, seconds), ...]``."""
    parts = []
    index = max(first_day, bisect_right(days.starts, since) - 1)
    while since < until and index < len(days.dates):
        day_end = days.starts[index + 1]
        parts.append((days.dates[index].toordinal(), min(until, day_end) - since))
        since = day_end
        index += 1
    return parts


def _days_touched(days: Window, first_day: int, since: float, until: float) -> range:
    """The ordinals of the days from the one ``since`` is in to the one ``until`` is in (a
    member back UP at midnight sharp touched only the day before)."""
    first = max(first_day, bisect_right(days.starts, since) - 1)
    last = min(len(days.dates) - 1, bisect_right(days.starts, until) - 1)
    if until > since and days.starts[last] == until:
        last -= 1
    return range(days.dates[first].toordinal(), days.dates[max(first, last)].toordinal() + 1)


@dataclass(frozen=True, slots=True)
class Day:
    """One system's day as the page shows it: the share of the time watched it worked (None
    when it was not watched at all) and the incidents it was part of, in id order."""

    date: date
    ratio: float | None
    incidents: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Days:
    """The history window read at ``now``: the closed days' tally (kept between requests)
    and the open days' (read now), as one."""

    window: Window
    open_from: int  # the index of the first day read now
    closed: Tally
    live: Tally
    now: float
    closed_down: Mapping[str, float]  # each system's seconds DOWN over the closed days shown

    def first(self, system: str) -> float | None:
        """When the system's state was first decided, or the window's start if before."""
        first = self.closed.first.get(system, self.live.first.get(system))
        return None if first is None else max(first, self.window.start)

    def days(self, system: str) -> list[Day]:
        """Each day of the window, oldest first."""
        first = self.first(system)
        shown = []
        for index, day in enumerate(self.window.dates):
            part = self.closed if index < self.open_from else self.live
            ordinal = day.toordinal()
            ratio = None
            if first is not None:
                start = max(self.window.starts[index], first)
                watched = min(self.window.starts[index + 1], self.now) - start
                if watched > 0:
                    down = part.down.get(ordinal, _NO_DOWN).get(system, 0.0)
                    ratio = min(1.0, max(0.0, (watched - down) / watched))
            shown.append(
                Day(day, ratio, part.incidents.get(ordinal, _NO_INCIDENTS).get(system, ()))
            )
        return shown

    def uptime(self, system: str) -> float | None:
        """The share of the time watched in the window that the system worked; None before
        its state was first decided."""
        first = self.first(system)
        if first is None or self.now <= first:
            return None
        down = self.closed_down.get(system, 0.0)
        for by_system in self.live.down.values():
            down += by_system.get(system, 0.0)
        return min(1.0, max(0.0, 1 - down / (self.now - first)))


@dataclass(slots=True)
class _Closed:
    """The tally of the closed days ``first_date`` to ``last`` of ``zone``, as worked out
    (its ``last`` says how each system was when ``last`` ended), and each system's seconds
    DOWN over them from the day ``totals_from`` on (the window moves a day at midnight, an
    hour before a new day closes)."""

    zone: str
    first_date: date
    last: date
    tally: Tally
    totals_from: int = 0
    totals: dict[str, float] = field(default_factory=dict)

    def down_from(self, oldest: int) -> dict[str, float]:
        if self.totals_from != oldest:
            self.totals_from, self.totals = oldest, self.tally.down_by_system(oldest)
        return self.totals


class DailyHistory:
    """The closed days' tally, kept between requests: worked out a day at a time (yielding to
    the probes between days: 10,000 systems' 90 days are ~150,000 state changes), once, and
    each new closed day once more, as it closes; a change of ``default_timezone`` starts it
    again."""

    def __init__(self) -> None:
        self._closed: _Closed | None = None
        self._lock = asyncio.Lock()  # one request works the closed days out; the rest wait

    async def read(self, store: WebStore, now: float, zone: str, days: int) -> Days:
        """The ``days`` days of ``zone`` up to ``now``, from the store."""
        shown = window(now, zone, days)
        open_from = bisect_right(shown.starts[1:], now - SETTLE)
        closed = await self._closed_days(store, shown, open_from)
        since = shown.starts[open_from]
        if open_from:
            # How each system was as the open days began is the closed days' last word: only
            # the changes since are read, off their index, not every system's older ones.
            history = _carried(closed.tally.last, since, await store.health_changes(since))
        else:
            history = await store.health_history(since)
        incidents = await store.incidents(resolved_since=since)
        live = await asyncio.to_thread(tally, history, incidents, shown, open_from, now)
        down = closed.down_from(shown.dates[0].toordinal())
        return Days(shown, open_from, closed.tally, live, now, down)

    async def _closed_days(self, store: WebStore, shown: Window, open_from: int) -> _Closed:
        if open_from == 0:
            return _Closed(shown.zone, shown.dates[0], shown.dates[0], Tally())
        last = shown.dates[open_from - 1]
        async with self._lock:
            kept = self._closed
            if kept is not None and (kept.zone != shown.zone or kept.first_date > shown.dates[0]):
                kept = None  # another zone, or a window reaching further back: start again
            if kept is not None and kept.last == last:
                return kept
            # Carry on from the last day kept, when it is in the window; the one returned
            # before is left as it was, for a request still reading it.
            start, found = 0, Tally()
            if kept is not None and kept.last in shown.dates[: open_from - 1]:
                start = shown.dates.index(kept.last) + 1
                found = _trimmed(kept.tally, shown.dates[0].toordinal())
            for index in range(start, open_from):
                await _add_day(store, shown, index, found, fresh=index == 0)
                await asyncio.sleep(0)
            self._closed = _Closed(shown.zone, shown.dates[0], last, found)
            return self._closed


async def _add_day(store: WebStore, shown: Window, index: int, found: Tally, fresh: bool) -> None:
    """Add the day ``shown.dates[index]`` to ``found``, which holds the days before it (none
    when ``fresh``): read only its changes and incidents, and tally the systems it changed or
    that were DOWN as it began (the rest worked all day)."""
    since, until = shown.starts[index], shown.starts[index + 1]
    if fresh:
        history = await store.health_history(since, until)
    else:
        history = _carried(found.last, since, await store.health_changes(since, until))
    incidents = await store.incidents(resolved_since=since, opened_before=until)
    # In a thread: a day that 10,000 systems failed on is 20,000 changes and an incident of
    # all of them, ~0.1 s of Python the probes need not wait for.
    day = await asyncio.to_thread(tally, history, incidents, shown, index, until)
    for system, first in day.first.items():
        found.first.setdefault(system, first)
    found.last.update(day.last)
    found.down.update(day.down)  # the day's own tables: no other day's are touched
    found.incidents.update(day.incidents)


def _carried(
    last: Mapping[str, Health], since: float, changes: Mapping[str, list[tuple[float, Health]]]
) -> dict[str, list[tuple[float, Health]]]:
    """What ``health_history(since)`` would say of the systems ``changes`` names or ``last``
    has DOWN, from how each was at ``since`` (``last``) and the changes after."""
    history: dict[str, list[tuple[float, Health]]] = {
        system: [(since, health)] for system, health in last.items() if health is Health.DOWN
    }
    for system, found in changes.items():
        before = last.get(system)
        history[system] = ([(since, before)] if before is not None else []) + found
    return history


def _trimmed(found: Tally, oldest: int) -> Tally:
    """A copy of ``found`` less the days before the ordinal ``oldest`` (the days' own tables
    are shared: none is changed once made)."""
    return Tally(
        first=dict(found.first),
        last=dict(found.last),
        down={day: part for day, part in found.down.items() if day >= oldest},
        incidents={day: part for day, part in found.incidents.items() if day >= oldest},
    )
