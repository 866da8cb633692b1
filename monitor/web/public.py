"""What customers may see, gathered from the running monitor for the status page, its
incident and history pages, the feed and the JSON: nothing else reaches them.

Only public fields leave this module: system titles (never their names), states in words,
uptime, incident numbers and times, on-call's notes and explanation. Never people, contacts,
counts of people, probe URLs or failure reasons: the timeline read is the store's public one
(``IncidentLog.public_timeline``), and a system's part in an incident is said from its times.
Times are UTC here; the pages show them in the reader's zone where the browser gives one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from monitor.config import SystemConfig
from monitor.incidents.correlation import Incident
from monitor.maintenance import PublicWindow
from monitor.model import Health, SystemState
from monitor.web.history import DailyHistory, Days
from monitor.web.services import Services

DAY = 86400.0
RECENT = 7 * DAY  # the front page's resolved incidents
SYSTEMS_PER_PAGE = 100  # 90 bars each: 10,000 systems on one page would be 50 MB of HTML
INCIDENTS_PER_PAGE = 20  # of the history's
FEED_INCIDENTS = 50
TITLES_SHOWN = 10  # of an incident's systems, before "and 2,990 more services"
EVENTS_SHOWN = 50  # of an incident's system changes on its page
_REMOVED = "A service no longer listed"
_SENT = " (sent)"  # how the timeline marks a note that went to customers too

_LABELS = {
    Health.UP: "Working",
    Health.DOWN: "Not working",
    Health.UNKNOWN: "Being checked",
}


# words and times ---------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """``2 h 5 min``, ``3 d 4 h``, ``12 min``; under a minute is ``less than a minute``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown)


def uptime_text(ratio: float | None) -> str:
    """A percentage rounded down, so a bad minute never shows as 100%; "" with no data yet."""
    if ratio is None:
        return ""
    percent = math.floor(ratio * 10000) / 100
    return "100%" if percent >= 100 else f"{percent:.2f}%"


def day_text(ts: float, zone: str = "UTC") -> str:
    """``6 Dec`` in ``zone`` (the history's days'): no year, since the history is shorter
    than one."""
    day = datetime.fromtimestamp(ts, ZoneInfo(zone))
    return f"{day.day} {day:%b}"


def moment_text(ts: float) -> str:
    """``15 Jan 2027, 08:00 UTC``: what the page says before the browser says it locally."""
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y, %H:%M UTC")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def titles_text(titles: Sequence[str]) -> str:
    """``Online payments, Signing in and 2,998 more services``: a mass outage stays short."""
    if len(titles) <= TITLES_SHOWN:
        return ", ".join(titles)
    rest = len(titles) - TITLES_SHOWN
    return f"{', '.join(titles[:TITLES_SHOWN])} and {rest:,} more service{'s' * (rest != 1)}"


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as a page writes it: ``text`` in UTC, ``iso`` for ``<time datetime>``."""

    ts: float
    text: str
    iso: str

    @staticmethod
    def at(ts: float) -> Moment:
        return Moment(ts, moment_text(ts), iso(ts))


# systems -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """One day of a system's history: ``level`` says its colour (a CSS class: ``none`` with
    no data, ``full`` all day working, ``some`` at least 99%, ``down`` less), ``label`` what
    hovering or focusing it says; ``incident`` the first of the day's incidents, linked."""

    level: str
    label: str
    incident: int | None


@dataclass(frozen=True, slots=True)
class PublicSystem:
    title: str
    state: str  # "up", "down" or "unknown": a CSS class
    label: str
    ratio: float | None  # over the history window; None before its state is first decided
    uptime: str  # the ratio in words; "" when None
    since: str  # "" when the figure covers the whole window, else "6 Dec"
    since_iso: str  # when the figure starts: the first decided state, or the window's start
    bars: tuple[Bar, ...]  # oldest first; () where the caller asked for none


def day_label(day: date, today: bool) -> str:
    """``Tue 19 Jan``, and `` (today)`` for the last."""
    return f"{day:%a} {day.day} {day:%b}" + (" (today)" if today else "")


def bar(when: str, ratio: float | None, incidents: Sequence[int]) -> Bar:
    """The bar of the day ``when`` names."""
    if ratio is None:
        return Bar("none", f"{when}: no data", None)
    level = "full" if ratio >= 1 else "some" if ratio >= 0.99 else "down"
    count = len(incidents)
    said = f", {count} incident{'s' * (count != 1)}" if count else ""
    return Bar(level, f"{when}: {uptime_text(ratio)}{said}", incidents[0] if incidents else None)


def public_system(
    system: SystemConfig, state: SystemState, days: Days, labels: Sequence[str] | None
) -> PublicSystem:
    """The system as customers see it; with its bars when given the days' ``labels``."""
    first = days.first(system.name)
    ratio = days.uptime(system.name)
    # A figure over less than the window names its start, so a day of history never reads
    # as 90 days'.
    partial = first is not None and ratio is not None and first > days.window.start
    bars: tuple[Bar, ...] = ()
    if labels is not None:
        shown = days.days(system.name)
        bars = tuple(bar(when, d.ratio, d.incidents) for when, d in zip(labels, shown, strict=True))
    return PublicSystem(
        title=system.title,
        state=state.health.value.lower(),
        label=_LABELS[state.health],
        ratio=ratio,
        uptime=uptime_text(ratio),
        since=day_text(first, days.window.zone) if partial and first is not None else "",
        since_iso=iso(first) if first is not None and ratio is not None else "",
        bars=bars,
    )


def headline(states: Sequence[Health]) -> tuple[str, str]:
    """The page's banner: its CSS class and its words."""
    found = set(states)
    if Health.DOWN in found:
        return "down", "Some of our services are not working"
    if found <= {Health.UP}:
        return "up", "All our services are working"
    return "unknown", "We are checking our services"


# incidents ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A line of an incident's public timeline."""

    at: Moment
    kind: str  # "down", "up", "note", "explanation", "resolved": a CSS class
    text: str


@dataclass(frozen=True, slots=True)
class PublicIncident:
    id: int
    open: bool
    titles: tuple[str, ...]
    title_text: str  # the titles, short
    started: Moment
    ended: Moment | None
    duration: str
    note: str  # on-call's latest note ("" when none)
    explanation: str  # on-call's explanation, once given ("" until then)


def incident_titles(systems: Mapping[str, SystemConfig], incident: Incident) -> tuple[str, ...]:
    titles: list[str] = []
    seen: set[str] = set()
    for name in incident.systems:
        system = systems.get(name)
        title = system.title if system is not None else _REMOVED
        if title not in seen:
            seen.add(title)
            titles.append(title)
    return tuple(titles)


def public_incident(
    systems: Mapping[str, SystemConfig],
    incident: Incident,
    now: float,
    explanation: str,
) -> PublicIncident:
    titles = incident_titles(systems, incident)
    end = incident.resolved_at if incident.resolved_at is not None else now
    return PublicIncident(
        id=incident.id,
        open=incident.is_open,
        titles=titles,
        title_text=titles_text(titles),
        started=Moment.at(incident.opened_at),
        ended=Moment.at(end) if incident.resolved_at is not None else None,
        duration=duration_text(end - incident.opened_at),
        note=incident.note,
        explanation=explanation,
    )


def public_events(
    systems: Mapping[str, SystemConfig],
    incident: Incident,
    notes: Sequence[tuple[float, str]],
    explanation: str,
    explained_at: float | None,
) -> list[Event]:
    """The incident's public timeline, oldest first: its services stopping and working again
    (those changing in the same minute together, at most ``EVENTS_SHOWN`` such lines), each
    note, the explanation and the resolution."""
    # (minute, "down" or "up") -> (the first moment in it, the titles changing, in order)
    changes: dict[tuple[int, str], tuple[float, dict[str, None]]] = {}
    for member in incident.members:
        system = systems.get(member.name)
        title = system.title if system is not None else _REMOVED
        for at, kind in ((member.down_at, "down"), (member.up_at, "up")):
            if at is None:
                continue
            first, titles = changes.get((int(at // 60), kind), (at, {}))
            titles[title] = None
            changes[(int(at // 60), kind)] = (min(first, at), titles)
    ordered = sorted(changes.items(), key=lambda item: (item[1][0], item[0][1] == "up"))
    events = []
    for (_, kind), (at, titles) in ordered[:EVENTS_SHOWN]:
        said = titles_text(list(titles))
        if kind == "down":
            said += " stopped working"
        else:
            said += " is working again" if len(titles) == 1 else " are working again"
        events.append(Event(Moment.at(at), kind, said))
    if len(ordered) > EVENTS_SHOWN:
        rest = len(ordered) - EVENTS_SHOWN
        at = ordered[EVENTS_SHOWN][1][0]
        events.append(Event(Moment.at(at), "more", f"and {rest:,} more changes to services"))
    for at, text in notes:
        events.append(Event(Moment.at(at), "note", text.removesuffix(_SENT)))
    if explanation and explained_at is not None:
        events.append(Event(Moment.at(explained_at), "explanation", explanation))
    if incident.resolved_at is not None:
        events.append(Event(Moment.at(incident.resolved_at), "resolved", "Resolved"))
    order = {"down": 0, "up": 1, "more": 2, "note": 3, "explanation": 4, "resolved": 5}
    events.sort(key=lambda e: (e.at.ts, order[e.kind]))
    return events


# what the pages, the feed and the JSON are made of -----------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedWork:
    """A maintenance window's occurrence as customers see it: ``key`` names it for good (a
    feed entry's id), never the window's own name."""

    key: str
    titles: tuple[str, ...]
    title_text: str
    start: Moment
    end: Moment
    note: str
    active: bool


def planned_work(window: PublicWindow) -> PlannedWork:
    return PlannedWork(
        window.id,
        window.systems,
        titles_text(window.systems),
        Moment.at(window.start),
        Moment.at(window.end),
        window.note,
        window.active,
    )


@dataclass(frozen=True, slots=True)
class Overview:
    """The front page's facts (and the JSON's)."""

    org: str
    state: str
    headline: str
    history_days: int
    first_day: str  # the oldest bar's: "16 Jan"
    zone: str
    systems: Sequence[PublicSystem]  # of the page asked for (every one for the JSON)
    system_count: int
    first_shown: int  # the number of the page's first system, from 1
    page: int
    pages: int
    open_incidents: Sequence[PublicIncident]
    resolved_incidents: Sequence[PublicIncident]  # resolved in the last ``RECENT``
    recent_days: int
    updated: Moment
    planned: Sequence[PlannedWork] = ()  # under way now, then those within two weeks, by start


@dataclass(frozen=True, slots=True)
class IncidentPage:
    org: str
    incident: PublicIncident
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    org: str
    history_days: int
    incidents: Sequence[PublicIncident]
    older: int | None  # the id the next (older) page starts before; None on the last page
    newest: bool  # the first page


class NoSuchPage(LookupError):
    """A page of systems past the last one."""


class PublicView:
    """Reads what customers may see from the ``Services``, keeping the closed days of the
    history between requests (``DailyHistory``)."""

    def __init__(self) -> None:
        self.history = DailyHistory()

    async def days(self, services: Services, now: float) -> Days:
        settings = services.config().settings
        days = int(settings.retention.history // DAY)
        return await self.history.read(services.store, now, settings.default_timezone, days)

    async def overview(self, services: Services, page: int | None = 1) -> Overview:
        """The front page's facts, with the bars of page ``page`` of the systems (by title);
        ``page=None``: every system, without bars (the JSON)."""
        now = services.clock.now()
        config = services.config()
        settings = config.settings
        states = services.states()
        ordered = sorted(config.systems.values(), key=lambda s: (s.title.casefold(), s.name))
        pages = max(1, math.ceil(len(ordered) / SYSTEMS_PER_PAGE))
        if page is not None and not 1 <= page <= pages:
            raise NoSuchPage(page)
        chosen = (
            ordered
            if page is None
            else ordered[(page - 1) * SYSTEMS_PER_PAGE : page * SYSTEMS_PER_PAGE]
        )
        days = await self.days(services, now)
        dates = days.window.dates
        labels = [day_label(d, n == len(dates) - 1) for n, d in enumerate(dates)]
        # In a thread: 100 systems' 9,000 bars, or 10,000 systems' figures for the JSON, are
        # tens of milliseconds of Python the probes need not wait for.
        shown = await asyncio.to_thread(
            _public_systems, chosen, states, days, labels if page is not None else None
        )
        known = await services.store.incidents(resolved_since=now - RECENT)
        explained = {i.id: await _explanation(services, i.id) for i in known}

        def public(incident: Incident) -> PublicIncident:
            return public_incident(config.systems, incident, now, explained[incident.id][0])

        open_ones = sorted((i for i in known if i.is_open), key=lambda i: -i.opened_at)
        resolved = sorted(
            (i for i in known if not i.is_open), key=lambda i: -(i.resolved_at or 0.0)
        )
        state, words = headline(
            [states.get(name, SystemState(name)).health for name in config.systems]
        )
        return Overview(
            org=settings.org.name,
            state=state,
            headline=words,
            history_days=len(dates),
            first_day=f"{dates[0].day} {dates[0]:%b}",
            zone=settings.default_timezone,
            systems=shown,
            system_count=len(ordered),
            first_shown=0 if not ordered else ((page or 1) - 1) * SYSTEMS_PER_PAGE + 1,
            page=page or 1,
            pages=pages if page is not None else 1,
            open_incidents=[public(i) for i in open_ones],
            resolved_incidents=[public(i) for i in resolved],
            recent_days=int(RECENT // DAY),
            updated=Moment.at(now),
            planned=[planned_work(w) for w in await services.planned_work()],
        )

    async def incident(self, services: Services, incident_id: int) -> IncidentPage | None:
        """An incident's page; None for one that does not exist (or no longer does)."""
        incident = await services.store.incident(incident_id)
        return None if incident is None else await _page_of(services, incident)

    async def past(self, services: Services, before: int | None) -> HistoryPage:
        """A page of resolved incidents, newest first, those before the id ``before``."""
        found = await services.store.latest_incidents(
            INCIDENTS_PER_PAGE + 1, status="resolved", before=before
        )
        config = services.config()
        now = services.clock.now()
        shown = []
        for incident in found[:INCIDENTS_PER_PAGE]:
            text, _ = await _explanation(services, incident.id)
            shown.append(public_incident(config.systems, incident, now, text))
        return HistoryPage(
            org=config.settings.org.name,
            history_days=int(config.settings.retention.history // DAY),
            incidents=shown,
            older=shown[-1].id if len(found) > INCIDENTS_PER_PAGE else None,
            newest=before is None,
        )

    async def latest(self, services: Services) -> list[IncidentPage]:
        """The newest ``FEED_INCIDENTS`` incidents, open or resolved, with their timelines."""
        return [
            await _page_of(services, incident)
            for incident in await services.store.latest_incidents(FEED_INCIDENTS)
        ]


async def _page_of(services: Services, incident: Incident) -> IncidentPage:
    """The incident with its public timeline, read from the store."""
    config = services.config()
    text, at = await _explanation(services, incident.id)
    notes = [
        (entry.at, entry.text)
        for entry in await services.store.public_timeline(incident.id)
        if entry.kind == "note"
    ]
    return IncidentPage(
        org=config.settings.org.name,
        incident=public_incident(config.systems, incident, services.clock.now(), text),
        events=public_events(config.systems, incident, notes, text, at),
    )


def _public_systems(
    chosen: Sequence[SystemConfig],
    states: Mapping[str, SystemState],
    days: Days,
    labels: Sequence[str] | None,
) -> list[PublicSystem]:
    return [public_system(s, states.get(s.name, SystemState(s.name)), days, labels) for s in chosen]


async def _explanation(services: Services, incident_id: int) -> tuple[str, float | None]:
    """The incident's explanation and when it was given; ("", None) before it is."""
    given = await services.store.explanation(incident_id)
    if given is None or not given.text:
        return "", None
    return given.text, given.explained_at
