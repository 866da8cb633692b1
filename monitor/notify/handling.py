"""On-call's hand on an incident: a note (sent to people as an update, or only kept), hold,
release, and the explanation (kept for the resolved or explanation messages the rules send).

Each returns the incident as saved, with its timeline entry; the notifier runs them under its
lock, so none lands in the middle of a fan-out. An unknown incident id raises ``KeyError``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from monitor.incidents.correlation import Incident
from monitor.model import Explanation, Reason
from monitor.notify.choice import note_is_sent, start_round
from monitor.store import IncidentLog


async def add_note(
    store: IncidentLog, incident_id: int, text: str, send: bool, now: float
) -> Incident:
    """Keep ``text`` as the incident's note; with ``send``, start a note round if the rules let
    it go out (``choice.note_is_sent``)."""
    incident = replace(await _incident(store, incident_id), note=text)
    if send and note_is_sent(incident):
        incident = start_round(incident, Reason.NOTE, now)
    await store.save_incident(incident)
    await store.add_timeline(incident.id, now, "note", text + (" (sent)" if send else ""))
    return incident


# A note's line starting "Doing:" starts what the team is doing; what comes before is what we
# know. One text keeps the note's contract (API, command, status page) as it was.
_DOING = re.compile(r"^[ \t]*doing:[ \t]*", re.IGNORECASE | re.MULTILINE)


def split_note(note: str) -> tuple[str, str]:
    """A note as (what we know, what the team is doing): ``"The update failed.\nDoing: we are
    rolling it back."`` gives both; a note without a "Doing:" line is all what we know."""
    found = _DOING.search(note)
    if found is None:
        return note.strip(), ""
    return note[: found.start()].strip(), note[found.end() :].strip()


async def hold(store: IncidentLog, incident_id: int, now: float) -> Incident:
    """Keep customer messages for the incident back until ``release``."""
    incident = replace(await _incident(store, incident_id), held=True)
    await store.save_incident(incident)
    await store.add_timeline(incident.id, now, "held", "customer messages held")
    return incident


async def release(store: IncidentLog, incident_id: int, now: float) -> Incident:
    """Let customer messages for the incident go out again."""
    incident = replace(await _incident(store, incident_id), held=False)
    await store.save_incident(incident)
    await store.add_timeline(incident.id, now, "released", "customer messages released")
    return incident


async def explain(store: IncidentLog, incident_id: int, text: str, now: float) -> Explanation:
    """Keep ``text`` as the incident's explanation (replacing one given before), unless it has
    gone to customers: then ``ExplanationFinal``. The leader's next tick sends it as the rules
    of the promise say (``choice``)."""
    incident = await _incident(store, incident_id)
    explanation = await store.explain(incident.id, text, now)
    await store.add_timeline(incident.id, now, "explanation", text)
    return explanation


async def _incident(store: IncidentLog, incident_id: int) -> Incident:
    incident = await store.incident(incident_id)
    if incident is None:
        raise KeyError(incident_id)
    return incident
