"""``/api/v1/maintenance``: on-call's maintenance windows. ``GET`` lists every window there is
(the files' and the API's, with the occurrence under way or next; then those the API stored
that this monitor cannot read, marked ``unusable`` with why), ``POST`` adds one (kept in the
store, so every replica has it), ``DELETE /api/v1/maintenance/{id}`` removes one the API added,
whatever it holds; a file's window is changed in its file. The body of ``POST`` is a window as
a file writes it, without ``name``: the API names it by its id."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from monitor.config import MaintenanceWindow
from monitor.config.schema import WEEKDAYS
from monitor.maintenance import API_SOURCE, UnusableWindow, Window
from monitor.maintenance.recurrence import occurrences
from monitor.text import unknown_name
from monitor.web.plumbing import ApiError, parse, respond
from monitor.web.services import SERVICES, MaintenanceActions, Services
from monitor.web.views import utc

# A recurring window's next occurrence is within a week; looked for a little past it.
_NEXT_WITHIN = 8 * 86400.0


class OccurrenceOut(BaseModel):
    start: datetime
    end: datetime


class MaintenanceOut(BaseModel):
    """A maintenance window. ``id``: a file's window by its name, the API's by its number (the
    one ``DELETE`` takes). Once: ``start`` and ``end`` are moments (UTC); recurring: ``every``
    names its days and ``start`` and ``end`` are times of day in ``timezone``."""

    id: str
    source: str = Field(description="The file it is written in, or `api`.")
    systems: list[str]
    note: str = Field(description="What customers read the work is.")
    timezone: str
    every: list[str] | None
    start: str
    end: str
    notify_before: float | None = Field(
        description="This window's lead for the notice, in seconds (null: monitor.yaml's)."
    )
    grace: float | None = Field(
        default=None,
        description="This window's maintenance_grace, in seconds (null: monitor.yaml's).",
    )
    active: bool = Field(description="Under way now.")
    next: OccurrenceOut | None = Field(
        description="The occurrence under way, else the next one; null once it is past."
    )
    unusable: str | None = Field(
        default=None,
        description="Why this monitor cannot use the window (stored by an older version, or "
        "its time zone is gone from tzdata): it is not in force, and DELETE removes it. The "
        "other fields are what could be read of it. Null for a window in force.",
    )


class MaintenanceList(BaseModel):
    windows: list[MaintenanceOut]
    notify_before: float = Field(description="monitor.yaml's notify_before, in seconds.")
    grace: float = Field(description="monitor.yaml's maintenance_grace, in seconds.")


class MaintenanceRemoved(BaseModel):
    removed: Literal[True]
    window: MaintenanceOut


def _actions(services: Services) -> MaintenanceActions:
    if services.maintenance is None:
        raise ApiError(503, "maintenance windows are not available in this process")
    return services.maintenance


def window_out(window: Window, now: float) -> MaintenanceOut:
    """``window`` as the API shows it, as of ``now``."""
    ahead = occurrences(window, now, now + _NEXT_WITHIN)
    upcoming = ahead[0] if ahead else None
    if window.recurs:
        assert window.at is not None
        assert window.until is not None
        start, end = f"{window.at:%H:%M}", f"{window.until:%H:%M}"
        days = [WEEKDAYS[d] for d in sorted(window.days)]
    else:
        start, end, days = _utc(window.start), _utc(window.end), None
    return MaintenanceOut(
        id=window.ref,
        source=window.source,
        systems=list(window.systems),
        note=window.note,
        timezone=window.zone,
        every=days,
        start=start,
        end=end,
        notify_before=window.notify_before,
        grace=window.grace,
        active=upcoming is not None and upcoming.covers(now),
        next=None
        if upcoming is None
        else OccurrenceOut(start=utc(upcoming.start), end=utc(upcoming.end)),
    )


def unusable_out(window: UnusableWindow) -> MaintenanceOut:
    """A stored window this monitor cannot read, as the API shows it: what can be read of its
    settings, and why it cannot be used."""
    try:
        stored: Any = json.loads(window.spec)
    except ValueError:
        stored = {}
    written = stored if isinstance(stored, dict) else {}

    def text(key: str) -> str:
        value = written.get(key)
        return value if isinstance(value, str) else ""

    def texts(key: str) -> list[str]:
        value = written.get(key)
        value = [value] if isinstance(value, str) else value
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    return MaintenanceOut(
        id=window.ref,
        source=API_SOURCE,
        systems=texts("systems"),
        note=text("note"),
        timezone=text("timezone"),
        every=texts("every") or None,
        start=text("start"),
        end=text("end"),
        notify_before=None,
        active=False,
        next=None,
        unusable=window.why,
    )


def _out(window: Window | UnusableWindow, now: float) -> MaintenanceOut:
    return window_out(window, now) if isinstance(window, Window) else unusable_out(window)


def _utc(at: float | None) -> str:
    return "" if at is None else f"{utc(at):%Y-%m-%dT%H:%M:%SZ}"


async def get_maintenance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    schedule = await _actions(services).read_schedule()
    now = services.clock.now()
    settings = services.config().settings
    return respond(
        MaintenanceList(
            windows=[
                *(window_out(w, now) for w in schedule.windows),
                *(unusable_out(w) for w in schedule.unusable),
            ],
            notify_before=settings.notify_before,
            grace=settings.maintenance_grace,
        )
    )


async def post_maintenance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    actions = _actions(services)
    body = await parse(request, MaintenanceWindow)
    known = services.config().systems
    for index, name in enumerate(body.systems):
        if name not in known:
            raise ApiError(400, unknown_name("system", name, known), f"systems.{index}")
    window = await actions.add_window(body)
    return respond(window_out(window, services.clock.now()), 201)


async def delete_maintenance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    actions = _actions(services)
    raw = request.match_info["id"]
    schedule = await actions.read_schedule()
    found = next((w for w in schedule.windows if w.ref == raw), None)
    if found is not None and found.source != API_SOURCE:
        raise ApiError(
            409,
            f"maintenance window {raw!r} is written in {found.source}: change or remove it "
            "there (the files are reloaded)",
            "id",
        )
    number = raw.isascii() and raw.isdigit() and len(raw) <= 18  # past any id the store gives
    removed = await actions.remove_window(int(raw)) if number else None
    if removed is None:
        ids = [w.ref for w in schedule.windows] + [w.ref for w in schedule.unusable]
        raise ApiError(404, unknown_name("maintenance window", raw[:100], ids), "id")
    now = services.clock.now()
    return respond(MaintenanceRemoved(removed=True, window=_out(removed, now)))
