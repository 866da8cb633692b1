"""What the monitor knows, as the API answers it: systems with their live state and uptime,
incidents with their message counts and timeline. Read from the ``Services``, never changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from monitor.config import SystemConfig
from monitor.incidents.correlation import Incident
from monitor.model import UPTIME_WINDOW, Explanation, Health, MessageKind, SystemState
from monitor.store import PENDING, SENT, UNDELIVERABLE
from monitor.web.models import (
    UNDELIVERABLE_LISTED,
    Counts,
    ExplanationOut,
    IncidentDetail,
    IncidentOut,
    IncidentSystem,
    SystemOut,
    SystemRef,
    TimelineOut,
    Undeliverable,
)
from monitor.web.services import Services, WebStore


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def utc_or_none(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


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


async def uptime_figures(store: WebStore, names: Sequence[str], now: float) -> dict[str, Uptime]:
    """Each system's uptime over the time the monitor has watched it, at most the last
    ``UPTIME_WINDOW`` seconds: a system first decided an hour ago has an hour's figure.

    Every transition is to UP or DOWN, so a system's first history entry is when its state
    was first decided, or the window's start when an older transition says how it was then
    (pruning always keeps the newest older one, so a long-watched system keeps its 7 days).
    """
    window_start = now - UPTIME_WINDOW
    history = await store.health_history(window_start)
    figures = {}
    for name in names:
        entries = history.get(name, [])
        ratio = uptime_ratio(entries, window_start, now)
        figures[name] = Uptime(ratio, entries[0][0] if ratio is not None else None)
    return figures


async def uptimes(store: WebStore, names: Sequence[str], now: float) -> dict[str, float | None]:
    """Each system's uptime ratio over the time watched, at most ``UPTIME_WINDOW`` seconds."""
    figures = await uptime_figures(store, names, now)
    return {name: figure.ratio for name, figure in figures.items()}


async def systems_view(services: Services, now: float | None = None) -> list[SystemOut]:
    """Every configured system, by name, with its live state (uptime as of ``now``, by default
    the clock's)."""
    systems = services.config().systems
    states = services.states()
    names = sorted(systems)
    figures = await uptime_figures(
        services.store, names, services.clock.now() if now is None else now
    )
    views = []
    for name in names:
        system = systems[name]
        state = states.get(name, SystemState(name))
        views.append(
            SystemOut(
                name=name,
                title=system.title,
                state=state.health,
                since=utc_or_none(state.since),
                last_checked=utc_or_none(state.last_checked),
                last_reason=state.last_reason,
                depends_on=list(system.depends_on),
                every=system.every,
                uptime_7d=figures[name].ratio,
                uptime_since=utc_or_none(figures[name].since),
            )
        )
    return views


def title_of(systems: Mapping[str, SystemConfig], name: str) -> str:
    system = systems.get(name)
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


def explanation_out(explanation: Explanation | None) -> ExplanationOut:
    """The explanation and the promise as the API shows them."""
    if explanation is None:
        return ExplanationOut()
    promise: Literal["none", "open", "kept"] = "none"
    if explanation.promised_at is not None:
        promise = "open" if explanation.kept_at is None else "kept"
    return ExplanationOut(
        text=explanation.text,
        explained_at=utc_or_none(explanation.explained_at),
        final=explanation.told_at is not None,
        promise=promise,
        promised_at=utc_or_none(explanation.promised_at),
        kept_at=utc_or_none(explanation.kept_at),
        reminded_at=utc_or_none(explanation.reminded_at),
    )


async def incident_view(services: Services, incident: Incident) -> IncidentOut:
    systems = services.config().systems
    raw = await services.store.outbox_counts(incident.id)
    explanation = await services.store.explanation(incident.id)
    end = incident.resolved_at if incident.resolved_at is not None else services.clock.now()
    return IncidentOut(
        id=incident.id,
        status="open" if incident.is_open else "resolved",
        opened_at=utc(incident.opened_at),
        resolved_at=utc_or_none(incident.resolved_at),
        duration=max(0.0, end - incident.opened_at),
        cause=SystemRef(name=incident.cause, title=title_of(systems, incident.cause)),
        systems=[
            IncidentSystem(
                name=m.name,
                title=title_of(systems, m.name),
                down_at=utc(m.down_at),
                up_at=utc_or_none(m.up_at),
            )
            for m in incident.members
        ],
        note=incident.note,
        held=incident.held,
        notified_at=utc_or_none(incident.notified_at),
        counts=_counts(raw),
        explanation=explanation_out(explanation),
        messages={kind: dict(by_status) for kind, by_status in raw.items()},
    )


async def incident_detail(services: Services, incident: Incident) -> IncidentDetail:
    store = services.store
    view = await incident_view(services, incident)
    timeline = await store.timeline(incident.id)
    undeliverable = await store.undeliverable(incident.id, UNDELIVERABLE_LISTED)
    return IncidentDetail(
        **view.model_dump(),
        timeline=[TimelineOut(at=utc(e.at), kind=e.kind, text=e.text) for e in timeline],
        undeliverable=[
            Undeliverable(person=person, kind=kind, error=error)
            for person, kind, error in undeliverable
        ],
    )
