"""Transitions into incidents: folded by the correlator, saved with their timeline, then told.

The notifier queues the monitor's transitions and hands them here at each tick; listeners (the
metrics, on-call) hear once per incident and kind of change in a pass, after all of it is saved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from monitor.incidents.correlation import Change, Correlator, Folded, Incident, Step
from monitor.logs import event
from monitor.model import SystemInfo, Transition
from monitor.store import IncidentLog, StoreUnavailable, TimelineEntry

log = logging.getLogger("monitor.notifier")

# Told once per incident and kind of change in a pass over the transitions, with the systems
# that made that change: a mass failure is one "joined" with thousands of systems. Awaited, one
# after the other, so a listener may read the store (on-call's notice counts the people).
IncidentListener = Callable[[Incident, Change, Sequence[str]], Awaitable[None]]
_CORRELATE_CHUNK = 1000  # transitions folded per read and commit of the incidents
_LOGGED_SYSTEMS = 20  # an incident's systems named in a log line; the rest are counted

# The changes that can make more people affected, so that everyone is looked through again.
# A member passing again (or failing again) leaves the audience as it was: looking through
# 100,000 people told already only to send nothing is seconds of work at each recovery.
_NEW_AUDIENCE = frozenset({Change.OPENED, Change.JOINED, Change.REOPENED})


async def correlate(
    pending: list[Transition],
    *,
    store: IncidentLog,
    correlator: Correlator,
    hold_new: bool,
    systems: Mapping[str, SystemInfo],
    listeners: Sequence[IncidentListener],
    audience_may_grow: Callable[[int], None],
) -> None:
    """Fold ``pending`` into the incidents, emptying it as each chunk is saved.

    ``hold_new``: new incidents start held (``customer_messages: confirm``).
    ``audience_may_grow``: called with each incident that may now affect more people.
    A store that stops answering leaves the rest of ``pending`` for the next tick.
    """
    if not pending:
        return
    # Told once the pass has saved them: one notice and one log line per incident and kind
    # of change (10,000 systems failing at once are one "joined"; the timeline keeps each).
    incidents: dict[int, Incident] = {}
    changed: dict[tuple[int, Change], list[str]] = {}
    # Read once a pass: each chunk takes the incidents as the one before left them (the
    # notifier's lock keeps everyone else from changing them meanwhile). A transition arriving
    # during the pass is later than these, so the window read covers it too.
    earliest = min(t.at for t in pending)
    try:
        known = {
            incident.id: incident
            for incident in await store.incidents(resolved_since=earliest - correlator.window)
        }
        while pending:
            chunk = pending[:_CORRELATE_CHUNK]
            folded = await _fold(chunk, list(known.values()), store, correlator, hold_new, systems)
            del pending[: len(chunk)]
            known.update((incident.id, incident) for incident in folded.incidents)
            incidents.update((incident.id, incident) for incident in folded.incidents)
            for step in folded.steps:
                if step.change in _NEW_AUDIENCE:
                    audience_may_grow(step.incident_id)
                key = (step.incident_id, step.change)
                changed.setdefault(key, []).append(step.transition.system)
            await asyncio.sleep(0)
    except StoreUnavailable as exc:
        event(log, "incident update waits for the store", logging.WARNING, error=str(exc))
    finally:
        await _tell(incidents, changed, listeners)


async def _fold(
    transitions: Sequence[Transition],
    known: Sequence[Incident],
    store: IncidentLog,
    correlator: Correlator,
    hold_new: bool,
    systems: Mapping[str, SystemInfo],
) -> Folded:
    """Fold a chunk of transitions into the known incidents and save what they changed.

    The fold is pure, so a new incident gets a placeholder id (negative: no real one is) and
    then the id the store reserves for it, in the order they opened.
    """
    placeholders: list[int] = []

    def placeholder() -> int:
        placeholders.append(-1 - len(placeholders))
        return placeholders[-1]

    folded = correlator.fold(transitions, known, placeholder, hold=hold_new)
    if placeholders:
        folded = _with_ids(folded, {p: await store.new_incident_id() for p in placeholders})
    if folded.steps:
        timeline = [
            (
                step.incident_id,
                TimelineEntry(step.transition.at, step.change.value, _said(step, systems)),
            )
            for step in folded.steps
        ]
        await store.save_incidents(folded.incidents, timeline)
    return folded


def _with_ids(folded: Folded, ids: Mapping[int, int]) -> Folded:
    """``folded`` with each placeholder id replaced by its real one."""
    return Folded(
        tuple(replace(i, id=ids[i.id]) if i.id in ids else i for i in folded.incidents),
        tuple(
            replace(step, incident_id=ids[step.incident_id]) if step.incident_id in ids else step
            for step in folded.steps
        ),
    )


async def _tell(
    incidents: dict[int, Incident],
    changed: dict[tuple[int, Change], list[str]],
    listeners: Sequence[IncidentListener],
) -> None:
    for (incident_id, change), systems in changed.items():
        incident = incidents[incident_id]
        event(
            log,
            f"incident {change.value}",
            incident=incident_id,
            system=systems[0] if len(systems) == 1 else f"{len(systems):,} systems",
            cause=incident.cause,
            systems=_logged_systems(incident),
        )
        for listen in listeners:
            await listen(incident, change, systems)


def _said(step: Step, systems: Mapping[str, SystemInfo]) -> str:
    name = step.transition.system
    title = systems.get(name, SystemInfo(name, name)).title
    return f"{title}: {step.transition.reason}"


def _logged_systems(incident: Incident) -> list[str]:
    names = [m.name for m in incident.members[:_LOGGED_SYSTEMS]]
    if len(incident.members) > _LOGGED_SYSTEMS:
        names.append(f"and {len(incident.members) - _LOGGED_SYSTEMS} more")
    return names
