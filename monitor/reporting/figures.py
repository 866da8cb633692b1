"""An incident's post-incident report, as figures: a pure function of the records the store
keeps (the incident, its timeline, explanation and on-call alert, its messages tallied, who
could not be told) and of the moment it is made. Nothing here reads, writes or waits.

The figures, and why each is what it is:

- **Duration per system**: from its ``down_at`` to its ``up_at`` (to the moment the report is
  made while it is still down). A system that flapped keeps its first ``down_at``.
- **The first failure**: the earliest of the incident's opening and its systems' ``down_at``.
  They are the same moment (the first system found DOWN, after its ``fail_after`` failed probes,
  opens the incident) unless another replica's failure reached the incident late: then that
  system's earlier ``down_at`` is the first failure, and the report says so.
- **Time to acknowledge**: for each person acknowledged, from the first failure to when their
  acknowledgement was sent; the first, the last, p50 and p99 by the nearest rank (the delay by
  which half, and 99 in 100, of them had been told).
- **People affected**: the subscribers of its systems and those who reported a failed attempt
  on one of them, each once, as the notifier counts them, counted when the fix was told (a
  count made later would use the subscriptions of then); while it is open, or for an incident
  resolved before the monitor kept the count, counted as the report is made. Of them, those
  who had unsubscribed are counted apart: they are told nothing, or only of the failure they
  reported (``subscriptions.unsubscribed``).
- **Messages** by kind and channel as the outbox holds them. A message withheld over
  ``max_messages_per_person_per_day`` is not kept (the person is looked at again at the next
  fan-out); each fan-out's count is on the timeline.
- **The promise**: ``explained before the fix`` (the resolved messages carried it), ``kept``
  (every explanation message decided), ``open`` (owed since the resolved messages promised it)
  or ``none``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.incidents.correlation import Incident
from monitor.model import Explanation, MessageKind
from monitor.store.types import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    AffectedCount,
    Alert,
    MessageTally,
    TimelineEntry,
)

Promise = Literal["explained before the fix", "kept", "open", "none"]

# The order kinds and channels are shown in: as a person meets them, and best channel first.
KIND_ORDER = tuple(kind.value for kind in MessageKind)
CHANNEL_ORDER = ("email", "sms", "webhook")
ALERTED = "alerted"  # the timeline kind of on-call's first alert, which the store keeps apart


@dataclass(frozen=True, slots=True)
class SystemDown:
    """One system's part in the incident."""

    name: str
    title: str
    down_at: float
    up_at: float | None  # None: still down when the report was made
    down_for: float  # seconds, to up_at or to the report's moment
    cause: bool  # the incident's likely cause


@dataclass(frozen=True, slots=True)
class KindCount:
    """The messages of one kind: sent by each channel, waiting, and undeliverable."""

    kind: str
    sent: Mapping[str, int]  # by channel
    pending: int
    undeliverable: int

    @property
    def total(self) -> int:
        return sum(self.sent.values()) + self.pending + self.undeliverable


@dataclass(frozen=True, slots=True)
class FirstFailure:
    """Where the time to acknowledge is counted from: ``at``, when ``system`` was found DOWN;
    ``before_opening`` when that came before the incident opened (a failure that reached it
    late)."""

    at: float
    system: str
    before_opening: bool


@dataclass(frozen=True, slots=True)
class Acknowledging:
    """Seconds from the first failure to the acknowledgements: None with nobody acknowledged."""

    people: int
    first: float | None
    p50: float | None
    p99: float | None
    last: float | None


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A person no channel could reach: the kinds of message they missed and the last error."""

    person: str
    kinds: tuple[str, ...]
    error: str


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a post-incident report says, as figures: times are epoch seconds and
    durations seconds, for a renderer to word."""

    incident_id: int
    status: Literal["open", "resolved"]
    opened_at: float
    resolved_at: float | None
    duration: float  # to the resolution, or to ``made_at``
    made_at: float
    cause: str
    cause_title: str
    systems: tuple[SystemDown, ...]
    affected: int  # people the incident affects, as the notifier counts them
    affected_unsubscribed: int  # of them, those who had unsubscribed
    affected_counted: Literal["at the fix", "now"]  # when ``affected`` was counted
    acknowledged: int  # people sent an acknowledgement
    undeliverable_people: int  # people with a message no channel could deliver
    messages: tuple[KindCount, ...]
    channels: tuple[str, ...]  # the channels that sent any message, best first
    first_failure: FirstFailure
    acknowledging: Acknowledging
    unreachable: tuple[Unreachable, ...]  # the first of them, by person id
    alert: Alert | None  # on-call's first alert
    notes: tuple[TimelineEntry, ...]  # on-call's notes, as the timeline has them
    explanation: Explanation
    promise: Promise
    timeline: tuple[TimelineEntry, ...]  # with on-call's first alert in its place


def build_report(
    incident: Incident,
    *,
    titles: Mapping[str, str],
    timeline: Sequence[TimelineEntry],
    explanation: Explanation | None,
    alert: Alert | None,
    tally: MessageTally,
    undeliverable: Iterable[tuple[str, str, str]],
    affected: AffectedCount,
    affected_at_fix: bool,
    now: float,
) -> Report:
    """The report of ``incident`` as of ``now``. ``titles`` names each system's title (a
    system no longer configured is shown by its name), ``undeliverable`` is the store's
    ``(person, kind, why)`` by person, ``affected`` the people it affects
    (``affected_at_fix``: as counted when its fix was told, else now)."""
    end = incident.resolved_at if incident.resolved_at is not None else now
    messages = _by_kind(tally.counts)
    explanation = explanation or Explanation(incident.id)
    first = first_failure(incident)
    return Report(
        incident_id=incident.id,
        status="open" if incident.is_open else "resolved",
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        duration=max(0.0, end - incident.opened_at),
        made_at=now,
        cause=incident.cause,
        cause_title=titles.get(incident.cause, incident.cause),
        systems=tuple(
            SystemDown(
                name=m.name,
                title=titles.get(m.name, m.name),
                down_at=m.down_at,
                up_at=m.up_at,
                down_for=max(0.0, (m.up_at if m.up_at is not None else now) - m.down_at),
                cause=m.name == incident.cause,
            )
            for m in incident.members
        ),
        affected=affected.people,
        affected_unsubscribed=affected.unsubscribed,
        affected_counted="at the fix" if affected_at_fix else "now",
        acknowledged=len(tally.acknowledged_at),
        undeliverable_people=tally.undeliverable_people,
        messages=messages,
        channels=_channels(tally.counts),
        first_failure=first,
        acknowledging=acknowledging([at - first.at for at in tally.acknowledged_at]),
        unreachable=_unreachable(undeliverable),
        alert=alert,
        notes=tuple(e for e in timeline if e.kind == "note"),
        explanation=explanation,
        promise=promise_of(explanation),
        timeline=_with_alert(timeline, alert),
    )


def first_failure(incident: Incident) -> FirstFailure:
    """The earliest of the incident's opening and its systems' failures (see the module). The
    system is the one that failed first, which may not be the likely cause: a system it
    depends on may have failed after it."""
    earliest = min(incident.members, key=lambda m: (m.down_at, m.name), default=None)
    if earliest is None:
        return FirstFailure(incident.opened_at, incident.cause, before_opening=False)
    before = earliest.down_at < incident.opened_at
    return FirstFailure(min(earliest.down_at, incident.opened_at), earliest.name, before)


def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The ``percent`` percentile of ``ordered`` (ascending, not empty) by the nearest rank:
    the smallest value at least ``percent`` in 100 of them are at or below."""
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return ordered[rank - 1]


def acknowledging(delays: Sequence[float]) -> Acknowledging:
    """The first, p50, p99 and last of ``delays``, in ascending order (as the store gives the
    acknowledgements' times)."""
    if not delays:
        return Acknowledging(0, None, None, None, None)
    return Acknowledging(
        people=len(delays),
        first=delays[0],
        p50=nearest_rank(delays, 50),
        p99=nearest_rank(delays, 99),
        last=delays[-1],
    )


def promise_of(explanation: Explanation) -> Promise:
    """What became of the promise to explain (see the module)."""
    if explanation.promised_at is not None:
        return "open" if explanation.kept_at is None else "kept"
    if explanation.text and explanation.told_at is not None:
        return "explained before the fix"
    return "none"


class _Rank:
    """A sort key: the names of ``known`` in their order, then any other by name."""

    def __init__(self, known: Sequence[str]) -> None:
        self._place = {name: i for i, name in enumerate(known)}

    def __call__(self, name: str) -> tuple[int, str]:
        return (self._place.get(name, len(self._place)), name)


def _by_kind(counts: Mapping[tuple[str, str, str], int]) -> tuple[KindCount, ...]:
    sent: dict[str, dict[str, int]] = {}
    other: dict[str, dict[str, int]] = {}  # by status
    for (kind, status, channel), n in counts.items():
        into, key = (sent, channel or "unknown") if status == SENT else (other, status)
        by = into.setdefault(kind, {})
        by[key] = by.get(key, 0) + n
    channel_rank = _Rank(CHANNEL_ORDER)
    return tuple(
        KindCount(
            kind=kind,
            sent=dict(sorted(sent.get(kind, {}).items(), key=lambda i: channel_rank(i[0]))),
            pending=other.get(kind, {}).get(PENDING, 0),
            undeliverable=other.get(kind, {}).get(UNDELIVERABLE, 0),
        )
        for kind in sorted(sent.keys() | other.keys(), key=_Rank(KIND_ORDER))
    )


def _channels(counts: Mapping[tuple[str, str, str], int]) -> tuple[str, ...]:
    found = {channel or "unknown" for _, status, channel in counts if status == SENT}
    return tuple(sorted(found, key=_Rank(CHANNEL_ORDER)))


def _unreachable(rows: Iterable[tuple[str, str, str]]) -> tuple[Unreachable, ...]:
    """The store's undeliverable messages (by person, then as decided) as one line a person:
    the kinds they missed and the last message's error."""
    people: dict[str, tuple[list[str], str]] = {}
    for person, kind, why in rows:
        kinds, _ = people.get(person, ([], ""))
        if kind not in kinds:
            kinds.append(kind)
        people[person] = (kinds, why)
    return tuple(Unreachable(p, tuple(kinds), why) for p, (kinds, why) in people.items())


def _with_alert(
    timeline: Sequence[TimelineEntry], alert: Alert | None
) -> tuple[TimelineEntry, ...]:
    if alert is None:
        return tuple(timeline)
    said = "on-call alerted" + (f" by {', '.join(alert.routes)}" if alert.routes else "")
    entry = TimelineEntry(alert.at, ALERTED, said)
    # After the entries of the same moment: the opening it was alerted of comes first.
    place = next((i for i, e in enumerate(timeline) if e.at > alert.at), len(timeline))
    return (*timeline[:place], entry, *timeline[place:])
