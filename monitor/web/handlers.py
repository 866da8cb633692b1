"""The JSON API's handlers, one per route of ``monitor.web.api.ROUTES``: each reads its
request, asks the ``Services`` and answers with a model. Their names are the OpenAPI
operation ids."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from monitor.config import Problem
from monitor.locales import check_timezone
from monitor.model import Attempt
from monitor.people.rules import known_systems
from monitor.store import ExplanationFinal
from monitor.web.models import (
    AttemptAccepted,
    AttemptIn,
    ConfigStatus,
    ExplanationIn,
    IncidentList,
    NoteIn,
    ProblemOut,
    Reloaded,
    ReloadRefused,
    ReplicaList,
    ReplicaOut,
    StatusOut,
    StoreStatus,
    SystemList,
    UsersIn,
    UsersSaved,
)
from monitor.web.plumbing import (
    USERS_BODY_LIMIT,
    ApiError,
    choice,
    incident_id,
    int_query,
    no_incident,
    parse,
    respond,
)
from monitor.web.reports import FORMATS, incident_report, report_response
from monitor.web.services import SERVICES
from monitor.web.views import incident_detail, incident_view, systems_view, utc, utc_or_none


async def get_systems(request: web.Request) -> web.Response:
    return respond(SystemList(systems=await systems_view(request.app[SERVICES])))


async def get_incidents(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    status = choice(request, "status", ("open", "resolved"))
    limit = int_query(request, "limit", 50, 1, 500)
    found = await services.store.latest_incidents(limit, status)
    return respond(IncidentList(incidents=[await incident_view(services, i) for i in found]))


async def get_incident(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    incident = await services.store.incident(number)
    if incident is None:
        raise no_incident(number)
    return respond(await incident_detail(services, incident))


async def get_report(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    form = choice(request, "format", FORMATS) or "json"
    zone = request.query.get("timezone") or services.config().settings.default_timezone
    try:
        check_timezone(zone)
    except ValueError as exc:
        raise ApiError(400, f"timezone: {exc}", "timezone") from None
    incident = await services.store.incident(number)
    if incident is None:
        raise no_incident(number)
    report = await incident_report(services, incident)
    return report_response(report, form, ZoneInfo(zone))


async def post_attempt(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await parse(request, AttemptIn, context=known_systems(services.config().systems))
    person = body.user.person()
    await services.incidents.report_attempt(
        Attempt(body.system, person.id, body.action, services.clock.now()), person
    )
    open_ones = await services.store.incidents(open_only=True)
    open_ids = [i.id for i in open_ones if body.system in i.systems]
    return respond(AttemptAccepted(accepted=True, system=body.system, open_incidents=open_ids), 202)


async def post_users(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    known = known_systems(services.config().systems)
    body = await parse(request, UsersIn, USERS_BODY_LIMIT, wrap_list="users", context=known)
    count = await services.store.upsert_people(u.person(u.systems) for u in body.users)
    return respond(UsersSaved(upserted=count))


async def post_note(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    body = await parse(request, NoteIn)
    try:
        incident = await services.incidents.add_note(number, body.text, body.send)
    except KeyError:
        raise no_incident(number) from None
    return respond(await incident_detail(services, incident))


async def post_hold(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    try:
        incident = await services.incidents.hold(number)
    except KeyError:
        raise no_incident(number) from None
    return respond(await incident_detail(services, incident))


async def post_release(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    try:
        incident = await services.incidents.release(number)
    except KeyError:
        raise no_incident(number) from None
    return respond(await incident_detail(services, incident))


async def post_explanation(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    number = incident_id(request)
    body = await parse(request, ExplanationIn)
    text = body.text.strip()
    if not text:
        raise ApiError(
            422,
            "the explanation is empty: write what happened, and what changes so it does not "
            "happen again",
            "text",
        )
    try:
        incident = await services.incidents.explain(number, text)
    except KeyError:
        raise no_incident(number) from None
    except ExplanationFinal as final:
        raise ApiError(
            409,
            f"incident {number}'s explanation went to customers at "
            f"{utc(final.told_at):%Y-%m-%dT%H:%M:%SZ} and can no longer be replaced: they "
            "read it as it was",
            "text",
        ) from None
    return respond(await incident_detail(services, incident))


def _problem(problem: Problem) -> ProblemOut:
    return ProblemOut(
        file=problem.file, line=problem.line, field=problem.field, message=problem.message
    )


async def get_status(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    not_ready = services.ready()
    store_error = await services.store_problem()
    last_reload = services.last_reload()
    return respond(
        StatusOut(
            ready=not_ready is None,
            not_ready=not_ready,
            warnings=list(services.warnings(store_error)),
            config=ConfigStatus(
                last_reload_successful=not last_reload.problems,
                loaded_at=utc(last_reload.loaded_at),
                refused_at=utc_or_none(last_reload.refused_at),
                problems=[_problem(p) for p in last_reload.problems],
                systems=len(services.config().systems),
            ),
            store=StoreStatus(writable=store_error is None, error=store_error),
            channels=list(services.channels()),
        )
    )


async def get_replicas(request: web.Request) -> web.Response:
    view = await request.app[SERVICES].replicas()
    return respond(
        ReplicaList(
            takeover_seconds=view.takeover,
            replicas=[
                ReplicaOut(
                    name=r.name,
                    started_at=utc(r.started_at),
                    last_seen=utc(r.seen_at),
                    checks=r.checks,
                    outbox_shards=r.shards,
                    leads=r.leads,
                    this_one=r.name == view.this,
                )
                for r in view.replicas
            ],
        )
    )


async def post_reload(request: web.Request) -> web.Response:
    problems = request.app[SERVICES].reload()
    if problems:
        refused = ReloadRefused(
            reloaded=False,
            error="the configuration was refused; the previous one keeps running",
            problems=[_problem(p) for p in problems],
        )
        return respond(refused, 422)
    return respond(Reloaded(reloaded=True))
