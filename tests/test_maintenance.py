"""Maintenance windows, the pure parts: what the files may write (and the problems they get,
with file, line and field), when a window happens (across DST at the same local time), and
the rules of what a failure inside one tells customers. Real files in a temp folder, moments
as arguments: no clock but the tests'."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config import ConfigError, NamedMaintenanceWindow, load_config
from monitor.incidents.correlation import Incident, Member
from monitor.maintenance import (
    Over,
    Schedule,
    UnusableWindow,
    announced_to_subscriber,
    covered,
    customer_view,
    file_window,
    grace_of,
    in_maintenance,
    notice_due,
    over_due,
    recorded_occurrence,
)
from monitor.maintenance.recurrence import occurrence_at, occurrences

REPO = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def window(**written: object) -> NamedMaintenanceWindow:
    spec = {"name": "db-upgrade", "systems": ["payment"], "note": "We upgrade the database."}
    return NamedMaintenanceWindow.model_validate({**spec, **written})


def local(moment: float) -> str:
    return datetime.fromtimestamp(moment, BERLIN).strftime("%Y-%m-%d %H:%M %Z")


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    folder = tmp_path / "checks"
    shutil.copytree(REPO / "checks", folder)
    (folder / "maintenance").mkdir()
    return folder


# what the files say ----------------------------------------------------------------------------


def test_windows_are_read_from_their_folder_and_from_monitor_yaml(checks: Path) -> None:
    """A window a file in checks/maintenance/ and one in monitor.yaml's list both load, times
    of day read as written (YAML would read an unquoted 14:30 as the number 870)."""
    (checks / "maintenance" / "weekly.yaml").write_text(
        "name: weekly\nsystems: [crm]\nevery: sunday\nstart: 14:30\nend: 15:30\n"
        "timezone: Europe/Berlin\nnote: Weekly backups of your order history.\n"
    )
    with (checks / "monitor.yaml").open("a") as settings:
        settings.write(
            "maintenance:\n  - name: db-upgrade\n    systems: [payment, login]\n"
            "    start: 2026-12-13 02:00\n    end: 2026-12-13T04:00:00+01:00\n"
            "    note: We upgrade the database.\n"
        )
    with (checks / "monitor.yaml").open("a") as settings:
        settings.write("maintenance_grace: 10m\nnotify_before: 2d\n")
    # Both ends of the list window need an offset or neither: this one mixes them.
    with pytest.raises(ConfigError) as refused:
        load_config(checks, {})
    assert [str(p) for p in refused.value.problems] == [
        f"{checks / 'monitor.yaml'}:{_line(checks / 'monitor.yaml', 'end: 2026-12-13T')}: "
        "maintenance[0].end: give an offset to both start and end, or to neither"
    ]
    text = (checks / "monitor.yaml").read_text().replace("2026-12-13T04:00:00+01:00", "04:00")
    (checks / "monitor.yaml").write_text(text.replace("end: 04:00", "end: 2026-12-13 04:00"))
    config = load_config(checks, {})
    assert [w.name for w in config.maintenance] == ["db-upgrade", "weekly"]
    weekly = config.maintenance[1]
    assert (str(weekly.start), str(weekly.end), weekly.every) == (
        "14:30:00",
        "15:30:00",
        ("sunday",),
    )
    assert config.maintenance_files["weekly"] == str(checks / "maintenance" / "weekly.yaml")
    assert (config.settings.maintenance_grace, config.settings.notify_before) == (600.0, 172800.0)


def _line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_bad_window_file_is_a_problem_naming_its_file_line_and_field(checks: Path) -> None:
    """Unknown systems (with "did you mean"), a start that is not a time, an end before the
    start, a name used twice and an empty file each name their file, line and field."""
    folder = checks / "maintenance"
    (folder / "a.yaml").write_text(
        "name: upgrade\nsystems: [payment, paymnet]\nstart: 2026-12-13 02:00\n"
        "end: 2026-12-13 03:00\nnote: Upgrade.\n"
    )
    (folder / "b.yaml").write_text(
        "name: upgrade\nsystems: [crm]\nstart: tomorrow\nend: 2026-12-13 01:00\nnote: x\n"
    )
    (folder / "c.yaml").write_text(
        "name: backups\nsystems: [crm]\nstart: 2026-12-13 04:00\nend: 2026-12-13 03:00\nnote: x\n"
    )
    (folder / "d.yaml").write_text(
        "name: nightly\nsystems: [crm]\nevery: sundy\nstart: 02:00\nend: 03:00\nnote: x\n"
    )
    (folder / "e.yaml").write_text(
        "name: upgrade\nsystems: [crm]\nstart: 2026-12-13 02:00\n"
        "end: 2026-12-13 03:00\nnote: Again.\n"
    )
    (folder / "empty.yaml").write_text("")
    with pytest.raises(ConfigError) as refused:
        load_config(checks, {})
    assert [str(p) for p in refused.value.problems] == [
        f"{folder / 'a.yaml'}:2: systems[1]: no system is named 'paymnet' (did you mean "
        "'payment'?)",
        f"{folder / 'b.yaml'}:3: start: 'tomorrow' is not a date and time: write a date and "
        "time like 2026-12-13 02:00 (2026-12-13T02:00+01:00 with an offset), or a time of day "
        "like 02:00",
        f"{folder / 'c.yaml'}:4: end: must be after start",
        f"{folder / 'd.yaml'}:3: every: no day is named 'sundy' (did you mean 'sunday'?)",
        f"{folder / 'e.yaml'}:1: name: duplicate window name 'upgrade': {folder / 'a.yaml'}:1 "
        "uses it already",
        f"{folder / 'empty.yaml'}:1: the file is empty: a maintenance window needs name, "
        "systems, start, end and note",
    ]


@pytest.mark.parametrize(
    ("written", "field", "said"),
    [
        (
            {"start": "02:00", "end": "03:00"},
            "start",
            "needs a date as well, like 2026-12-13 02:00",
        ),
        ({"every": "day", "start": "2026-12-13 02:00", "end": "03:00"}, "start", "time of day"),
        ({"every": "day", "start": "02:00", "end": "02:00"}, "end", "must not be the same"),
        ({"start": "2026-12-13", "end": "2026-12-13 03:00"}, "start", "needs a time too"),
        (
            {"name": "7up", "start": "2026-12-13 02:00", "end": "2026-12-13 03:00"},
            "name",
            "a letter",
        ),
        (
            {"start": "2026-12-13 02:00", "end": "2026-12-13 03:00", "timezone": "Europe/Berlim"},
            "timezone",
            "did you mean 'Europe/Berlin'",
        ),
        (
            {"start": "2026-12-13 02:00", "end": "2026-12-13 03:00", "grace": "15 minutes"},
            "grace",
            "'15 minutes' is not a duration",
        ),
        (
            {"start": "2026-12-13 02:00", "end": "2026-12-13 03:00", "grace": "45d"},
            "grace",
            "must be at most 30d",
        ),
    ],
)
def test_a_window_the_monitor_cannot_use_is_refused_never_guessed(
    checks: Path, written: dict[str, str], field: str, said: str
) -> None:
    """Times of day without every, dates with it, an empty window, a date without a time, a
    name that could be an API window's id, a zone nobody has, a grace that is no duration or
    too long: each refused at its field."""
    lines = {"name": "upgrade", "systems": "[crm]", "note": "x", **written}
    (checks / "maintenance" / "w.yaml").write_text(
        "".join(f"{key}: {value}\n" for key, value in lines.items())
    )
    with pytest.raises(ConfigError) as refused:
        load_config(checks, {})
    [problem] = refused.value.problems
    assert (problem.field, problem.line) == (field, list(lines).index(field) + 1)
    assert said in problem.message


# when windows happen --------------------------------------------------------------------------


def test_a_weekly_window_stays_at_its_local_time_across_both_dst_changes() -> None:
    """Every Sunday 02:00-03:00 in Europe/Berlin is an hour at 02:00 local time before and after
    each change; on the last Sunday of March (02:00 does not exist) it starts where the clock
    lands, 03:00 CEST, and on the last Sunday of October at the first 02:00 (CEST)."""
    weekly = file_window(
        window(every="sunday", start="02:00", end="03:00", timezone="Europe/Berlin"), "UTC", "f"
    )
    spring = occurrences(weekly, at("2026-03-20 00:00"), at("2026-04-06 00:00"))
    autumn = occurrences(weekly, at("2026-10-20 00:00"), at("2026-11-03 00:00"))
    assert [(local(o.start), local(o.end)) for o in spring + autumn] == [
        ("2026-03-22 02:00 CET", "2026-03-22 03:00 CET"),
        ("2026-03-29 03:00 CEST", "2026-03-29 04:00 CEST"),
        ("2026-04-05 02:00 CEST", "2026-04-05 03:00 CEST"),
        ("2026-10-25 02:00 CEST", "2026-10-25 02:00 CET"),
        ("2026-11-01 02:00 CET", "2026-11-01 03:00 CET"),
    ]
    assert all(o.end - o.start == HOUR for o in spring + autumn)
    assert [o.ref for o in spring] == [
        "db-upgrade-202603220100",
        "db-upgrade-202603290100",
        "db-upgrade-202604050000",
    ]


def test_a_window_across_midnight_is_under_way_on_the_next_day_too() -> None:
    """23:00-01:00 every Saturday covers Sunday 00:30, and not Sunday 01:00 (its end)."""
    nightly = file_window(
        window(every=["saturday"], start="23:00", end="01:00", timezone="Europe/Berlin"), "UTC", "f"
    )
    under_way = occurrence_at(nightly, at("2026-06-07 00:30"))
    assert under_way is not None
    assert (local(under_way.start), local(under_way.end)) == (
        "2026-06-06 23:00 CEST",
        "2026-06-07 01:00 CEST",
    )
    assert occurrence_at(nightly, at("2026-06-07 01:00")) is None
    assert occurrence_at(nightly, at("2026-06-06 22:59")) is None


def test_a_window_once_is_in_its_own_zone_or_the_default_one() -> None:
    """A date and time without an offset is in the window's zone, else default_timezone; one
    with an offset is that moment wherever."""
    in_default = file_window(
        window(start="2026-12-13 02:00", end="2026-12-13 04:00"), "Europe/Berlin", "f"
    )
    in_utc = file_window(
        window(start="2026-12-13 02:00", end="2026-12-13 04:00", timezone="UTC"),
        "Europe/Berlin",
        "f",
    )
    offset = file_window(
        window(start="2026-12-13T02:00+01:00", end="2026-12-13T04:00+01:00"), "UTC", "f"
    )
    assert in_default.start == offset.start == at("2026-12-13 02:00")
    assert in_utc.start == at("2026-12-13 02:00", ZoneInfo("UTC"))
    assert [o.ref for o in occurrences(in_default, 0, 2e9)] == ["db-upgrade-202612130100"]


# failures inside a window ---------------------------------------------------------------------


START, END, GRACE = at("2026-12-13 02:00"), at("2026-12-13 03:00"), 900.0
SCHEDULE = Schedule(
    [file_window(window(start="2026-12-13 02:00", end="2026-12-13 03:00"), "Europe/Berlin", "f")]
)


def incident(*members: Member) -> Incident:
    return Incident(1, members[0].down_at, members, members[0].name)


def test_a_failure_inside_a_window_is_hidden_from_customers_until_it_outlasts_the_grace() -> None:
    """Payment failing at 02:10 is in maintenance until 03:15 (end plus grace); still down then,
    it is not any more, and customers are told."""
    failing = incident(Member("payment", START + 600))
    for now in (START + 600, END, END + GRACE - 1):
        assert set(covered(failing, SCHEDULE, now, GRACE)) == {"payment"}
        assert in_maintenance(customer_view(failing, covered(failing, SCHEDULE, now, GRACE)))
    assert covered(failing, SCHEDULE, END + GRACE, GRACE) == {}
    assert not in_maintenance(customer_view(failing, {}))


def test_a_failure_that_recovers_within_the_grace_stays_in_maintenance_for_good() -> None:
    """Back UP at 03:10, a failure of the window is never told, however late it is read."""
    recovered = incident(Member("payment", START + 600, END + 600))
    assert set(covered(recovered, SCHEDULE, END + 86400, GRACE)) == {"payment"}


def test_only_failures_that_began_inside_the_window_of_their_own_system_are_hidden() -> None:
    """A failure before the window, or of a system the window is not about, is told as usual;
    an incident of both shows customers the other system alone, opened when it failed."""
    before = incident(Member("payment", START - 60))
    assert covered(before, SCHEDULE, START + 60, GRACE) == {}
    both = incident(Member("payment", START + 60), Member("login", START + 300))
    hidden = covered(both, SCHEDULE, START + 600, GRACE)
    shown = customer_view(both, hidden)
    assert (shown.systems, shown.opened_at, shown.cause) == (("login",), START + 300, "login")
    assert not in_maintenance(shown)


def test_no_window_costs_nothing() -> None:
    """With no window at all, nothing is in maintenance and the incident is shown as it is."""
    failing = incident(Member("payment", START))
    assert covered(failing, Schedule(), START, GRACE) == {}
    assert customer_view(failing, {}) is failing


# the notices ----------------------------------------------------------------------------------


def test_the_notice_is_due_from_its_lead_until_the_window_starts() -> None:
    """notify_before ahead of the start until the start; a fan-out begun is finished while the
    window lasts; a lead of 0 tells nobody."""
    [occurrence] = SCHEDULE.between(0, 2e9)
    day = 86400.0
    assert not notice_due(occurrence, day, START - day - 1, begun=False)
    assert notice_due(occurrence, day, START - day, begun=False)
    assert not notice_due(occurrence, day, START, begun=False)
    assert notice_due(occurrence, day, START + 60, begun=True)
    assert not notice_due(occurrence, day, END, begun=True)
    assert not notice_due(occurrence, 0.0, START - 60, begun=False)


def test_the_over_note_waits_for_the_systems_and_is_dropped_past_the_grace() -> None:
    """Over at the end when its systems are up; while one is down it waits, and past the grace
    it is not sent."""
    [occurrence] = SCHEDULE.between(0, 2e9)
    assert over_due(occurrence, occurrence, END - 1, set(), GRACE) is Over.NOT_YET
    assert over_due(occurrence, occurrence, END, set(), GRACE) is Over.TELL
    assert over_due(occurrence, occurrence, END + 60, {"payment"}, GRACE) is Over.NOT_YET
    assert over_due(occurrence, occurrence, END + 120, {"login"}, GRACE) is Over.TELL
    assert over_due(occurrence, occurrence, END + GRACE, {"payment"}, GRACE) is Over.NOTHING


def test_work_whose_window_goes_before_it_starts_is_cancelled_and_once_under_way_told_over() -> (
    None
):
    """No window has the occurrence any more: before its start it is cancelled; from its start
    (removed under way) the note goes at once when its systems work, and none while one is
    down; a cancellation begun is finished even once it would have started."""
    told = recorded_occurrence("db-upgrade-202612130100", ["payment"], START, END)
    assert told.ref == "db-upgrade-202612130100"
    assert over_due(None, told, START - 1, set(), GRACE) is Over.CANCEL
    assert over_due(None, told, START, set(), GRACE) is Over.TELL
    assert over_due(None, told, START + 60, {"payment"}, GRACE) is Over.NOTHING
    assert over_due(None, told, END + 60, {"login"}, GRACE) is Over.TELL
    assert over_due(None, told, START + 60, set(), GRACE, cancelling=True) is Over.CANCEL
    [planned] = SCHEDULE.between(0, 2e9)
    assert over_due(planned, told, END, set(), GRACE, cancelling=True) is Over.CANCEL


def test_work_whose_window_cannot_be_read_waits_and_is_never_cancelled() -> None:
    """A window still stored but unreadable is neither cancelled nor told as over: the
    occurrence waits until its end, then owes nothing."""
    told = recorded_occurrence("7-202612130100", ["payment"], START, END)
    unusable = Schedule((), [UnusableWindow("7", "{}", "systems: field required")])
    assert unusable.unreadable(told.ref)
    assert not unusable.unreadable("17-202612130100")
    assert over_due(None, told, START - 60, set(), GRACE, unreadable=True) is Over.NOT_YET
    assert over_due(None, told, END, set(), GRACE, unreadable=True) is Over.NOTHING


def test_someone_subscribing_is_told_of_work_announced_until_it_starts() -> None:
    """A new subscriber is told of an occurrence still planned, before it starts and unless it
    is being cancelled."""
    [planned] = SCHEDULE.between(0, 2e9)
    assert announced_to_subscriber(planned, START - 1, cancelling=False)
    assert not announced_to_subscriber(planned, START, cancelling=False)
    assert not announced_to_subscriber(planned, START - 1, cancelling=True)
    assert not announced_to_subscriber(None, START - 1, cancelling=False)


def test_a_windows_own_grace_decides_when_a_failure_inside_it_is_told() -> None:
    """With its own grace of 1h, a failure inside the window is in maintenance until an hour
    after its end (the setting's 15 minutes do not count), and its note waits as long."""
    own = Schedule(
        [
            file_window(
                window(start="2026-12-13 02:00", end="2026-12-13 03:00", grace="1h"),
                "Europe/Berlin",
                "f",
            )
        ]
    )
    [occurrence] = own.between(0, 2e9)
    assert grace_of(occurrence, GRACE) == HOUR
    failing = incident(Member("payment", START + 600))
    assert set(covered(failing, own, END + HOUR - 1, GRACE)) == {"payment"}
    assert covered(failing, own, END + HOUR, GRACE) == {}
    assert over_due(occurrence, occurrence, END + GRACE, {"payment"}, GRACE) is Over.NOT_YET
    assert over_due(occurrence, occurrence, END + HOUR, {"payment"}, GRACE) is Over.NOTHING
