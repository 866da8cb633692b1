"""The JSON API under ``/api/v1``, and ``/-/reload``: what on-call and the business's apps call.

Reads are open. Writes need ``Authorization: Bearer $MONITOR_API_TOKEN``, compared in constant
time; with no token configured they answer 403. Bodies are checked by the pydantic models below
(unknown fields refused), which also give ``monitor.openapi`` its schemas, so the published
document and the checks cannot drift apart.

Conventions a caller may rely on:

- Times are ISO 8601 strings in UTC (``2027-01-15T08:00:00Z``); durations are seconds.
- Every error is JSON: ``{"error": what is wrong, "field": "user.email" or null, "errors": [...]}``
  (``errors`` lists every bad field when a body has several).
- Bodies are capped (1 MiB; 10 MiB for ``POST /api/v1/users``): larger ones get 413.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, Field, ValidationError

from monitor.config import Problem
from monitor.incidents.correlation import Incident
from monitor.model import UPTIME_WINDOW, Attempt, Health, MessageKind, SystemState
from monitor.people.rules import (
    TRIMMED,
    KnownSystem,
    Strict,
    Subscriber,
    User,
    dotted,
    explain,
    known_systems,
)
from monitor.store import PENDING, SENT, UNDELIVERABLE, Store, StoreUnavailable

if TYPE_CHECKING:
    from monitor.app import App

APP_KEY: web.AppKey[App] = web.AppKey("monitor")

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
USERS_BODY_LIMIT = 10 * MiB
UNDELIVERABLE_LISTED = 100
MAX_INCIDENT_ID = 2**63 - 1  # SQLite's largest integer: anything above cannot exist
TOKEN_VARIABLE = "MONITOR_API_TOKEN"

# request bodies ------------------------------------------------------------------------------

_Body = Strict  # strict, and unknown fields refused: see monitor.people


class AttemptIn(_Body):
    """An app reports that ``user`` just failed to do ``action`` on ``system`` (one that a
    check file declares)."""

    system: KnownSystem
    user: User
    action: Annotated[str, Field(min_length=1, max_length=500, pattern=TRIMMED)]


class UsersIn(_Body):
    """Subscribers to add or replace, by id. A bare JSON list of subscribers is accepted too.
    Each needs an email, a phone or a webhook, and may only name systems a check file declares.
    """

    users: list[Subscriber] = Field(max_length=100_000)


class NoteIn(_Body):
    """On-call's public note on an incident; with ``send``, everyone told gets it as an update."""

    text: Annotated[str, Field(min_length=1, max_length=5000)]
    send: bool = False


# responses -----------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str | None
    error: str


class ErrorOut(BaseModel):
    """What went wrong; ``field`` names the part of the request at fault, when there is one."""

    error: str
    field: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class SystemOut(BaseModel):
    name: str
    title: str
    state: Health
    since: datetime | None = Field(description="When the current state began.")
    last_checked: datetime | None
    last_reason: str = Field(description="What the last probe found, for on-call.")
    depends_on: list[str]
    every: float = Field(description="Probe interval in seconds.")
    uptime_7d: float | None = Field(
        description="Share of the time since uptime_since spent UP, of the time UP or DOWN "
        "(0..1); null before the first decided state."
    )
    uptime_since: datetime | None = Field(
        description="Where uptime_7d starts: when the monitor first decided this system's "
        "state, or 7 days ago if that was earlier (then uptime_7d covers the whole 7 days); "
        "null with uptime_7d."
    )


class SystemList(BaseModel):
    systems: list[SystemOut]


class SystemRef(BaseModel):
    name: str
    title: str


class IncidentSystem(SystemRef):
    down_at: datetime
    up_at: datetime | None


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    text: str


class Counts(BaseModel):
    """Messages of this incident: ``acknowledged``, ``updated`` and ``resolved`` count those
    sent (one acknowledgement and one resolved message per person); ``undeliverable`` and
    ``pending`` count every kind."""

    acknowledged: int
    updated: int
    resolved: int
    undeliverable: int
    pending: int


class IncidentOut(BaseModel):
    id: int
    status: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    duration: float = Field(description="Seconds from opening to resolution, or to now.")
    cause: SystemRef
    systems: list[IncidentSystem]
    note: str
    held: bool = Field(description="Customer messages are held back until released.")
    notified_at: datetime | None = Field(description="When customers started to be told.")
    counts: Counts
    messages: dict[str, dict[str, int]] = Field(
        description="Outbox items by kind, then by status (pending, sent, undeliverable)."
    )


class Undeliverable(BaseModel):
    person: str = Field(description="The person's id.")
    kind: str
    error: str = Field(description="Why no channel could deliver it (each channel's last try).")


class IncidentDetail(IncidentOut):
    timeline: list[TimelineOut]
    undeliverable: list[Undeliverable] = Field(
        description=f"Who could not be told, and why: the first {UNDELIVERABLE_LISTED} by id "
        "(``counts.undeliverable`` has them all)."
    )


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class AttemptAccepted(BaseModel):
    accepted: Literal[True]
    system: str
    open_incidents: list[int] = Field(
        description="Open incidents on this system: the person will be told about these."
    )


class UsersSaved(BaseModel):
    upserted: int = Field(description="How many people were added or replaced.")


class Reloaded(BaseModel):
    reloaded: Literal[True]


class ProblemOut(BaseModel):
    file: str
    line: int | None
    field: str
    message: str


class ReloadRefused(BaseModel):
    reloaded: Literal[False]
    error: str
    problems: list[ProblemOut]


class ConfigStatus(BaseModel):
    last_reload_successful: bool = Field(
        description="False when the last reload was refused: the previous configuration runs."
    )
    loaded_at: datetime = Field(description="When the running configuration was loaded.")
    refused_at: datetime | None = Field(description="When the last reload was refused, if it was.")
    problems: list[ProblemOut] = Field(description="Why the last reload was refused.")
    systems: int


class StoreStatus(BaseModel):
    writable: bool
    error: str | None = Field(description="Why it does not take writes, if it does not.")


class StatusOut(BaseModel):
    """The monitor's own health, for on-call: everything /readyz only summarises."""

    ready: bool = Field(description="As /readyz: false only while starting or stopping.")
    not_ready: str | None = Field(description="Why it is not ready, if it is not.")
    warnings: list[str] = Field(
        description="What is wrong that does not stop it working, one line each."
    )
    config: ConfigStatus
    store: StoreStatus
    channels: list[str] = Field(
        description="The channels configured (email, sms, webhook), best first; empty: "
        "customers cannot be told."
    )


# plumbing ------------------------------------------------------------------------------------


class ApiError(Exception):
    """Answer the request with ``status`` and a JSON error body."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorOut(error=message, field=field, errors=list(errors))
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return respond(self.body, self.status, self.headers)


def respond(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        model.model_dump(mode="json"),
        status=status,
        headers=headers,
        dumps=partial(json.dumps, ensure_ascii=False),
    )


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ApiError and an unavailable store into JSON answers instead of 500s."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except StoreUnavailable as exc:
        return ApiError(503, f"the database is unavailable: {exc}").response()


def _digest(value: str) -> bytes:
    # Hashing first makes the comparison constant-time in the length too.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def authorize(request: web.Request) -> None:
    """Raise ApiError unless the request carries the configured bearer token."""
    token = request.app[APP_KEY].environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise ApiError(403, f"{TOKEN_VARIABLE} is not set: write endpoints are disabled")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401,
            f"this endpoint needs the header Authorization: Bearer ${TOKEN_VARIABLE}",
            headers={"WWW-Authenticate": 'Bearer realm="monitor"'},
        )
    if not hmac.compare_digest(_digest(given), _digest(token)):
        raise ApiError(
            401,
            "the bearer token is not the configured one",
            headers={"WWW-Authenticate": 'Bearer realm="monitor", error="invalid_token"'},
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, or ApiError 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = ApiError(413, f"the request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


M = TypeVar("M", bound=BaseModel)


async def parse(
    request: web.Request,
    model: type[M],
    limit: int = BODY_LIMIT,
    wrap_list: str | None = None,
    context: dict[str, Any] | None = None,
) -> M:
    """The body as ``model``, or ApiError 400 naming the first bad field (413 when too large).

    With ``wrap_list``, a bare JSON list is taken as ``{wrap_list: list}``; its errors are then
    named from the list (``3.email``). ``context`` goes to the model's validators (the systems
    there are: ``monitor.people.known_systems``).
    """
    raw = await read_body(request, limit)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
    bare = wrap_list is not None and isinstance(data, list)
    if bare:
        data = {wrap_list: data}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False):
            loc = error["loc"][1:] if bare else error["loc"]
            found.append(FieldError(field=dotted(loc) or None, error=explain(error)))
        first = found[0]
        message = f"{first.field}: {first.error}" if first.field else first.error
        raise ApiError(400, message, first.field, errors=found[:50]) from exc


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# views ---------------------------------------------------------------------------------------


def uptime_ratio(history: Sequence[tuple[float, Health]], since: float, now: float) -> float | None:
    """Time UP over time UP or DOWN between ``since`` and ``now``; None when neither was seen.

    ``history`` is ``[(from when, health), ...]`` in time order, as ``Store.health_history``
    gives it; each health lasts until the next entry (the last one until ``now``).
    """
    if not history:
        return None
    up = down = 0.0
    ends = [at for at, _ in history[1:]] + [now]
    for (start, health), end in zip(history, ends, strict=True):
        start, end = max(start, since), min(end, now)
        if end <= start:
            continue
        if health is Health.UP:
            up += end - start
        elif health is Health.DOWN:
            down += end - start
    return up / (up + down) if up + down > 0 else None


@dataclass(frozen=True, slots=True)
class Uptime:
    """A system's uptime ``ratio`` over the time from ``since`` to now; both None before its
    state is first decided."""

    ratio: float | None
    since: float | None


def uptime_figures(store: Store, names: Sequence[str], now: float) -> dict[str, Uptime]:
    """Each system's uptime over the time the monitor has watched it, at most the last
    ``UPTIME_WINDOW`` seconds: a system first decided an hour ago has an hour's figure.

    Every transition is to UP or DOWN, so a system's first history entry is when its state
    was first decided, or the window's start when an older transition says how it was then
    (pruning always keeps the newest older one, so a long-watched system keeps its 7 days).
    """
    window_start = now - UPTIME_WINDOW
    history = store.health_history(window_start)
    figures = {}
    for name in names:
        entries = history.get(name, [])
        ratio = uptime_ratio(entries, window_start, now)
        figures[name] = Uptime(ratio, entries[0][0] if ratio is not None else None)
    return figures


def uptimes(store: Store, names: Sequence[str], now: float) -> dict[str, float | None]:
    """Each system's uptime ratio over the time watched, at most ``UPTIME_WINDOW`` seconds."""
    return {name: figure.ratio for name, figure in uptime_figures(store, names, now).items()}


def systems_view(app: App, now: float | None = None) -> list[SystemOut]:
    """Every configured system, by name, with its live state (uptime as of ``now``, by default
    the clock's)."""
    names = sorted(app.config.systems)
    figures = uptime_figures(app.store, names, app.clock.now() if now is None else now)
    views = []
    for name in names:
        system = app.config.systems[name]
        state = app.monitor.states.get(name, SystemState(name))
        views.append(
            SystemOut(
                name=name,
                title=system.title,
                state=state.health,
                since=_time(state.since),
                last_checked=_time(state.last_checked),
                last_reason=state.last_reason,
                depends_on=list(system.depends_on),
                every=system.every,
                uptime_7d=figures[name].ratio,
                uptime_since=_time(figures[name].since),
            )
        )
    return views


def title_of(app: App, name: str) -> str:
    system = app.config.systems.get(name)
    return system.title if system is not None else name


def _counts(raw: Mapping[str, Mapping[str, int]]) -> Counts:
    def sent(kind: MessageKind) -> int:
        return raw.get(kind.value, {}).get(SENT, 0)

    return Counts(
        acknowledged=sent(MessageKind.ACKNOWLEDGE),
        updated=sent(MessageKind.UPDATE),
        resolved=sent(MessageKind.RESOLVED),
        undeliverable=sum(by_status.get(UNDELIVERABLE, 0) for by_status in raw.values()),
        pending=sum(by_status.get(PENDING, 0) for by_status in raw.values()),
    )


def incident_view(app: App, incident: Incident) -> IncidentOut:
    raw = app.store.outbox_counts(incident.id)
    end = incident.resolved_at if incident.resolved_at is not None else app.clock.now()
    return IncidentOut(
        id=incident.id,
        status="open" if incident.is_open else "resolved",
        opened_at=_at(incident.opened_at),
        resolved_at=_time(incident.resolved_at),
        duration=max(0.0, end - incident.opened_at),
        cause=SystemRef(name=incident.cause, title=title_of(app, incident.cause)),
        systems=[
            IncidentSystem(
                name=m.name,
                title=title_of(app, m.name),
                down_at=_at(m.down_at),
                up_at=_time(m.up_at),
            )
            for m in incident.members
        ],
        note=incident.note,
        held=incident.held,
        notified_at=_time(incident.notified_at),
        counts=_counts(raw),
        messages={kind: dict(by_status) for kind, by_status in raw.items()},
    )


def incident_detail(app: App, incident: Incident) -> IncidentDetail:
    return IncidentDetail(
        **incident_view(app, incident).model_dump(),
        timeline=[
            TimelineOut(at=_at(e.at), kind=e.kind, text=e.text)
            for e in app.store.timeline(incident.id)
        ],
        undeliverable=[
            Undeliverable(person=person, kind=kind, error=error)
            for person, kind, error in app.store.undeliverable(incident.id, UNDELIVERABLE_LISTED)
        ],
    )


# handlers ------------------------------------------------------------------------------------


async def get_systems(request: web.Request) -> web.Response:
    return respond(SystemList(systems=systems_view(request.app[APP_KEY])))


def _choice(request: web.Request, name: str, allowed: Sequence[str]) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    # Length first: int() of thousands of digits is refused by Python itself.
    ok = value.isascii() and value.isdigit() and len(value) <= len(str(high))
    if not ok or not low <= int(value) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}", name)
    return int(value)


async def get_incidents(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    status = _choice(request, "status", ("open", "resolved"))
    limit = _int_query(request, "limit", 50, 1, 500)
    found = app.store.latest_incidents(limit, status)
    return respond(IncidentList(incidents=[incident_view(app, i) for i in found]))


def _incident_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    digits = raw.lstrip("0")
    if not raw.isascii() or not raw.isdigit() or not digits:
        raise ApiError(400, "the incident id must be a positive whole number", "id")
    # Length first: int() of thousands of digits is refused by Python itself.
    if len(digits) > len(str(MAX_INCIDENT_ID)) or int(digits) > MAX_INCIDENT_ID:
        raise ApiError(404, f"no incident {digits[:30]}", "id")
    return int(digits)


def _unknown(number: int) -> ApiError:
    return ApiError(404, f"no incident {number}", "id")


async def get_incident(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    number = _incident_id(request)
    incident = app.store.incident(number)
    if incident is None:
        raise _unknown(number)
    return respond(incident_detail(app, incident))


async def post_attempt(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    body = await parse(request, AttemptIn, context=known_systems(app.config.systems))
    person = body.user.person()
    app.notifier.report_attempt(
        Attempt(body.system, person.id, body.action, app.clock.now()), person
    )
    open_ids = [i.id for i in app.store.incidents(open_only=True) if body.system in i.systems]
    return respond(AttemptAccepted(accepted=True, system=body.system, open_incidents=open_ids), 202)


async def post_users(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    known = known_systems(app.config.systems)
    body = await parse(request, UsersIn, USERS_BODY_LIMIT, wrap_list="users", context=known)
    count = app.store.upsert_people(u.person(u.systems) for u in body.users)
    return respond(UsersSaved(upserted=count))


async def post_note(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    number = _incident_id(request)
    body = await parse(request, NoteIn)
    try:
        incident = await app.notifier.add_note(number, body.text, body.send)
    except KeyError:
        raise _unknown(number) from None
    return respond(incident_detail(app, incident))


async def post_hold(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    number = _incident_id(request)
    try:
        incident = await app.notifier.hold(number)
    except KeyError:
        raise _unknown(number) from None
    return respond(incident_detail(app, incident))


async def post_release(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    number = _incident_id(request)
    try:
        incident = await app.notifier.release(number)
    except KeyError:
        raise _unknown(number) from None
    return respond(incident_detail(app, incident))


def _problem(problem: Problem) -> ProblemOut:
    return ProblemOut(
        file=problem.file, line=problem.line, field=problem.field, message=problem.message
    )


async def get_status(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    not_ready = app.ready()
    store_error = app.store_problem()
    return respond(
        StatusOut(
            ready=not_ready is None,
            not_ready=not_ready,
            warnings=app.warnings(),
            config=ConfigStatus(
                last_reload_successful=not app.reload_problems,
                loaded_at=_at(app.config_loaded_at),
                refused_at=_time(app.reload_refused_at),
                problems=[_problem(p) for p in app.reload_problems],
                systems=len(app.config.systems),
            ),
            store=StoreStatus(writable=store_error is None, error=store_error),
            channels=app.delivery.channels.configured(),
        )
    )


async def post_reload(request: web.Request) -> web.Response:
    problems = request.app[APP_KEY].reload()
    if problems:
        refused = ReloadRefused(
            reloaded=False,
            error="the configuration was refused; the previous one keeps running",
            problems=[_problem(p) for p in problems],
        )
        return respond(refused, 422)
    return respond(Reloaded(reloaded=True))


# the route table: the router and the OpenAPI document are both built from it ----------------


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
        "GET",
        "/api/v1/status",
        get_status,
        "The monitor's own health: readiness, the last reload and its problems, the store, "
        "the channels.",
        {200: ("The monitor's status.", StatusOut)},
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


__all__ = ["APP_KEY", "ROUTES", "ApiError", "Route", "add_routes", "errors_as_json"]
