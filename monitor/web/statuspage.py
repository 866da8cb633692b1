"""The public status page: what customers may see, server-rendered, readable on a phone.

It shows each system's title, state and uptime over the time the monitor has watched it (the
last 7 days, or since it was first checked when that is more recent), open incidents with
on-call's public note, and incidents resolved in the last 7 days with how long they lasted, each
with on-call's explanation once given.
Nothing private can reach it: the template gets only the public fields gathered here (no
people, contacts, counts of people, system names, probe URLs or failure reasons), and it
escapes every value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# The status page is HTML for browsers, not a customer message, so it gets its own small
# autoescaping environment here instead of going through the composer's sandbox (only this, the
# composer and the demo's messages page import jinja2: a contract in pyproject.toml says so).
import jinja2

from monitor.config import SystemConfig
from monitor.incidents.correlation import Incident
from monitor.model import UPTIME_WINDOW, Health
from monitor.web.models import SystemOut
from monitor.web.services import Services
from monitor.web.views import systems_view

RECENT = 7 * 86400.0
TEMPLATES = Path(__file__).parent / "templates"
_REMOVED = "A service no longer listed"

_LABELS = {
    Health.UP: "Working",
    Health.DOWN: "Not working",
    Health.UNKNOWN: "Being checked",
}


@dataclass(frozen=True, slots=True)
class PublicSystem:
    title: str
    state: str  # "up", "down" or "unknown": a CSS class
    label: str
    uptime: str  # "" before the system's state is first decided: no figure at all
    since: str  # "" when the figure covers the whole uptime window, else "6 Dec"
    since_iso: str


@dataclass(frozen=True, slots=True)
class PublicIncident:
    titles: tuple[str, ...]
    started: str
    started_iso: str
    ended: str
    ended_iso: str
    duration: str
    note: str
    explanation: str  # on-call's explanation, once given ("" until then)


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


def day_text(ts: float) -> str:
    """``6 Dec``: no year, since the uptime window is shorter than one."""
    day = datetime.fromtimestamp(ts, UTC)
    return f"{day.day} {day:%b}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y, %H:%M UTC")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public_incident(
    systems: Mapping[str, SystemConfig], incident: Incident, now: float, explanation: str
) -> PublicIncident:
    titles = []
    for name in incident.systems:
        system = systems.get(name)
        title = system.title if system is not None else _REMOVED
        if title not in titles:
            titles.append(title)
    end = incident.resolved_at if incident.resolved_at is not None else now
    return PublicIncident(
        titles=tuple(titles),
        started=_when(incident.opened_at),
        started_iso=_iso(incident.opened_at),
        ended=_when(end) if incident.resolved_at is not None else "",
        ended_iso=_iso(end) if incident.resolved_at is not None else "",
        duration=duration_text(end - incident.opened_at),
        note=incident.note,
        explanation=explanation,
    )


def _public_system(view: SystemOut, now: float) -> PublicSystem:
    # A figure over less than the window names its start, so 30 seconds of history never
    # reads as a week's. Compared as datetimes made from the same float as systems_view's,
    # so the microsecond rounding of a real clock cannot make a full week look partial.
    since = view.uptime_since
    if since is not None and since <= datetime.fromtimestamp(now - UPTIME_WINDOW, UTC):
        since = None
    return PublicSystem(
        title=view.title,
        state=view.state.value.lower(),
        label=_LABELS[view.state],
        uptime=uptime_text(view.uptime_7d),
        since=day_text(since.timestamp()) if since is not None else "",
        since_iso=_iso(since.timestamp()) if since is not None else "",
    )


def _headline(systems: Sequence[PublicSystem]) -> tuple[str, str]:
    states = {s.state for s in systems}
    if "down" in states:
        return "down", "Some of our services are not working"
    if states <= {"up"}:
        return "up", "All our services are working"
    return "unknown", "We are checking our services"


class StatusPage:
    """Renders the page from the running monitor's ``Services``."""

    def __init__(self, templates: Path = TEMPLATES) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.template = self.env.get_template("status.html")

    async def render(self, services: Services) -> str:
        now = services.clock.now()
        views = await systems_view(services, now)
        systems = [
            _public_system(view, now) for view in sorted(views, key=lambda v: v.title.casefold())
        ]
        known = await services.store.incidents(resolved_since=now - RECENT)
        config = services.config()
        open_ones = sorted((i for i in known if i.is_open), key=lambda i: -i.opened_at)
        resolved = sorted(
            (i for i in known if not i.is_open), key=lambda i: -(i.resolved_at or 0.0)
        )
        explained = {}
        for incident in known:  # the last 7 days' incidents: a few
            given = await services.store.explanation(incident.id)
            explained[incident.id] = given.text if given is not None else ""
        state, headline = _headline(systems)
        return self.template.render(
            org=config.settings.org.name,
            state=state,
            headline=headline,
            systems=systems,
            open_incidents=[
                _public_incident(config.systems, i, now, explained[i.id]) for i in open_ones
            ],
            resolved_incidents=[
                _public_incident(config.systems, i, now, explained[i.id]) for i in resolved
            ],
            uptime_days=int(UPTIME_WINDOW // 86400),
            recent_days=int(RECENT // 86400),
            updated=_when(now),
            updated_iso=_iso(now),
        )
