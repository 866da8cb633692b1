"""An incident's post-incident report as the API answers it: read from the store with a few
reads (the messages tallied by the database, never read one by one), made by
``monitor.reporting`` and given as JSON, Markdown or an HTML page."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from monitor.incidents.audience import attempts_span
from monitor.incidents.correlation import Incident
from monitor.reporting import Report, build_report, report_html, report_markdown
from monitor.store import count_audience
from monitor.web.models import (
    UNDELIVERABLE_LISTED,
    ReportAcknowledgements,
    ReportAlert,
    ReportFirstFailure,
    ReportMessages,
    ReportOut,
    ReportPeople,
    ReportSystem,
    ReportUndeliverable,
    SystemRef,
    TimelineOut,
)
from monitor.web.plumbing import respond
from monitor.web.services import Services
from monitor.web.views import explanation_out, utc, utc_or_none

FORMATS = ("json", "markdown", "html")
MEDIA = {"markdown": "text/markdown", "html": "text/html"}
# The page is static HTML with inline CSS: nothing else may load or run, even a value that
# slipped past escaping (as for the status page).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_NOT_KEPT = {"Cache-Control": "no-store"}  # it names people: no cache should keep a copy


async def incident_report(services: Services, incident: Incident) -> Report:
    """The report of ``incident`` as of now, from the store."""
    store = services.store
    config = services.config()
    span = attempts_span(incident, config.settings.attempt_lookback)
    # Of these reads only the audience is one long statement (~30 ms for 100,000 people on
    # SQLite, whose calls hold the loop); the tally after it yields between its parts.
    kept = await store.audience(incident.id) if incident.resolved_at is not None else None
    affected = kept or await count_audience(store, incident.systems, *span)
    tally = await store.message_tally(incident.id)
    return build_report(
        incident,
        titles={name: system.title for name, system in config.systems.items()},
        timeline=await store.timeline(incident.id),
        explanation=await store.explanation(incident.id),
        alert=await store.alert(incident.id),
        tally=tally,
        undeliverable=await store.undeliverable(incident.id, UNDELIVERABLE_LISTED),
        affected=affected,
        affected_at_fix=kept is not None,
        now=services.clock.now(),
    )


def report_response(report: Report, form: str, zone: ZoneInfo) -> web.Response:
    """The report as ``form`` (one of ``FORMATS``), times of the words in ``zone``."""
    if form == "markdown":
        text = report_markdown(report, zone)
        return web.Response(text=text, content_type=MEDIA[form], headers=_NOT_KEPT)
    if form == "html":
        return web.Response(
            text=report_html(report, zone), content_type=MEDIA[form], headers=PAGE_HEADERS
        )
    return respond(report_out(report))


def report_out(report: Report) -> ReportOut:
    """The report as JSON: times in UTC, durations in seconds."""
    timing = report.acknowledging
    first = report.first_failure
    return ReportOut(
        id=report.incident_id,
        status=report.status,
        opened_at=utc(report.opened_at),
        resolved_at=utc_or_none(report.resolved_at),
        duration=report.duration,
        made_at=utc(report.made_at),
        cause=SystemRef(name=report.cause, title=report.cause_title),
        systems=[
            ReportSystem(
                name=s.name,
                title=s.title,
                down_at=utc(s.down_at),
                up_at=utc_or_none(s.up_at),
                down_for=s.down_for,
                cause=s.cause,
            )
            for s in report.systems
        ],
        people=ReportPeople(
            affected=report.affected,
            affected_unsubscribed=report.affected_unsubscribed,
            affected_counted=report.affected_counted,
            acknowledged=report.acknowledged,
            undeliverable=report.undeliverable_people,
        ),
        messages=[
            ReportMessages(
                kind=k.kind, sent=dict(k.sent), pending=k.pending, undeliverable=k.undeliverable
            )
            for k in report.messages
        ],
        acknowledgements=ReportAcknowledgements(
            first_failure=ReportFirstFailure(
                at=utc(first.at), system=first.system, before_opening=first.before_opening
            ),
            people=timing.people,
            first=timing.first,
            p50=timing.p50,
            p99=timing.p99,
            last=timing.last,
        ),
        undeliverable=[
            ReportUndeliverable(person=u.person, kinds=list(u.kinds), error=u.error)
            for u in report.unreachable
        ],
        oncall_alert=(
            ReportAlert(at=utc(report.alert.at), routes=list(report.alert.routes))
            if report.alert is not None
            else None
        ),
        notes=[TimelineOut(at=utc(n.at), kind=n.kind, text=n.text) for n in report.notes],
        explanation=explanation_out(report.explanation),
        promise=report.promise,
        timeline=[TimelineOut(at=utc(e.at), kind=e.kind, text=e.text) for e in report.timeline],
    )
