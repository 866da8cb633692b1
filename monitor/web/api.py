"""The JSON API under ``/api/v1``, and ``/-/reload``: what on-call and the business's apps call,
as one route table from which both the router and the OpenAPI document are built.

Reads are open. Writes need ``Authorization: Bearer $MONITOR_API_TOKEN``; with no token
configured they answer 403. Bodies are checked by the models of ``monitor.web.models``
(unknown fields refused), which also give ``monitor.web.openapi`` its schemas.

Conventions a caller may rely on:

- Times are ISO 8601 strings in UTC (``2027-01-15T08:00:00Z``); durations are seconds.
- Every error is JSON: ``{"error": what is wrong, "field": "user.email" or null, "errors": [...]}``
  (``errors`` lists every bad field when a body has several).
- Bodies are capped (1 MiB; 10 MiB for ``POST /api/v1/users``): larger ones get 413.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from monitor.config import MaintenanceWindow
from monitor.people.rules import Subscriber
from monitor.web.handlers import (
    get_incident,
    get_incidents,
    get_replicas,
    get_report,
    get_status,
    get_systems,
    post_attempt,
    post_explanation,
    post_hold,
    post_note,
    post_release,
    post_reload,
    post_users,
)
from monitor.web.maintenance import (
    MaintenanceList,
    MaintenanceOut,
    MaintenanceRemoved,
    delete_maintenance,
    get_maintenance,
    post_maintenance,
)
from monitor.web.models import (
    AttemptAccepted,
    AttemptIn,
    ErrorOut,
    ExplanationIn,
    IncidentDetail,
    IncidentList,
    NoteIn,
    Reloaded,
    ReloadRefused,
    ReplicaList,
    ReportOut,
    StatusOut,
    SystemList,
    UsersIn,
    UsersSaved,
)
from monitor.web.plumbing import MAX_INCIDENT_ID, authorize


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query"]
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One JSON route. ``responses`` maps a status to (description, body model)."""

    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, tuple[str, type[BaseModel]]]
    body: type[BaseModel] | None = None
    body_may_be_list_of: type[BaseModel] | None = None
    write: bool = False
    params: tuple[Param, ...] = ()
    tags: tuple[str, ...] = field(default=("api",))
    # Other media types the 200 answer may be, beside the JSON of its model: {type: what}.
    also_as: dict[str, str] = field(default_factory=dict)

    def guarded(self) -> Handler:
        """The handler, behind the bearer-token check when this is a write route."""
        if not self.write:
            return self.handler
        handler = self.handler

        async def checked(request: web.Request) -> web.StreamResponse:
            authorize(request)  # before the body is read: strangers cannot make us buffer it
            return await handler(request)

        return checked


_ID = Param(
    "id",
    "path",
    {"type": "integer", "minimum": 1, "maximum": MAX_INCIDENT_ID},
    "The incident's id.",
    required=True,
)
_BAD = {400: ("A bad parameter or body field, named in `field`.", ErrorOut)}
_TOO_LARGE = {413: ("The body is larger than the limit.", ErrorOut)}
_NO_INCIDENT = {404: ("No incident has this id.", ErrorOut)}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/systems",
        get_systems,
        "Every system with its state, last result and recent uptime.",
        {200: ("The systems, by name.", SystemList)},
    ),
    Route(
        "GET",
        "/api/v1/incidents",
        get_incidents,
        "Incidents, newest first.",
        {200: ("The incidents.", IncidentList), **_BAD},
        params=(
            Param(
                "status",
                "query",
                {"type": "string", "enum": ["open", "resolved"]},
                "Only open or only resolved incidents.",
            ),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                "How many incidents at most.",
            ),
        ),
    ),
    Route(
        "GET",
        "/api/v1/incidents/{id}",
        get_incident,
        "One incident with its timeline and message counts.",
        {200: ("The incident.", IncidentDetail), **_BAD, **_NO_INCIDENT},
        params=(_ID,),
    ),
    Route(
        "GET",
        "/api/v1/incidents/{id}/report",
        get_report,
        "The incident's post-incident report: timeline, systems and cause, duration per "
        "system, people affected and told by kind and channel, time to acknowledge (first, "
        "p50, p99, last), who could not be told and why, on-call's notes, the explanation and "
        "the promise.",
        {
            200: ("The report, as JSON unless ?format= says otherwise.", ReportOut),
            **_BAD,
            **_NO_INCIDENT,
        },
        params=(
            _ID,
            Param(
                "format",
                "query",
                {"type": "string", "enum": ["json", "markdown", "html"], "default": "json"},
                "json (default); markdown, for a postmortem document; html, a page of it.",
            ),
            Param(
                "timezone",
                "query",
                {"type": "string", "maxLength": 64},
                "The IANA zone of the times in markdown and html (default: monitor.yaml's "
                "default_timezone); JSON's times are UTC.",
            ),
        ),
        also_as={
            "text/markdown": "The report as Markdown (?format=markdown).",
            "text/html": "The report as a standalone HTML page (?format=html).",
        },
    ),
    Route(
        "POST",
        "/api/v1/attempts",
        post_attempt,
        "Report that a user just failed to do something on a system.",
        {202: ("Remembered; the user counts as affected.", AttemptAccepted), **_BAD, **_TOO_LARGE},
        body=AttemptIn,
        write=True,
    ),
    Route(
        "POST",
        "/api/v1/users",
        post_users,
        "Add or replace subscribers, by id.",
        {200: ("Saved.", UsersSaved), **_BAD, **_TOO_LARGE},
        body=UsersIn,
        body_may_be_list_of=Subscriber,
        write=True,
    ),
    Route(
        "POST",
        "/api/v1/incidents/{id}/note",
        post_note,
        "Set the incident's public note; with send, everyone told gets it as an update.",
        {200: ("The incident as it now is.", IncidentDetail), **_BAD, **_NO_INCIDENT, **_TOO_LARGE},
        body=NoteIn,
        write=True,
        params=(_ID,),
    ),
    Route(
        "POST",
        "/api/v1/incidents/{id}/hold",
        post_hold,
        "Hold customer messages for this incident back until released.",
        {200: ("The incident as it now is.", IncidentDetail), **_BAD, **_NO_INCIDENT},
        write=True,
        params=(_ID,),
    ),
    Route(
        "POST",
        "/api/v1/incidents/{id}/release",
        post_release,
        "Let customer messages for this incident go out.",
        {200: ("The incident as it now is.", IncidentDetail), **_BAD, **_NO_INCIDENT},
        write=True,
        params=(_ID,),
    ),
    Route(
        "POST",
        "/api/v1/incidents/{id}/explanation",
        post_explanation,
        "Publish the incident's explanation: what happened, and what changes so it does not "
        "happen again. It goes into the resolved messages when given before the fix, else to "
        "everyone told as one explanation message; it may be replaced until then.",
        {
            200: ("The incident as it now is.", IncidentDetail),
            **_BAD,
            **_NO_INCIDENT,
            409: ("It has gone to customers, so it can no longer be replaced.", ErrorOut),
            **_TOO_LARGE,
            422: ("The text is empty.", ErrorOut),
        },
        body=ExplanationIn,
        write=True,
        params=(_ID,),
    ),
    Route(
        "GET",
        "/api/v1/maintenance",
        get_maintenance,
        "Every maintenance window: the files' and those posted here, each with the occurrence "
        "under way or next; one posted here this monitor can no longer read is marked unusable, "
        "with why.",
        {200: ("The windows.", MaintenanceList)},
    ),
    Route(
        "POST",
        "/api/v1/maintenance",
        post_maintenance,
        "Plan work on some systems, once or every given day: their subscribers are told "
        "notify_before it starts and when it is over, and failures inside it are told to "
        "customers only once they outlast it by its grace (else maintenance_grace). Every "
        "replica has it.",
        {201: ("The window, under its id.", MaintenanceOut), **_BAD, **_TOO_LARGE},
        body=MaintenanceWindow,
        write=True,
    ),
    Route(
        "DELETE",
        "/api/v1/maintenance/{id}",
        delete_maintenance,
        "Remove a window posted here, whatever it holds (a file's is changed in its file). "
        "Customers told of it hear it is cancelled if it had not begun, else that it is over.",
        {
            200: ("The window removed.", MaintenanceRemoved),
            404: ("No window posted here has this id.", ErrorOut),
            409: ("The window is written in a file.", ErrorOut),
        },
        write=True,
        params=(
            Param(
                "id",
                "path",
                {"type": "string", "maxLength": 100},
                "The window's id, as GET /api/v1/maintenance lists it.",
                required=True,
            ),
        ),
    ),
    Route(
        "GET",
        "/api/v1/status",
        get_status,
        "The monitor's own health: readiness, the last reload and its problems, the store, "
        "the channels.",
        {200: ("The monitor's status.", StatusOut)},
        tags=("operations",),
    ),
    Route(
        "GET",
        "/api/v1/replicas",
        get_replicas,
        "The live replicas sharing the database: what each probes, which one leads, when "
        "each was last heard from.",
        {200: ("The replicas, by name.", ReplicaList)},
        tags=("operations",),
    ),
    Route(
        "POST",
        "/-/reload",
        post_reload,
        "Read the check files and templates again; on any problem keep the running ones.",
        {
            200: ("The new configuration runs.", Reloaded),
            422: ("Refused, with every problem; the previous configuration runs.", ReloadRefused),
        },
        write=True,
        tags=("operations",),
    ),
)


def add_routes(router: web.UrlDispatcher) -> None:
    for route in ROUTES:
        router.add_route(route.method, route.path, route.guarded())


__all__ = ["ROUTES", "Param", "Route", "add_routes"]
