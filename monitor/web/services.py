"""The boundary between the web and the running monitor: everything a route may use, and nothing
else.

``monitor.app`` builds one ``Services`` from its parts and puts it in the aiohttp application
under ``SERVICES``; handlers take what they need from it. The web never sees the app, the
probing runtime, the notifier or the delivery: only these reads and these few operations, so it
imports nothing above itself and a test can hand it real parts of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from monitor.config import Config, MaintenanceWindow, Problem
from monitor.incidents.correlation import Incident
from monitor.maintenance import PublicWindow, Schedule, UnusableWindow, Window
from monitor.model import Attempt, Clock, Explanation, Health, Person, SystemState
from monitor.store import ReplicaRecord, TimelineEntry
from monitor.store.audience import AudienceReads
from monitor.store.types import AffectedCount, Alert, MessageTally
from monitor.subscriptions.decisions import Desk


class WebStore(AudienceReads, Protocol):
    """What the web asks the store (``monitor.store.Store`` has all of it): reads, and the one
    write ``POST /api/v1/users`` makes. Awaited, as every store call is."""

    async def health_history(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]: ...
    async def health_changes(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]: ...
    async def incident(self, incident_id: int) -> Incident | None: ...
    async def incidents(
        self,
        open_only: bool = False,
        resolved_since: float | None = None,
        opened_before: float | None = None,
    ) -> list[Incident]: ...
    async def latest_incidents(
        self, limit: int, status: str | None = None, before: int | None = None
    ) -> list[Incident]: ...
    async def timeline(self, incident_id: int) -> list[TimelineEntry]: ...
    # What the status page shows of an incident: its notes and explanation.
    async def public_timeline(self, incident_id: int) -> list[TimelineEntry]: ...
    async def explanation(self, incident_id: int) -> Explanation | None: ...
    async def outbox_counts(self, incident_id: int | None = None) -> dict[str, dict[str, int]]: ...
    async def undeliverable(self, incident_id: int, limit: int) -> list[tuple[str, str, str]]: ...
    # The post-incident report's reads (GET /api/v1/incidents/ID/report).
    async def message_tally(self, incident_id: int) -> MessageTally: ...
    async def alert(self, incident_id: int) -> Alert | None: ...
    async def audience(self, incident_id: int) -> AffectedCount | None: ...
    async def upsert_people(self, people: Iterable[Person]) -> int: ...


class IncidentActions(Protocol):
    """What the apps and on-call ask of the notifier (``monitor.notify.Notifier``): it owns the
    incidents' state, so these go through it, never straight to the store. Those taking an
    incident id raise KeyError for an incident that does not exist."""

    async def report_attempt(self, attempt: Attempt, person: Person) -> None: ...
    async def add_note(self, incident_id: int, text: str, send: bool) -> Incident: ...
    async def hold(self, incident_id: int) -> Incident: ...
    async def release(self, incident_id: int) -> Incident: ...
    async def explain(self, incident_id: int, text: str) -> Incident:
        """Raises ``ExplanationFinal`` (``monitor.store``) once it has gone to customers."""


class MaintenanceActions(Protocol):
    """What on-call asks of planned work (``monitor.notify.Notifier``): every window there is
    (the files' and the API's, read from the store so every replica has the same), and adding
    or removing one through the API."""

    async def read_schedule(self) -> Schedule: ...
    async def add_window(self, spec: MaintenanceWindow) -> Window: ...
    async def remove_window(self, window_id: int) -> Window | UnusableWindow | None:
        """The window removed (one the monitor cannot read too); None when the API has no
        window of that id."""


async def _no_planned_work() -> Sequence[PublicWindow]:
    return ()


@dataclass(frozen=True, slots=True)
class LastReload:
    """The running configuration's story: when it was loaded, and the reload refused since."""

    loaded_at: float
    refused_at: float | None
    problems: Sequence[Problem]  # why that reload was refused; empty when none was


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """The replicas sharing the database, as this one (``this``) sees them."""

    this: str
    takeover: float  # seconds without a heartbeat after which a replica is dead
    replicas: Sequence[ReplicaRecord]  # the live ones, by name


@dataclass(frozen=True, slots=True)
class Services:
    """The parts of the running monitor the web uses. What changes while it runs (the
    configuration after a reload, the live states) is a getter, read at each request."""

    clock: Clock
    store: WebStore
    incidents: IncidentActions
    config: Callable[[], Config]  # the configuration running now
    states: Callable[[], Mapping[str, SystemState]]  # each system's live state, by name
    reload: Callable[[], Sequence[Problem]]  # empty when the new configuration runs
    ready: Callable[[], str | None]  # None when able to do its job, else why not
    store_problem: Callable[[], Awaitable[str | None]]  # None while the store takes writes
    # What is wrong but lets it work, a line each, given what ``store_problem`` just said (asking
    # the store is a write, a round trip on a server: once a request).
    warnings: Callable[[str | None], Sequence[str]]
    last_reload: Callable[[], LastReload]
    channels: Callable[[], Sequence[str]]  # the channels configured, best first
    metrics_page: Callable[[], Awaitable[bytes]]  # the /metrics page, Prometheus' text format
    replicas: Callable[[], Awaitable[ReplicaView]]  # read from the store at each request
    api_token: str  # what write routes need as their bearer token; "" disables them
    # Planned work: on-call's windows (/api/v1/maintenance), and what the status page may show
    # of them (public fields only: titles, start and end, the customers' note).
    maintenance: MaintenanceActions | None = None
    planned_work: Callable[[], Awaitable[Sequence[PublicWindow]]] = _no_planned_work
    # Self-service subscriptions (the status page's form, the links in messages); None when
    # they are off (no public_url or MONITOR_LINK_SECRET: the form is not shown).
    subscriptions: Callable[[], Desk | None] = lambda: None


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
