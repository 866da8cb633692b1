"""The demo's past: 30 days of made-up history written before the monitor starts, so the
status page's bars, its incident pages and ``/history`` have something to show from the first
second. Everything after it is real.

Written through the store's own writes, as the monitor would have written them: the systems'
state changes (applied to incidents already, so the monitor does not take them for news), two
resolved incidents, each told and settled long ago (nobody is messaged about them), one with
on-call's public note and the explanation it gave before the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.incidents.correlation import Incident, Member
from monitor.model import Health, SystemState, Transition
from monitor.store import Store, TimelineEntry

DAY = 86400.0
DAYS = 30  # watched this long before the demo


@dataclass(frozen=True)
class PastOutage:
    system: str
    days_ago: float  # when it began
    lasted: float  # seconds
    reason: str
    note: str = ""
    explanation: str = ""


PAST = (
    PastOutage(
        "crm",
        days_ago=11.6,
        lasted=42 * 60.0,
        reason="connect: connection refused",
    ),
    PastOutage(
        "payment",
        days_ago=3.4,
        lasted=2 * 3600.0 + 10 * 60.0,
        reason="status 503, expected 200",
        note="Our card processor is having an outage; payments will go through again once it "
        "is back.",
        explanation="Our card processor's data centre lost power. We have added a second "
        "processor that takes over within a minute when the first one stops answering.",
    ),
)


async def write_past(store: Store, systems: Sequence[str], now: float) -> list[int]:
    """Write ``DAYS`` days of history of ``systems`` ending at ``now`` (all working, but for
    ``PAST``); the ids of the past incidents."""
    start = now - DAYS * DAY
    saved: list[tuple[Transition, SystemState]] = []
    for name in systems:
        first = Transition(name, start, Health.UNKNOWN, Health.UP, "first check passed", 1)
        saved.append((first, SystemState(name, Health.UP, start, 0, 1, "", start)))
    for outage in PAST:
        if outage.system not in systems:
            continue
        down_at = now - outage.days_ago * DAY
        up_at = down_at + outage.lasted
        down = Transition(outage.system, down_at, Health.UP, Health.DOWN, outage.reason, 3)
        up = Transition(outage.system, up_at, Health.DOWN, Health.UP, "passed again", 2)
        saved.append((down, SystemState(outage.system, Health.DOWN, down_at, 3, 0, "", down_at)))
        saved.append((up, SystemState(outage.system, Health.UP, up_at, 0, 2, "", up_at)))
    saved.sort(key=lambda pair: pair[0].at)
    await store.save_transitions(saved)
    applied = [id_ for id_, _ in await store.unapplied_transitions(len(saved))]
    incidents: list[Incident] = []
    timeline: list[tuple[int, TimelineEntry]] = []
    for outage in PAST:
        if outage.system not in systems:
            continue
        down_at = now - outage.days_ago * DAY
        up_at = down_at + outage.lasted
        incident = Incident(
            id=await store.new_incident_id(),
            opened_at=down_at,
            members=(Member(outage.system, down_at, up_at),),
            cause=outage.system,
            resolved_at=up_at,
            note=outage.note,
            resolution_told_at=up_at,
        )
        incidents.append(incident)
        if outage.note:
            timeline.append((incident.id, TimelineEntry(down_at + 600, "note", outage.note)))
    await store.save_incidents(incidents, timeline, applied)
    for outage, incident in zip((o for o in PAST if o.system in systems), incidents, strict=True):
        if outage.explanation:
            at = (incident.resolved_at or now) - 300
            await store.explain(incident.id, outage.explanation, at)
            await store.settle_for_resolution(incident.id, incident.resolved_at or now)
    return [incident.id for incident in incidents]
