"""The status page's history: a system's calendar days from its state changes and incidents,
and the closed days kept between requests (monitor/web/history.py), on a real SQLite store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from monitor.incidents.correlation import Incident, Member
from monitor.model import Health, SystemState, Transition
from monitor.store import SQLiteStore
from monitor.web.history import SETTLE, DailyHistory, Day, Days, Tally, tally, window

HOUR = 3600.0
DAY = 86400.0
MIDNIGHT = 1_800_000_000.0 - 8 * HOUR  # 2027-01-15 00:00 UTC


def change(system: str, at: float, health: Health) -> tuple[Transition, SystemState]:
    previous = Health.UP if health is Health.DOWN else Health.DOWN
    return (
        Transition(system, at, previous, health, "status", 3),
        SystemState(system, health, since=at),
    )


def outage(incident_id: int, system: str, down: float, up: float | None) -> Incident:
    return Incident(
        id=incident_id,
        opened_at=down,
        members=(Member(system, down, up),),
        cause=system,
        resolved_at=up,
    )


def test_days_run_from_the_zones_midnights_across_a_change_of_clocks() -> None:
    """In New York the days around the spring change are 24, 23 and 24 hours long, each from
    its own midnight; in UTC every day is 24 hours."""
    now = 1_805_035_980.0  # 2027-03-14 14:53 UTC, 10:53 in New York (EDT since 02:00)
    days = window(now, "America/New_York", 3)
    assert days.dates == (date(2027, 3, 12), date(2027, 3, 13), date(2027, 3, 14))
    lengths = [b - a for a, b in zip(days.starts, days.starts[1:], strict=False)]
    assert lengths == [24 * HOUR, 24 * HOUR, 23 * HOUR]
    assert days.starts[0] == 1_804_827_600.0  # 2027-03-12 05:00 UTC
    utc = window(now, "UTC", 90)
    assert len(utc.dates) == 90
    assert {b - a for a, b in zip(utc.starts, utc.starts[1:], strict=False)} == {DAY}


def test_a_spell_down_over_midnight_counts_on_both_days_and_so_does_its_incident() -> None:
    """Payment decided UP at 08:00 on the first day, DOWN from 23:00 to 02:00: the first day
    is 1 of its 16 hours down, the next 2 of 24, each with the incident; login never changed
    state, so it has no figure at all."""
    days = window(MIDNIGHT + 2 * DAY + 12 * HOUR, "UTC", 3)
    history = {
        "payment": [
            (MIDNIGHT + 8 * HOUR, Health.UP),
            (MIDNIGHT + 23 * HOUR, Health.DOWN),
            (MIDNIGHT + 26 * HOUR, Health.UP),
        ]
    }
    found = tally(
        history, [outage(4, "payment", MIDNIGHT + 23 * HOUR, MIDNIGHT + 26 * HOUR)], days, 0, 1e12
    )
    down = found.down_by_system(days.dates[0].toordinal())
    shown = Days(days, 3, found, Tally(), MIDNIGHT + 2 * DAY + 12 * HOUR, down)
    assert shown.days("payment") == [
        Day(date(2027, 1, 15), 15 / 16, (4,)),
        Day(date(2027, 1, 16), 22 / 24, (4,)),
        Day(date(2027, 1, 17), 1.0, ()),
    ]
    assert shown.uptime("payment") == 1 - 3 / (16 + 24 + 12)
    assert shown.first("payment") == MIDNIGHT + 8 * HOUR
    assert shown.days("login") == [Day(d, None, ()) for d in days.dates]
    assert shown.uptime("login") is None


def test_a_system_back_up_at_midnight_sharp_had_its_incident_on_the_day_before() -> None:
    """An incident whose system is UP again at midnight sharp touched only the day before."""
    days = window(MIDNIGHT + DAY + HOUR, "UTC", 2)
    found = tally({}, [outage(1, "payment", MIDNIGHT + 20 * HOUR, MIDNIGHT + DAY)], days, 0, 1e12)
    assert found.incidents == {date(2027, 1, 15).toordinal(): {"payment": (1,)}}


async def history_of(store: SQLiteStore, now: float, zone: str = "UTC") -> list[list[Day]]:
    """What a fresh reader (a replica just started) makes of the store at ``now``."""
    shown = await DailyHistory().read(store, now, zone, 5)
    return [shown.days("payment"), shown.days("login")]


async def test_closed_days_are_worked_out_once_and_carried_on_as_days_close(
    tmp_path: Path,
) -> None:
    """Read every three hours for four days as payment and login go up and down, the kept
    history says what a fresh reading says each time; a change saved late into a day closed
    more than an hour ago is not read again by the kept one (it was worked out once), while a
    change in the last hour's closed day is."""
    store = SQLiteStore(tmp_path / "monitor.db")
    kept = DailyHistory()
    await store.save_transitions(
        [change("payment", MIDNIGHT + HOUR, Health.UP), change("login", MIDNIGHT, Health.UP)]
    )
    spells = [(MIDNIGHT + n * 7 * HOUR, (n % 3) * 20 * 60.0) for n in range(1, 14)]
    saved = 0
    for step in range(1, 33):
        now = MIDNIGHT + step * 3 * HOUR
        while saved < len(spells) and spells[saved][0] + spells[saved][1] <= now:
            at, length = spells[saved]
            system = "payment" if saved % 2 else "login"
            await store.save_transitions(
                [change(system, at, Health.DOWN), change(system, at + length, Health.UP)]
            )
            await store.save_incident(outage(saved + 1, system, at, at + length))
            saved += 1
        shown = await kept.read(store, now, "UTC", 5)
        assert [shown.days("payment"), shown.days("login")] == await history_of(store, now), step
        assert shown.uptime("payment") == (await DailyHistory().read(store, now, "UTC", 5)).uptime(
            "payment"
        )

    now = MIDNIGHT + 4 * DAY + SETTLE / 2  # yesterday is still read afresh for an hour
    late = MIDNIGHT + 2 * DAY + 5 * HOUR  # two days ago: closed and kept
    await kept.read(store, now, "UTC", 5)
    await store.save_transitions(
        [change("login", late, Health.DOWN), change("login", late + HOUR, Health.UP)]
    )
    await store.save_transitions(
        [
            change("payment", MIDNIGHT + 4 * DAY - 2 * HOUR, Health.DOWN),
            change("payment", MIDNIGHT + 4 * DAY - HOUR, Health.UP),
        ]
    )
    shown = await kept.read(store, now, "UTC", 5)
    fresh = await history_of(store, now)
    assert shown.days("payment") == fresh[0]  # yesterday: read again
    worked_out, now_said = shown.days("login")[2].ratio, fresh[1][2].ratio
    assert worked_out is not None
    assert now_said is not None
    assert worked_out - now_said == pytest.approx(1 / 24)  # two days ago: as it was worked out
    await store.close()


async def test_a_change_of_zone_or_of_window_starts_the_kept_days_again(tmp_path: Path) -> None:
    """The kept days of UTC are not used for New York's, nor for a window reaching further
    back than they do."""
    store = SQLiteStore(tmp_path / "monitor.db")
    kept = DailyHistory()
    await store.save_transitions([change("payment", MIDNIGHT - 5 * DAY, Health.UP)])
    await store.save_transitions(
        [
            change("payment", MIDNIGHT - DAY - 2 * HOUR, Health.DOWN),
            change("payment", MIDNIGHT - DAY + 2 * HOUR, Health.UP),
        ]
    )
    now = MIDNIGHT + 12 * HOUR
    await kept.read(store, now, "UTC", 2)
    new_york = await kept.read(store, now, "America/New_York", 3)
    assert new_york.days("payment") == (await history_of(store, now, "America/New_York"))[0][2:]
    assert [d.ratio for d in new_york.days("payment")] == [20 / 24, 1.0, 1.0]  # 17:00-21:00
    longer = await kept.read(store, now, "America/New_York", 5)
    assert [d.ratio for d in longer.days("payment")] == [1.0, 1.0, 20 / 24, 1.0, 1.0]
    await store.close()
