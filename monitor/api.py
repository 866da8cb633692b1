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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.config import Problem
from monitor.incidents import Incident
from monitor.model import UPTIME_WINDOW, Attempt, Health, MessageKind, Person, SystemState
from monitor.store import PENDING, SENT, UNDELIVERABLE, Store, StoreUnavailable

if TYPE_CHECKING:
    from monitor.app import App

APP_KEY: web.AppKey[App] = web.AppKey("monitor")

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB
USERS_BODY_LIMIT = 10 * MiB
MAX_INCIDENT_ID = 2**63 - 1  # SQLite's largest integer: anything above cannot exist
TOKEN_VARIABLE = "MONITOR_API_TOKEN"

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
# No control characters, and no space at either end (an id of "  " is no id).
_TRIMMED = r"^[^\x00-\x20\x7f]([^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"

# request bodies ------------------------------------------------------------------------------


class _Body(BaseModel):
    # strict: "yes" is not a boolean and 7 is not a string; extra fields are refused so a typo
    # ("emial") is an error, not silently dropped data. Nothing is trimmed or coerced: what the
    # published schema refuses, the server refuses.
    model_config = ConfigDict(extra="forbid", strict=True)


SystemName = Annotated[str, Field(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=63)]
Email = Annotated[str, Field(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+$", max_length=254)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ().-]*$", max_length=32)]
WebhookUrl = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]


class User(_Body):
    """A person as an app knows them; contacts are optional (null or absent when unknown)."""

    id: Annotated[str, Field(min_length=1, max_length=200, pattern=_TRIMMED)]
    name: Annotated[str, Field(max_length=200, pattern=_NO_CONTROL)] = ""
    email: Email | None = None
    phone: Phone | None = None
    webhook: WebhookUrl | None = None

    def person(self, systems: Sequence[str] = ()) -> Person:
        return Person(self.id, self.name, self.email, self.phone, self.webhook, tuple(systems))


class Subscriber(User):
    """A person and the systems they subscribe to (told whenever one of those is down)."""

    systems: list[SystemName] = Field(default_factory=list, max_length=1000)


class AttemptIn(_Body):
    """An app reports that ``user`` just failed to do ``action`` on ``system``."""

    system: SystemName
    user: User
    action: Annotated[str, Field(min_length=1, max_length=500, pattern=_TRIMMED)]


class UsersIn(_Body):
    """Subscribers to add or replace, by id. A bare JSON list of subscribers is accepted too."""

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
        description="Share of the last 7 days spent UP, of the time UP or DOWN (0..1); "
        "null before the first decided state."
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


class IncidentDetail(IncidentOut):
    timeline: list[TimelineOut]


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class AttemptAccepted(BaseModel):
    accepted: Literal[True]
    system: str
    open_incidents: list[int] = Field(
        description="Open incidents on this system: the person will be told about these."
    )


class UsersSaved(BaseModel):
    upserted: int
    unknown_systems: list[str] = Field(
        description="Subscribed systems no check file names (kept, in case one is added)."
    )


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


def _field(loc: Sequence[int | str]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def _message(error: Mapping[str, Any]) -> str:
    return "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"])


M = TypeVar("M", bound=BaseModel)


async def parse(
    request: web.Request,
    model: type[M],
    limit: int = BODY_LIMIT,
    wrap_list: str | None = None,
) -> M:
    """The body as ``model``, or ApiError 400 naming the first bad field (413 when too large).

    With ``wrap_list``, a bare JSON list is taken as ``{wrap_list: list}``; its errors are then
    named from the list (``3.email``).
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
        return model.model_validate(data)
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = error["loc"][1:] if bare else error["loc"]
            found.append(FieldError(field=_field(loc), error=_message(error)))
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


def uptimes(store: Store, names: Sequence[str], now: float) -> dict[str, float | None]:
    """Each system's uptime ratio over the last ``UPTIME_WINDOW`` seconds."""
    since = now - UPTIME_WINDOW
    history = store.health_history(since)
    return {name: uptime_ratio(history.get(name, []), since, now) for name in names}


def systems_view(app: App) -> list[SystemOut]:
    """Every configured system, by name, with its live state."""
    names = sorted(app.config.systems)
    ratios = uptimes(app.store, names, app.clock.now())
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
                uptime_7d=ratios[name],
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
    body = await parse(request, AttemptIn)
    if body.system not in app.config.systems:
        raise ApiError(400, f"system: no system is named {body.system!r}", "system")
    person = body.user.person()
    app.notifier.report_attempt(
        Attempt(body.system, person.id, body.action, app.clock.now()), person
    )
    open_ids = [i.id for i in app.store.incidents(open_only=True) if body.system in i.systems]
    return respond(AttemptAccepted(accepted=True, system=body.system, open_incidents=open_ids), 202)


async def post_users(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    body = await parse(request, UsersIn, USERS_BODY_LIMIT, wrap_list="users")
    count = app.store.upsert_people(u.person(u.systems) for u in body.users)
    unknown = sorted({s for u in body.users for s in u.systems} - set(app.config.systems))
    return respond(UsersSaved(upserted=count, unknown_systems=unknown))


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
