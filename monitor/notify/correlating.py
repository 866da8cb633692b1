"""Transitions into incidents: folded by the correlator, saved with their timeline, then told.

At each tick the notifier has the transitions the store holds unapplied folded here, whichever
process saved them, each chunk's incident changes committed with its transitions marked
applied; listeners (the metrics, on-call) hear once per incident and kind of change in a pass,
after all of it is saved.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from monitor.incidents.correlation import Change, Correlator, Folded, Incident, Step
from monitor.logs import event
from monitor.model import SystemInfo, Transition
from monitor.store import IncidentLog, StateLog, StoreUnavailable, TimelineEntry

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


class TransitionsAndIncidents(StateLog, IncidentLog, Protocol):
    """What correlating reads and writes: the transitions saved, and the incidents."""


async def correlate(
    store: TransitionsAndIncidents,
    resumed: list[Transition],
    *,
    correlator: Correlator,
    hold_new: bool,
    systems: Mapping[str, SystemInfo],
    listeners: Sequence[IncidentListener],
    audience_may_grow: Callable[[int], None],
) -> bool:
    """Fold the transitions the store has not applied yet into the incidents, oldest first,
    ``_CORRELATE_CHUNK`` at a time, each chunk's incident changes saved with its transitions
    marked applied in one commit; then ``resumed`` (found by ``resume``, never in the store),
    emptied as each chunk is saved. True once nothing is left; False when the store stopped
    answering, which leaves the rest for the next tick.

    ``hold_new``: new incidents start held (``customer_messages: confirm``).
    ``audience_may_grow``: called with each incident that may now affect more people.
    """
    # Told once the pass has saved them: one notice and one log line per incident and kind
    # of change (10,000 systems failing at once are one "joined"; the timeline keeps each).
    incidents: dict[int, Incident] = {}
    changed: dict[tuple[int, Change], list[str]] = {}
    # The incidents a chunk may touch (open, or resolved within the window before its oldest
    # transition), read at the first chunk: each chunk then takes them as the one before left
    # them (the notifier's lock keeps this process from changing them meanwhile). Read again
    # only for a chunk older than any before (a transition another process saved late).
    known: dict[int, Incident] = {}
    earliest = math.inf
    try:
        while True:
            stored = await store.unapplied_transitions(_CORRELATE_CHUNK)
            applied = [id_ for id_, _ in stored]
            chunk = [t for _, t in stored] if stored else resumed[:_CORRELATE_CHUNK]
            if not chunk:
                return True
            oldest = min(t.at for t in chunk)
            if oldest < earliest:
                earliest = oldest
                known = {
                    incident.id: incident
                    for incident in await store.incidents(
                        resolved_since=earliest - correlator.window
                    )
                }
            folded = await _fold(
                chunk, applied, list(known.values()), store, correlator, hold_new, systems
            )
            if not stored:
                del resumed[: len(chunk)]
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
        return False
    finally:
        await _tell(incidents, changed, listeners)


async def _fold(
    transitions: Sequence[Transition],
    applied: Sequence[int],
    known: Sequence[Incident],
    store: IncidentLog,
    correlator: Correlator,
    hold_new: bool,
    systems: Mapping[str, SystemInfo],
) -> Folded:
    """Fold a chunk of transitions into the known incidents and save what they changed, with
    the chunk's stored transitions (``applied``, their ids) marked applied in the same commit:
    also when they changed nothing (a system coming UP at start), so none is read again.

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
    if folded.steps or applied:
        timeline = [
            (
                step.incident_id,
                TimelineEntry(step.transition.at, step.change.value, _said(step, systems)),
            )
            for step in folded.steps
        ]
        await store.save_incidents(folded.incidents, timeline, applied)
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
