"""From incidents to decisions: who is told what, when, written to the outbox before any send.

Transitions come in from the monitor; ``tick(now)`` does the timed work (``notify_after``,
``update_every``) and the fan-outs. Every decision is committed to the store, with what each
person has now been told, before delivery sees it; a restart re-runs the fan-out, and the
outbox's unique keys and the ``told`` record make it send nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice

from monitor.config import MonitorSettings
from monitor.incidents.audience import attempts_window, recipients
from monitor.incidents.correlation import Change, Correlator, Folded, Incident, Step
from monitor.logs import event
from monitor.model import (
    Attempt,
    Clock,
    Health,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    SystemInfo,
    SystemState,
    Transition,
)
from monitor.notify.composer import Composer
from monitor.store import OutboxItem, Store, StoreUnavailable, TimelineEntry

log = logging.getLogger("monitor.notifier")
DAY = 86400.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

# Told once per incident and kind of change in a pass over the transitions, with the systems
# that made that change: a mass failure is one "joined" with thousands of systems.
IncidentListener = Callable[[Incident, Change, Sequence[str]], None]
_CORRELATE_CHUNK = 1000  # transitions folded per read and commit of the incidents
_LOGGED_SYSTEMS = 20  # an incident's systems named in a log line; the rest are counted


def outbox_key(incident_id: int, kind: str, person_id: str) -> str:
    """The outbox key, which is also the Message-ID's left part: ``incident-7.acknowledge.u1``.

    Characters a Message-ID cannot carry are written as ``=XX``, so distinct ids stay distinct.
    """
    safe = _UNSAFE.sub(lambda m: "".join(f"={b:02X}" for b in m.group().encode()), person_id)
    return f"incident-{incident_id}.{kind}.{safe}"


def _logged_systems(incident: Incident) -> list[str]:
    names = [m.name for m in incident.members[:_LOGGED_SYSTEMS]]
    if len(incident.members) > _LOGGED_SYSTEMS:
        names.append(f"and {len(incident.members) - _LOGGED_SYSTEMS} more")
    return names


def channels_of(person: Person) -> tuple[str, ...]:
    """The ways to reach ``person``, best first: email, then SMS, then their webhook."""
    found = []
    if person.email:
        found.append(f"email:{person.email}")
    if person.phone:
        found.append(f"sms:{person.phone}")
    if person.webhook:
        found.append(f"webhook:{person.webhook}")
    return tuple(found)


# The changes that can make more people affected, so that everyone is looked through again.
# A member passing again (or failing again) leaves the audience as it was: looking through
# 100,000 people told already only to send nothing is seconds of work at each recovery.
_NEW_AUDIENCE = frozenset({Change.OPENED, Change.JOINED, Change.REOPENED})
_LOOKUP_GROUP = 500  # people whose record is read in one go during a fan-out


@dataclass
class Notifier:
    store: Store
    composer: Composer
    settings: MonitorSettings
    systems: dict[str, SystemInfo]
    correlator: Correlator
    clock: Clock
    # Decisions committed together. After each person (a decision takes ~0.25 ms) the
    # notifier yields to the event loop: probes then start on time, and the sends of the
    # decisions already committed go on meanwhile. Yielding only once a batch, the loop was
    # held ~20 ms at a time and each SMTP reply waited that long, so a fan-out sent almost
    # nothing until everything was decided (in the 20,000-people benchmark, 184 sent while
    # deciding instead of ~11,700).
    batch_size: int = 64
    on_incident: list[IncidentListener] = field(default_factory=list)
    on_decided: list[Callable[[list[OutboxItem]], None]] = field(default_factory=list)
    _pending: list[Transition] = field(default_factory=list)
    _dirty: set[int] | None = None  # None: not yet known, so every open incident is re-checked
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def reconfigure(
        self,
        settings: MonitorSettings,
        systems: dict[str, SystemInfo],
        composer: Composer,
        correlator: Correlator,
    ) -> None:
        """Use a reloaded configuration from the next decision on."""
        self.settings, self.systems, self.composer, self.correlator = (
            settings,
            systems,
            composer,
            correlator,
        )

    # inputs -------------------------------------------------------------------------------

    def on_transition(self, transition: Transition) -> None:
        """Take a transition from the monitor; the next tick correlates it."""
        self._pending.append(transition)

    def resume(self, states: Iterable[SystemState]) -> None:
        """After a restart, queue what a crash cut off between saving a transition and
        applying it to the incidents (both are remembered, but not in one transaction): a
        system DOWN that no open incident counts down, or UP while an open incident still does.
        The next tick correlates them as if they had just happened, at their original time.

        A saved state older than what the incidents show (the store refused the transition,
        then took the incident, then the process died) is stale, not missed: it is left alone.
        """
        decided = [
            (state, state.since)
            for state in states
            if state.since is not None and state.health is not Health.UNKNOWN
        ]
        if not decided:
            return
        down_at: dict[str, float] = {}  # down in an open incident, since
        up_at: dict[str, float] = {}  # the latest recovery an incident recorded
        for incident in self.store.incidents(resolved_since=min(at for _, at in decided)):
            for m in incident.members:
                if incident.is_open and m.down:
                    down_at[m.name] = m.down_at
                if m.up_at is not None:
                    up_at[m.name] = max(m.up_at, up_at.get(m.name, m.up_at))
        missed = []
        for state, at in decided:
            name = state.system
            if state.health is Health.DOWN and name not in down_at:
                if name in up_at and at <= up_at[name]:
                    continue
                previous, streak = Health.UP, state.fail_streak
            elif state.health is Health.UP and name in down_at:
                if at < down_at[name]:
                    continue
                previous, streak = Health.DOWN, state.pass_streak
            else:
                continue
            missed.append(Transition(name, at, previous, state.health, state.last_reason, streak))
        if missed:
            event(
                log,
                "resuming transitions cut off by a restart",
                logging.WARNING,
                transitions=[f"{t.system} {t.current.value}" for t in missed],
            )
        self._pending[:0] = sorted(missed, key=lambda t: (t.at, t.system))

    def report_attempt(self, attempt: Attempt, person: Person) -> None:
        """An app says ``person`` just failed on ``attempt.system``: remember it; if an open
        incident covers that system, they will be told on the next tick."""
        self.store.add_attempt(attempt, person)
        for incident in self.store.incidents(open_only=True):
            if attempt.system in incident.systems:
                self._mark(incident.id)

    async def add_note(self, incident_id: int, text: str, send: bool) -> Incident:
        """On-call's note on an incident; with ``send``, everyone told gets it as an update."""
        async with self._lock:
            return self._add_note(incident_id, text, send)

    def _add_note(self, incident_id: int, text: str, send: bool) -> Incident:
        incident = self._incident(incident_id)
        now = self.clock.now()
        incident = replace(incident, note=text)
        if send and incident.is_open and incident.notified_at is not None:
            incident = self._start_round(incident, Reason.NOTE, now)
        self.store.save_incident(incident)
        self.store.add_timeline(incident.id, now, "note", text + (" (sent)" if send else ""))
        return incident

    async def hold(self, incident_id: int) -> Incident:
        """Keep customer messages for this incident back until ``release``."""
        async with self._lock:
            incident = replace(self._incident(incident_id), held=True)
            self.store.save_incident(incident)
            self.store.add_timeline(incident.id, self.clock.now(), "held", "customer messages held")
            return incident

    async def release(self, incident_id: int) -> Incident:
        """Let customer messages for this incident go out (from the next tick)."""
        async with self._lock:
            incident = replace(self._incident(incident_id), held=False)
            self.store.save_incident(incident)
            self.store.add_timeline(
                incident.id, self.clock.now(), "released", "customer messages released"
            )
            self._mark(incident.id)
            return incident

    def _incident(self, incident_id: int) -> Incident:
        incident = self.store.incident(incident_id)
        if incident is None:
            raise KeyError(incident_id)
        return incident

    def _mark(self, incident_id: int) -> None:
        if self._dirty is not None:
            self._dirty.add(incident_id)

    # correlation --------------------------------------------------------------------------

    async def _correlate_pending(self) -> None:
        if not self._pending:
            return
        # Told once the pass has saved them: one notice and one log line per incident and kind
        # of change (10,000 systems failing at once are one "joined"; the timeline keeps each).
        incidents: dict[int, Incident] = {}
        changed: dict[tuple[int, Change], list[str]] = {}
        # Read once a pass: each chunk takes the incidents as the one before left them (the
        # lock keeps everyone else from changing them meanwhile). A transition arriving during
        # the pass is later than these, so the window read covers it too.
        earliest = min(t.at for t in self._pending)
        try:
            known = {
                incident.id: incident
                for incident in self.store.incidents(
                    resolved_since=earliest - self.correlator.window
                )
            }
            while self._pending:
                chunk = self._pending[:_CORRELATE_CHUNK]
                folded = self._correlate(chunk, list(known.values()))
                del self._pending[: len(chunk)]
                known.update((incident.id, incident) for incident in folded.incidents)
                incidents.update((incident.id, incident) for incident in folded.incidents)
                for step in folded.steps:
                    if step.change in _NEW_AUDIENCE:
                        self._mark(step.incident_id)
                    key = (step.incident_id, step.change)
                    changed.setdefault(key, []).append(step.transition.system)
                await asyncio.sleep(0)
        except StoreUnavailable as exc:
            event(log, "incident update waits for the store", logging.WARNING, error=str(exc))
        finally:
            self._tell(incidents, changed)

    def _correlate(self, transitions: Sequence[Transition], known: Sequence[Incident]) -> Folded:
        """Fold a chunk of transitions into the known incidents and save what they changed."""
        issued: list[int] = []

        def new_id() -> int:
            # Nothing of the batch is saved yet: the store's next id is only the first one.
            issued.append(issued[-1] + 1 if issued else self.store.new_incident_id())
            return issued[-1]

        folded = self.correlator.fold(
            transitions, known, new_id, hold=self.settings.customer_messages == "confirm"
        )
        if folded.steps:
            timeline = [
                (
                    step.incident_id,
                    TimelineEntry(step.transition.at, step.change.value, self._said(step)),
                )
                for step in folded.steps
            ]
            self.store.save_incidents(folded.incidents, timeline)
        return folded

    def _tell(
        self, incidents: dict[int, Incident], changed: dict[tuple[int, Change], list[str]]
    ) -> None:
        for (incident_id, change), systems in changed.items():
            incident = incidents[incident_id]
            event(
                log,
                f"incident {change.value}",
                incident=incident_id,
                system=systems[0] if len(systems) == 1 else f"{len(systems):,} systems",
                cause=incident.cause,
                systems=_logged_systems(incident),
            )
            for listen in self.on_incident:
                listen(incident, change, systems)

    def _said(self, step: Step) -> str:
        name = step.transition.system
        title = self.systems.get(name, SystemInfo(name, name)).title
        return f"{title}: {step.transition.reason}"

    # timed work and fan-out ---------------------------------------------------------------

    async def tick(self) -> None:
        """Do what is due now: first acknowledgements, periodic updates, fan-outs, resolutions."""
        async with self._lock:
            await self._correlate_pending()
            now = self.clock.now()
            known = self.store.incidents(resolved_since=now - DAY)
            if self._dirty is None:
                self._dirty = {i.id for i in known}
            for incident in known:
                if incident.is_open:
                    await self._tick_open(incident, now)
                elif incident.resolution_told_at is None or (
                    incident.resolved_at is not None
                    and incident.resolution_told_at < incident.resolved_at
                ):
                    await self._tell_resolved(incident, now)
                self._dirty.discard(incident.id)

    async def _tick_open(self, incident: Incident, now: float) -> None:
        if incident.held or now - incident.opened_at < self.settings.notify_after:
            return
        assert self._dirty is not None
        if incident.notified_at is None:
            incident = replace(incident, notified_at=now, last_update_at=now)
            self.store.save_incident(incident)
            self._dirty.add(incident.id)
        last = incident.last_update_at or incident.notified_at or now
        if incident.pending_round is None and now - last >= self.settings.update_every:
            incident = self._start_round(incident, Reason.PERIODIC, now)
            self.store.save_incident(incident)
        if incident.id in self._dirty or incident.pending_round is not None:
            incident = await self._fan_out(incident, now)
            if incident.pending_round is not None:
                incident = replace(incident, pending_round=None)
                self.store.save_incident(incident)

    @staticmethod
    def _start_round(incident: Incident, reason: Reason, now: float) -> Incident:
        return replace(
            incident,
            pending_round=reason.value,
            update_seq=incident.update_seq + 1,
            last_update_at=now,
        )

    def _audience(self, incident: Incident) -> Iterable[Recipient]:
        lookback = self.settings.attempt_lookback
        attempts = self.store.attempts(incident.systems, attempts_window(incident, lookback))
        people = self.store.people_by_ids(sorted({a.person_id for a in attempts}))
        return recipients(
            incident,
            self.systems,
            self.store.people_for_systems(incident.systems),
            attempts,
            people,
            lookback,
        )

    def audience_size(self, incident: Incident) -> int:
        """How many people ``incident`` affects now."""
        until = incident.resolved_at if incident.resolved_at is not None else float("inf")
        return self.store.audience_count(
            incident.systems, attempts_window(incident, self.settings.attempt_lookback), until
        )

    async def _fan_out(self, incident: Incident, now: float) -> Incident:
        """Decide every message this incident owes now; return the incident as saved."""
        limit = self.settings.max_messages_per_person_per_day
        view = self._view(incident)
        grew_seq: int | None = None
        batch: list[OutboxItem] = []
        batch_told: dict[str, frozenset[str]] = {}
        counts = {"acknowledged": 0, "updated": 0, "over the daily limit": 0}
        audience = iter(self._audience(incident))
        # What the people were told and sent today is read a group at a time: for everyone at
        # once it is two dicts of 100,000 entries held through the fan-out, and a day's outbox
        # counted in one query that holds the loop for a third of a second.
        while group := list(islice(audience, _LOOKUP_GROUP)):
            ids = [recipient.person.id for recipient in group]
            told = self.store.told_about(incident.id, ids)
            sent_today = self.store.message_counts(ids, now - DAY)
            for recipient in group:
                # A turn per person, told already or not: a pass over 100,000 people who are
                # all told would otherwise hold the loop (and every probe) for seconds.
                await asyncio.sleep(0)
                person_id = recipient.person.id
                affected = frozenset(s.name for s in recipient.affected)
                before = told.get(person_id)
                if before is None:
                    kind, reason, label = MessageKind.ACKNOWLEDGE, Reason.FIRST, "acknowledge"
                elif not affected <= before:
                    if grew_seq is None:
                        incident = replace(incident, update_seq=incident.update_seq + 1)
                        self.store.save_incident(incident)
                        grew_seq = incident.update_seq
                    kind, reason, label = MessageKind.UPDATE, Reason.GREW, f"update-{grew_seq}"
                elif incident.pending_round is not None:
                    kind, reason = MessageKind.UPDATE, Reason(incident.pending_round)
                    label = f"update-{incident.update_seq}"
                else:
                    continue
                if sent_today.get(person_id, 0) >= limit:
                    counts["over the daily limit"] += 1
                    continue
                counts["acknowledged" if kind is MessageKind.ACKNOWLEDGE else "updated"] += 1
                batch.append(self._item(incident, view, recipient, kind, reason, label, now))
                batch_told[person_id] = affected | (before or frozenset())
                if len(batch) >= self.batch_size:
                    self._decide(batch, batch_told, incident.id)
                    batch, batch_told = [], {}
        self._decide(batch, batch_told, incident.id)
        self._note_counts(incident.id, now, counts)
        return incident

    async def _tell_resolved(self, incident: Incident, now: float) -> None:
        view = self._view(incident)
        lookback = self.settings.attempt_lookback
        attempts = self.store.attempts(incident.systems, attempts_window(incident, lookback))
        attempts_of: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            attempts_of.setdefault(attempt.person_id, []).append(attempt)
        down_at = {m.name: m.down_at for m in incident.members}
        sent = 0
        batch: list[OutboxItem] = []
        # A page of people at a time: the whole record of who was told, for 100,000 people,
        # is ~30 MB held for the length of the fan-out.
        for told in self.store.told_pages(incident.id):
            people = self.store.people_by_ids(list(told))
            for person_id, systems_told in told.items():
                await asyncio.sleep(0)
                systems = sorted(systems_told, key=lambda n: (down_at.get(n, now), n))
                recipient = Recipient(
                    person=people.get(person_id, Person(id=person_id)),
                    affected=tuple(self.systems.get(n, SystemInfo(n, n)) for n in systems),
                    attempts=tuple(attempts_of.get(person_id, ())),
                    affected_since=min((down_at.get(n, now) for n in systems), default=now),
                )
                batch.append(
                    self._item(
                        incident,
                        view,
                        recipient,
                        MessageKind.RESOLVED,
                        Reason.RESOLVED,
                        "resolved",
                        now,
                    )
                )
                if len(batch) >= self.batch_size:
                    sent += self._decide(batch, {}, incident.id)
                    batch = []
        sent += self._decide(batch, {}, incident.id)
        self.store.save_incident(replace(incident, resolution_told_at=now))
        if sent:
            self.store.add_timeline(incident.id, now, "messages", f"resolved: {sent} people")

    def _decide(
        self, batch: list[OutboxItem], told: dict[str, frozenset[str]], incident_id: int
    ) -> int:
        if not batch and not told:
            return 0
        inserted = self.store.decide(batch, told, incident_id)
        for listen in self.on_decided:
            listen(batch)
        return inserted

    def _note_counts(self, incident_id: int, now: float, counts: dict[str, int]) -> None:
        said = ", ".join(f"{label}: {n}" for label, n in counts.items() if n)
        if said:
            self.store.add_timeline(incident_id, now, "messages", said)
            event(log, "messages decided", incident=incident_id, **counts)

    def _item(
        self,
        incident: Incident,
        view: IncidentView,
        recipient: Recipient,
        kind: MessageKind,
        reason: Reason,
        label: str,
        now: float,
    ) -> OutboxItem:
        message = self.composer.render(kind, reason, recipient, view, now)
        return OutboxItem(
            key=outbox_key(incident.id, label, recipient.person.id),
            incident_id=incident.id,
            person_id=recipient.person.id,
            kind=kind.value,
            reason=reason.value,
            created_at=now,
            subject=message.subject,
            text=message.text,
            html=message.html,
            sms=message.sms,
            channels=channels_of(recipient.person),
            next_try_at=now,
        )

    def _view(self, incident: Incident) -> IncidentView:
        def info(name: str) -> SystemInfo:
            return self.systems.get(name, SystemInfo(name, name))

        return IncidentView(
            id=str(incident.id),
            started_at=incident.opened_at,
            resolved_at=incident.resolved_at,
            cause=info(incident.cause),
            systems=tuple(info(m.name) for m in incident.members),
            note=incident.note,
            status=incident.status,
        )
