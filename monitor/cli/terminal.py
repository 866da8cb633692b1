"""What on-call reads in a terminal: incidents as a table, one incident in detail, and what a
change to one did. Times are UTC, as the API gives them; counts have thousands separators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.durations import format_duration
from monitor.web.models import IncidentDetail, IncidentOut

TABLE_HEADER = (
    "ID",
    "STATUS",
    "STARTED (UTC)",
    "DURATION",
    "ACKNOWLEDGED",
    "UPDATED",
    "RESOLVED",
    "PENDING",
    "UNDELIVERABLE",
    "SYSTEMS",
)
SYSTEMS_SHOWN = 5  # a mass outage of thousands of systems is still one line


def incidents_table(incidents: Sequence[IncidentOut]) -> str:
    """One line per incident under a header, columns two spaces apart (as amtool prints).

    ACKNOWLEDGED, UPDATED and RESOLVED count people sent that message; PENDING and
    UNDELIVERABLE count messages of every kind."""
    rows = [TABLE_HEADER] + [
        (
            str(i.id),
            _status(i),
            _when(i.opened_at),
            format_duration(i.duration),
            f"{i.counts.acknowledged:,}",
            f"{i.counts.updated:,}",
            f"{i.counts.resolved:,}",
            f"{i.counts.pending:,}",
            f"{i.counts.undeliverable:,}",
            _systems(i),
        )
        for i in incidents
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def incident_text(incident: IncidentDetail) -> str:
    """One incident in full: status, times, cause, systems, note, hold, messages, timeline."""
    number = incident.id
    lasted = format_duration(incident.duration)
    if incident.resolved_at is not None:
        lasted = f"resolved {_when(incident.resolved_at)} UTC, after {lasted}"
    else:
        lasted = f"open for {lasted}"
    if incident.held:
        held = f"yes: customers hear nothing until `monitor incident release {number}`"
    else:
        held = f"no (`monitor incident hold {number}` keeps customer messages back)"
    if incident.notified_at is not None:
        told = f"from {_when(incident.notified_at)} UTC"
    else:
        told = "not yet"
    counts = incident.counts
    lines = [
        f"Incident {number}: {_status(incident)}",
        f"Started:   {_when(incident.opened_at)} UTC, {lasted}",
        f"Cause:     {incident.cause.name} ({incident.cause.title})",
        "Systems:   "
        + "\n           ".join(
            f"{s.name} ({s.title}): down {_when(s.down_at)}, "
            + (f"up {_when(s.up_at)}" if s.up_at is not None else "still down")
            for s in incident.systems
        ),
        f"Note:      {incident.note or '(none)'}",
        f"Held:      {held}",
        f"Told:      {told}",
        f"Messages:  {counts.acknowledged:,} acknowledged, {counts.updated:,} updated, "
        f"{counts.resolved:,} resolved, {counts.pending:,} pending, "
        f"{counts.undeliverable:,} undeliverable",
        f"Explained: {_explanation(incident)}",
        f"Promise:   {_promise(incident)}",
    ]
    if incident.timeline:
        lines += ["", "Timeline (UTC):"]
        width = max(len(entry.kind) for entry in incident.timeline)
        lines += [
            f"  {_when(entry.at)}  {entry.kind.ljust(width)}  {entry.text}".rstrip()
            for entry in incident.timeline
        ]
    return "\n".join(lines)


def noted(incident: IncidentDetail, send: bool) -> str:
    """What ``monitor incident note`` did, in a sentence or two."""
    said = f"Incident {incident.id}: note saved; the status page shows it."
    if not send:
        return said
    if incident.status == "resolved":
        return said + " The incident is resolved, so it is not sent as an update."
    if incident.notified_at is None:
        return said + " Nobody has been told yet: the note goes into the first message they get."
    if incident.held:
        return said + " Everyone told gets it as an update once the incident is released."
    return said + " Everyone told about the incident gets it as an update."


def explained(incident: IncidentDetail) -> str:
    """What ``monitor incident explain`` did, in a sentence or two."""
    said = f"Incident {incident.id}: explanation saved; the status page shows it."
    promise = incident.explanation.promise
    if promise == "open":
        return said + " Everyone told gets it once, as promised in the resolved message."
    if incident.status == "open":
        return (
            said + " It goes into the resolved message, so no explanation has to be promised "
            "(it may be replaced until then)."
        )
    return said + " Nobody was promised one, so no message goes out."


def _explanation(incident: IncidentOut) -> str:
    given = incident.explanation
    if given.explained_at is None:
        return "(none)"
    final = "final: it has gone to customers" if given.final else "may be replaced"
    sent = incident.messages.get("explanation", {}).get("sent", 0)
    return (
        f"{_when(given.explained_at)} UTC ({final}; {sent:,} explanation messages sent)"
        f"\n           {given.text}"
    )


def _promise(incident: IncidentOut) -> str:
    given = incident.explanation
    if given.promise == "kept" and given.kept_at is not None:
        return f"kept {_when(given.kept_at)} UTC: everyone told got the explanation"
    if given.promise == "open" and given.promised_at is not None:
        reminded = (
            f"; on-call last reminded {_when(given.reminded_at)} UTC"
            if given.reminded_at is not None
            else ""
        )
        return (
            f"open since {_when(given.promised_at)} UTC: the resolved message promised an "
            f"explanation (`monitor incident explain {incident.id} FILE`){reminded}"
        )
    return "none"


def held(incident: IncidentDetail) -> str:
    return (
        f"Incident {incident.id}: customer messages held; "
        f"`monitor incident release {incident.id}` lets them go."
    )


def released(incident: IncidentDetail) -> str:
    return f"Incident {incident.id}: customer messages released; what is owed goes out now."


def _status(incident: IncidentOut) -> str:
    return incident.status + (", held" if incident.held else "")


def _systems(incident: IncidentOut) -> str:
    # The cause first: on a line cut short it is the name that matters.
    names = [incident.cause.name] + [
        s.name for s in incident.systems if s.name != incident.cause.name
    ]
    shown = ", ".join(names[:SYSTEMS_SHOWN])
    more = len(names) - SYSTEMS_SHOWN
    return shown + (f" and {more:,} more" if more > 0 else "")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
