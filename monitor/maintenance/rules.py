"""The rules of planned work, as pure functions of plain values and the clock.

Failures inside a window (``covered``, ``customer_view``):

1. A system of an incident is *in maintenance* when it went DOWN inside an occurrence of a
   window about it (from its start, before its end) and either it was UP again by the end plus
   the grace (the window's own ``grace``, else ``maintenance_grace``: ``grace_of``), or that
   moment has not come yet.
2. Customers are told about an incident as if its systems in maintenance were not in it: the
   people of those systems alone hear nothing, and an open incident whose systems still down
   are all in maintenance tells nobody (on-call still hears of it, marked "in maintenance").
3. A system still DOWN at the end plus the grace is in maintenance no more: from then the
   incident is told as any other, to that system's people too; its first word waits
   ``notify_after`` from the first failure outside maintenance, which is long past by then.

The notices (``notice_due``, ``over_due``):

4. Each subscriber of a window's systems is told of an occurrence once, from its lead
   (``notify_before``: the window's own, else monitor.yaml's; 0, never) before it starts
   until it starts. A fan-out a crash cut off is finished while the occurrence is under way.
   Someone who subscribes (or adds a system) after its notice went and before it starts is
   told of it then, once (``announced_to_subscriber``).
5. Once it has ended, everyone it was told to hears it is over, once, when none of its systems
   is DOWN; while one is, the note waits, and if one is still DOWN at the end plus the grace
   no note goes: that failure is an incident now, and its messages say the rest.
6. An occurrence told of that no window has any more (removed, or moved to another time: the
   new time is another occurrence, told by its own notice) before it starts is *cancelled*:
   everyone it was told to hears, once, that it will not happen as announced. A cancellation
   begun is finished, whenever the next tick comes.
7. Removed once under way (or after its end, before its note went): the work ended early, so
   the note that it is over goes at once when none of its systems is DOWN, as at its end
   (the notice promised it); when one is, no note: with the window gone that failure is an
   incident, told as usual (rule 3), and its messages say the rest.
8. A removal is told (6 or 7) only while every live replica's files declare the same as the
   leader's (``agreed``): during a rolling update a leader whose files lack a window another
   replica still has cannot tell a removal from a file that has not reached it yet, so the
   occurrence waits (as at its end, rule 5, the note goes by a leader that has it).
9. An occurrence whose window is still there but cannot be read (an API window stored by an
   older version, or in a time zone tzdata no longer has) is neither cancelled nor told as
   over: it waits until the window is removed (then 6 or 7) or its time has passed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from enum import StrEnum

from monitor.incidents.correlation import Incident
from monitor.maintenance.schedule import Schedule
from monitor.maintenance.windows import Occurrence


def covered(
    incident: Incident, schedule: Schedule, now: float, grace: float
) -> dict[str, Occurrence]:
    """The systems of ``incident`` in maintenance at ``now`` (rule 1), each with the occurrence
    it failed in; ``grace``: the setting's (a window's own wins)."""
    if not schedule:
        return {}
    found = {}
    for member in incident.members:
        occurrence = schedule.covering(member.name, member.down_at)
        if occurrence is None:
            continue
        last = occurrence.end + grace_of(occurrence, grace)
        if now < last or (member.up_at is not None and member.up_at <= last):
            found[member.name] = occurrence
    return found


def customer_view(incident: Incident, hidden: Collection[str]) -> Incident:
    """``incident`` as customers are told of it (rule 2): without the systems ``hidden`` (those
    in maintenance), opened when the first of the others failed, caused by its cause if that
    is one of them, else by the first of them. Never saved: the incident stays whole."""
    if not hidden:
        return incident
    shown = tuple(m for m in incident.members if m.name not in hidden)
    if not shown:
        return replace(incident, members=())
    opened = min(m.down_at for m in shown)
    cause = incident.cause if any(m.name == incident.cause for m in shown) else shown[0].name
    return replace(incident, members=shown, opened_at=max(opened, incident.opened_at), cause=cause)


def in_maintenance(shown: Incident) -> bool:
    """Whether an incident, as ``customer_view`` shows it, tells nobody now (rule 2): it is open
    and none of the systems customers may hear of is down."""
    return shown.is_open and not any(m.down for m in shown.members)


def notice_due(occurrence: Occurrence, lead: float, now: float, begun: bool) -> bool:
    """Whether the notices of ``occurrence`` are to be decided now (rule 4); ``begun``: a
    fan-out of them started before."""
    if begun:
        return now < occurrence.end
    return lead > 0 and occurrence.start - lead <= now < occurrence.start


class Over(StrEnum):
    """What an occurrence told to customers owes them now (rules 5 to 9)."""

    NOT_YET = "not ended, or a system of it still down within the grace"
    TELL = "over: everyone told hears it"
    CANCEL = "cancelled: everyone told hears it will not happen as announced"
    NOTHING = "nothing: still down past the grace, or its time passed unreadable"


def over_due(
    planned: Occurrence | None,
    told: Occurrence,
    now: float,
    down: Collection[str],
    grace: float,
    *,
    cancelling: bool = False,
    unreadable: bool = False,
    agreed: bool = True,
) -> Over:
    """What the occurrence told of owes at ``now``: ``planned`` as the windows have it now
    (None: no window has it), ``told`` as it was told (the record: its systems and times),
    ``down`` the systems DOWN now, ``grace`` the setting's (a window's own wins);
    ``cancelling``: its cancellation was begun; ``unreadable``: its window cannot be read;
    ``agreed``: every live replica's files declare what the leader's do (rule 8)."""
    if cancelling:
        return Over.CANCEL
    if planned is None:
        if not agreed:
            return Over.NOT_YET
        if unreadable:
            return Over.NOT_YET if now < told.end else Over.NOTHING
        if now < told.start:
            return Over.CANCEL
        return Over.NOTHING if any(s in down for s in told.systems) else Over.TELL
    if now < planned.end:
        return Over.NOT_YET
    if not any(system in down for system in planned.systems):
        return Over.TELL
    last = planned.end + grace_of(planned, grace)
    return Over.NOTHING if now >= last else Over.NOT_YET


def announced_to_subscriber(planned: Occurrence | None, now: float, cancelling: bool) -> bool:
    """Whether someone subscribing now is told of an occurrence whose notices went (rule 4):
    it is still planned (``planned``, as the windows have it), not begun, not cancelled."""
    return planned is not None and not cancelling and now < planned.start


def grace_of(occurrence: Occurrence, default: float) -> float:
    """How long after its end a failure inside the occurrence stays in maintenance: its
    window's own grace, else ``default`` (monitor.yaml's ``maintenance_grace``)."""
    own = occurrence.window.grace
    return default if own is None else own


def down_systems(incidents: Collection[Incident]) -> frozenset[str]:
    """The systems DOWN in the open incidents."""
    return frozenset(m.name for i in incidents if i.is_open for m in i.members if m.down)


def lead_of(occurrence: Occurrence, default: float) -> float:
    """How long before it starts the occurrence is told of."""
    own = occurrence.window.notify_before
    return default if own is None else own
