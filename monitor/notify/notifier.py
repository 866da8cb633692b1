"""From incidents to decisions: who is told what, when, written to the outbox before any send.

``tick()`` applies the transitions the store holds unapplied (whichever process on the database
saved them) to the incidents, then does the timed work (``notify_after``, ``update_every``) and
the fan-outs, and keeps the promises of an explanation (or reminds on-call of them). Every
decision is committed to the store, with what each person has now been told, before delivery
sees it; a restart re-runs the fan-out, and the outbox's unique keys and the ``told`` record
make it send nothing twice.

The rules of who is told what, and when, are ``choice`` (pure); this module is the I/O around
them: reading the store, rendering through the composer, committing decisions to the outbox.
Folding transitions into incidents is ``correlating``, on-call's note, hold, release and
explanation are ``handling``, and what a crash cut off is found by ``resume``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice

from pydantic import ValidationError

from monitor.config import MaintenanceWindow, MonitorSettings
from monitor.config.problems import dotted, reason
from monitor.durations import format_duration
from monitor.incidents.audience import Audience, attempts_span, attempts_window
from monitor.incidents.correlation import Correlator, Incident
from monitor.logs import event
from monitor.maintenance import (
    API_SOURCE,
    Occurrence,
    Schedule,
    UnusableWindow,
    Window,
    covered,
    customer_view,
    down_systems,
    grace_of,
    in_maintenance,
    window_of,
)
from monitor.model import (
    Address,
    Attempt,
    Clock,
    Explanation,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    SystemInfo,
    Transition,
)
from monitor.notify import handling
from monitor.notify.choice import (
    EXPLANATION,
    FAN_OUT,
    RESOLVED,
    Due,
    Message,
    NoMessage,
    Withheld,
    begin_telling,
    choose,
    due,
    explanation_due,
    goodwill_owed,
    key_part,
    reminder_due,
    resolved_carries,
    start_round,
    told_after,
)
from monitor.notify.composer import Composer, Response
from monitor.notify.correlating import IncidentListener, correlate
from monitor.notify.planned import PlannedWork
from monitor.notify.resume import missed_transitions
from monitor.store import AffectedCount, OutboxItem, Store, StoreUnavailable, count_audience
from monitor.text import one_line

__all__ = ["IncidentListener", "Notifier", "channels_of", "outbox_key"]

log = logging.getLogger("monitor.notifier")
DAY = 86400.0
_LOOKUP_GROUP = 500  # people whose record is read in one go during a fan-out


def outbox_key(incident_id: int, kind: str, person_id: str) -> str:
    """The outbox key, which is also the Message-ID's left part: ``incident-7.acknowledge.u1``.

    Characters a Message-ID cannot carry are written as ``=XX``, so distinct ids stay distinct.
    """
    return f"incident-{incident_id}.{kind}.{key_part(person_id)}"


def channels_of(person: Person) -> tuple[Address, ...]:
    """The ways to reach ``person``, best first: email, then SMS, then their webhook."""
    found = []
    if person.email:
        found.append(Address("email", person.email))
    if person.phone:
        found.append(Address("sms", person.phone))
    if person.webhook:
        found.append(Address("webhook", person.webhook))
    return tuple(found)


def _unreadable(exc: ValueError) -> str:
    """Why a stored window cannot be read, in one line: each field and what is wrong."""
    if not isinstance(exc, ValidationError):
        return one_line(str(exc))[:500]
    said = [
        f"{dotted(e['loc']) or 'window'}: {reason(MaintenanceWindow, e['loc'], e, None)}"
        for e in exc.errors(include_url=False)
    ]
    return one_line("; ".join(said))[:500]


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
    # On-call is to be reminded of an open promise (the incident, the promise, now).
    on_reminder: list[Callable[[Incident, Explanation, float], None]] = field(default_factory=list)
    # After a restart (``resume``): whether the saved states are still to be compared with the
    # incidents; then the transitions that gave, until applied.
    _resuming: bool = False
    _resumed: list[Transition] = field(default_factory=list)
    _dirty: set[int] | None = None  # None: not yet known, so every open incident is re-checked
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _attempt_counts: dict[int, int] = field(default_factory=dict)  # by open incident
    # Planned work: the files' windows, and every window there is as of the last tick (the
    # API's read from the store, so that every replica has them).
    windows: Sequence[Window] = ()
    schedule: Schedule = field(default_factory=Schedule)
    # Whether every live replica's files declare what this one's do (the membership's): a
    # window gone from this leader's files is told gone only then (maintenance rule 8).
    files_agree: Callable[[], bool] = lambda: True
    planned: PlannedWork = field(init=False)
    _api_windows: dict[int, tuple[str, Window | UnusableWindow]] = field(default_factory=dict)
    # Each incident's systems in maintenance at the last tick (None: none read since the start)
    _hidden_before: dict[int, frozenset[str]] | None = None

    def __post_init__(self) -> None:
        self.planned = PlannedWork(
            self.store, self.composer, self.systems, self._decide, channels_of
        )

    def reconfigure(
        self,
        settings: MonitorSettings,
        systems: dict[str, SystemInfo],
        composer: Composer,
        correlator: Correlator,
        windows: Sequence[Window] | None = None,
    ) -> None:
        """Use a reloaded configuration from the next decision on."""
        self.settings, self.systems, self.composer, self.correlator = (
            settings,
            systems,
            composer,
            correlator,
        )
        self.planned.composer, self.planned.systems = composer, systems
        if windows is not None:
            self.windows = tuple(windows)

    # inputs -------------------------------------------------------------------------------

    def resume(self) -> None:
        """After a restart: at the next tick, once the transitions the store holds unapplied
        are applied (what a crash cuts off now), compare the saved states with the incidents
        and apply what they show and the incidents do not (``resume.missed_transitions``), as
        if it had just happened, at its original time: a state saved without its transition,
        or a database of a monitor that applied transitions from memory and died first."""
        self._resuming = True

    async def _correlate(self) -> None:
        """Apply the store's unapplied transitions, then what ``resume`` owes (under the
        lock)."""
        if not await self._apply() or not self._resuming:
            return
        # The states as saved now, whenever this first tick comes (with several processes, it
        # may come long after the start): with every saved transition applied, what they show
        # beyond the incidents is what no saved transition will apply.
        states = (await self.store.load_states()).values()
        missed = await missed_transitions(
            states, lambda since: self.store.incidents(resolved_since=since)
        )
        self._resuming = False
        if missed:
            event(
                log,
                "resuming transitions cut off by a restart",
                logging.WARNING,
                transitions=[f"{t.system} {t.current.value}" for t in missed],
            )
            self._resumed = sorted(missed, key=lambda t: (t.at, t.system))
            await self._apply()

    async def _apply(self) -> bool:
        """``correlating.correlate``: the store's unapplied transitions, then ``_resumed``;
        False if the store refused."""
        return await correlate(
            self.store,
            self._resumed,
            correlator=self.correlator,
            hold_new=self.settings.customer_messages == "confirm",
            systems=self.systems,
            listeners=self.on_incident,
            audience_may_grow=self._mark,
        )

    async def report_attempt(self, attempt: Attempt, person: Person) -> None:
        """An app says ``person`` just failed on ``attempt.system``: remember it; if an open
        incident covers that system, they will be told on the next tick."""
        await self.store.add_attempt(attempt, person)
        for incident in await self.store.incidents(open_only=True):
            if attempt.system in incident.systems:
                self._mark(incident.id)

    async def add_note(self, incident_id: int, text: str, send: bool) -> Incident:
        """On-call's note on an incident; with ``send``, everyone told gets it as an update."""
        async with self._lock:
            return await handling.add_note(self.store, incident_id, text, send, self.clock.now())

    async def hold(self, incident_id: int) -> Incident:
        """Keep customer messages for this incident back until ``release``."""
        async with self._lock:
            return await handling.hold(self.store, incident_id, self.clock.now())

    async def release(self, incident_id: int) -> Incident:
        """Let customer messages for this incident go out (from the next tick)."""
        async with self._lock:
            incident = await handling.release(self.store, incident_id, self.clock.now())
            self._mark(incident.id)
            return incident

    async def explain(self, incident_id: int, text: str) -> Incident:
        """On-call's explanation of an incident: kept, and sent as the rules of the promise say
        (raises ``ExplanationFinal`` once it has gone to customers)."""
        async with self._lock:
            await handling.explain(self.store, incident_id, text, self.clock.now())
            incident = await self.store.incident(incident_id)
            assert incident is not None
            return incident

    async def record_alert(self, incident_id: int, routes: Sequence[str]) -> None:
        """On-call was just alerted of the incident by ``routes`` (its notice handed to
        apprise): kept, so that every replica's messages say when and how."""
        if not routes:
            return
        try:
            await self.store.record_alert(incident_id, self.clock.now(), routes)
        except StoreUnavailable as exc:
            # The messages then say only that we are looking into it: nothing false.
            event(log, "on-call alert not recorded", logging.WARNING, error=str(exc))

    def _mark(self, incident_id: int) -> None:
        """Someone may be newly affected by the incident: look through its people again."""
        if self._dirty is not None:
            self._dirty.add(incident_id)

    # timed work and fan-out ---------------------------------------------------------------

    async def tick(self) -> None:
        """Do what is due now: first acknowledgements, periodic updates, fan-outs, resolutions;
        planned work's notices."""
        async with self._lock:
            self.schedule = await self.read_schedule()
            await self._correlate()
            now = self.clock.now()
            known = await self.store.incidents(resolved_since=now - DAY)
            if self._dirty is None:
                self._dirty = {i.id for i in known}
            await self._notice_attempts(known)
            hidden_before = self._hidden_before
            # Kept as it was for the incidents a failing store leaves unread this tick.
            self._hidden_before = dict(hidden_before or {})
            for incident in known:
                hidden = self.maintenance_of(incident, now)
                await self._note_maintenance(incident, hidden, hidden_before, now)
                owed = self._due(incident, now, hidden)
                if owed is Due.RESOLUTION:
                    await self._tell_resolved(incident, now, hidden)
                elif owed is Due.FIRST_WORD or owed in FAN_OUT:
                    await self._tell_open(incident, owed, now, hidden)
                self._dirty.discard(incident.id)
            self._hidden_before = {i.id: self._hidden_before[i.id] for i in known}
            await self._keep_promises(now)
            settings = self.settings
            await self.planned.tell(
                self.schedule,
                now,
                settings.notify_before,
                settings.maintenance_grace,
                down_systems(known),
                self.files_agree,
            )

    # planned work ---------------------------------------------------------------------------

    def maintenance_of(self, incident: Incident, now: float | None = None) -> dict[str, Occurrence]:
        """The systems of ``incident`` in maintenance (``monitor.maintenance.rules``, rule 1),
        each with the window's occurrence it failed in: customers are not told of them."""
        at = self.clock.now() if now is None else now
        return covered(incident, self.schedule, at, self.settings.maintenance_grace)

    async def add_window(self, spec: MaintenanceWindow) -> Window:
        """Keep a window posted to the API (every replica reads it from the store)."""
        stored = await self.store.add_maintenance_window(spec.model_dump_json(), self.clock.now())
        return window_of(spec, str(stored.id), self.settings.default_timezone, API_SOURCE)

    async def remove_window(self, window_id: int) -> Window | UnusableWindow | None:
        """Forget a window posted to the API, whatever its row holds (one this monitor cannot
        read too): the window it was, or None when there is none. Customers told of it hear
        it is cancelled when it had not begun, else that it is over (``maintenance.rules``)."""
        schedule = await self.read_schedule()
        ref = str(window_id)
        found = next((w for w in schedule.windows if w.ref == ref), None)
        if found is not None and found.source != API_SOURCE:
            return None
        gone = found or next((u for u in schedule.unusable if u.ref == ref), None)
        if gone is None:
            return None
        return gone if await self.store.remove_maintenance_window(window_id) else None

    async def tell_subscriber(self, person: Person) -> None:
        """Someone subscribed, or added systems (their confirm or manage link, on whichever
        replica took it): planned work already announced to their systems and not yet begun
        is told to them now, once. Never raises: they are subscribed whatever happens here."""
        try:
            schedule = await self.read_schedule()
            await self.planned.tell_subscriber(person, schedule, self.clock.now())
        except StoreUnavailable as exc:
            event(
                log,
                "planned work not told to a new subscriber",
                logging.WARNING,
                person=person.id,
                error=str(exc),
            )

    async def read_schedule(self) -> Schedule:
        """The files' windows and the API's as the store has them now: each API window read
        from its JSON once (a window the monitor can no longer read is not in force: it is
        listed as unusable, and said once)."""
        zone = self.settings.default_timezone
        windows = list(self.windows)
        unusable: list[UnusableWindow] = []
        seen = set()
        for stored in await self.store.maintenance_windows():
            seen.add(stored.id)
            known = self._api_windows.get(stored.id)
            if known is None or known[0] != f"{zone} {stored.spec}":
                try:
                    spec = MaintenanceWindow.model_validate_json(stored.spec)
                    found: Window | UnusableWindow = window_of(
                        spec, str(stored.id), zone, API_SOURCE
                    )
                except (ValidationError, ValueError) as exc:
                    why = _unreadable(exc)
                    event(
                        log,
                        "a stored maintenance window cannot be read",
                        logging.ERROR,
                        window=stored.id,
                        error=why,
                    )
                    found = UnusableWindow(str(stored.id), stored.spec, why)
                known = self._api_windows[stored.id] = (f"{zone} {stored.spec}", found)
            if isinstance(known[1], Window):
                windows.append(known[1])
            else:
                unusable.append(known[1])
        for gone in self._api_windows.keys() - seen:
            del self._api_windows[gone]
        # The same windows as last time: the schedule, and what it worked out, stay.
        if self.schedule.same_windows(windows, unusable):
            return self.schedule
        return Schedule(windows, unusable)

    async def _note_maintenance(
        self,
        incident: Incident,
        hidden: Mapping[str, Occurrence],
        before: Mapping[int, frozenset[str]] | None,
        now: float,
    ) -> None:
        """On the incident's timeline (on-call's ``monitor incident ID``): a system failing in
        maintenance, and one still down once its window and the grace are over (customers are
        told from then: its people may be newly affected). Not at the first tick after a start,
        which has nothing to compare with."""
        current = frozenset(hidden)
        assert self._hidden_before is not None
        self._hidden_before[incident.id] = current
        if before is None:
            return
        was = before.get(incident.id, frozenset())
        if current == was:
            return
        default = self.settings.maintenance_grace
        for name in sorted(current - was):
            ends = f"{datetime.fromtimestamp(hidden[name].end, UTC):%Y-%m-%d %H:%M} UTC"
            grace = format_duration(grace_of(hidden[name], default))
            await self.store.add_timeline(
                incident.id,
                now,
                "maintenance",
                f"{self._title(name)}: in maintenance ({hidden[name].window.ref}, until {ends}); "
                f"customers are not told unless it is still down {grace} after",
            )
        ended = [m for name in sorted(was - current) if (m := incident.member(name)) and m.down]
        if was - current:
            self._mark(incident.id)
        for member in ended:
            # Its window's grace, while the window is there (removed: the setting's).
            window = self.schedule.covering(member.name, member.down_at)
            grace = format_duration(default if window is None else grace_of(window, default))
            await self.store.add_timeline(
                incident.id,
                now,
                "maintenance",
                f"{self._title(member.name)}: in maintenance no more (its window and {grace} "
                "after it are over, or the window was removed) and still down; customers are "
                "told as usual",
            )

    def _title(self, name: str) -> str:
        return self.systems.get(name, SystemInfo(name, name)).title

    async def _keep_promises(self, now: float) -> None:
        """Send the explanations promised and now given; remind on-call of those still owed.
        One read a tick: the open promises are few (an index holds only them)."""
        for promise in await self.store.open_promises():
            if promise.text:
                incident = await self.store.incident(promise.incident_id)
                if incident is not None and explanation_due(incident, promise):
                    await self._tell_explanation(incident, now)
                continue
            last_before = reminder_due(promise, now, self.settings.explain_within)
            if last_before is None:
                continue
            # The database decides which of two replicas leading for a moment reminds.
            if await self.store.take_reminder(promise.incident_id, now, last_before):
                incident = await self.store.incident(promise.incident_id)
                if incident is not None:
                    event(log, "explanation owed: on-call reminded", incident=incident.id)
                    for listen in self.on_reminder:
                        listen(incident, promise, now)

    async def _notice_attempts(self, known: list[Incident]) -> None:
        """Mark the open incidents for which attempts came in since the last tick, whichever
        process on the database took them (``report_attempt`` marks only its own notifier's):
        their audience may have grown. One count an open incident a tick."""
        lookback = self.settings.attempt_lookback
        counts = {}
        for incident in known:
            if incident.is_open:
                window = attempts_window(incident, lookback)
                counts[incident.id] = await self.store.attempt_count(incident.systems, window)
                if counts[incident.id] != self._attempt_counts.get(
                    incident.id, counts[incident.id]
                ):
                    self._mark(incident.id)
        self._attempt_counts = counts

    def _due(self, incident: Incident, now: float, hidden: Collection[str] = ()) -> Due:
        """What ``incident`` owes now, read as customers are told of it (without its systems
        in maintenance, ``hidden``)."""
        assert self._dirty is not None
        settings = self.settings
        shown = customer_view(incident, hidden)
        return due(
            shown,
            now,
            settings.notify_after,
            settings.update_every,
            incident.id in self._dirty,
            self._goodwill_after(),
            in_maintenance(shown),
        )

    def _goodwill_after(self) -> float | None:
        return self.settings.goodwill_after if self.settings.goodwill else None

    async def _tell_open(
        self, incident: Incident, owed: Due, now: float, hidden: Collection[str] = ()
    ) -> None:
        """Save the round ``owed`` starts, fan it out, then save it as done."""
        if owed is Due.FIRST_WORD:
            incident = begin_telling(incident, now)
            await self.store.save_incident(incident)
            self._mark(incident.id)
            owed = self._due(incident, now, hidden)  # what else the rules say of it as it now is
        if owed is Due.PERIODIC_ROUND:
            incident = start_round(incident, Reason.PERIODIC, now)
            await self.store.save_incident(incident)
        if owed in FAN_OUT:
            incident = await self._fan_out(incident, now, hidden)
            if incident.pending_round is not None:
                incident = replace(incident, pending_round=None)
                await self.store.save_incident(incident)

    async def _audience(self, incident: Incident) -> AsyncIterator[list[Recipient]]:
        """Everyone ``incident`` affects, ``_LOOKUP_GROUP`` at a time: the subscribers as the
        store reads them, a page at a time, then those known only from attempts."""
        lookback = self.settings.attempt_lookback
        attempts = await self.store.attempts(incident.systems, attempts_window(incident, lookback))
        ids = sorted({a.person_id for a in attempts})
        people = await self.store.people_by_ids(ids)
        audience = Audience(
            incident, self.systems, attempts, people, lookback, await self._unsubscribed(ids)
        )
        async for page in self.store.subscriber_pages(incident.systems):
            found = audience.subscribed(page)
            while group := list(islice(found, _LOOKUP_GROUP)):
                yield group
        found = audience.reported_only()
        while group := list(islice(found, _LOOKUP_GROUP)):
            yield group

    async def _unsubscribed(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` who unsubscribed and are to hear nothing, even when an app reports
        they just failed (``subscriptions.unsubscribed``: ``nothing``)."""
        if self.settings.subscriptions.unsubscribed != "nothing" or not ids:
            return set()
        return await self.store.unsubscribed_among(ids)

    async def audience_size(self, incident: Incident) -> int:
        """How many people ``incident`` affects now."""
        span = attempts_span(incident, self.settings.attempt_lookback)
        return await self.store.audience_count(incident.systems, *span)

    async def _audience_of(self, incident: Incident) -> AffectedCount:
        span = attempts_span(incident, self.settings.attempt_lookback)
        return await count_audience(self.store, incident.systems, *span)

    async def _fan_out(
        self, incident: Incident, now: float, hidden: Collection[str] = ()
    ) -> Incident:
        """Decide every message this incident owes now (``choice.choose`` for each person),
        to the people of its systems not in maintenance (``hidden``); return the incident as
        saved."""
        limit = self.settings.max_messages_per_person_per_day
        shown = customer_view(incident, hidden)
        view = self._view(shown)
        response = await self._response(incident)
        goodwill_after = self._goodwill_after()
        grew_seq: int | None = None
        batch: list[OutboxItem] = []
        batch_told: dict[str, frozenset[str]] = {}
        counts = {
            "acknowledged": 0,
            "updated": 0,
            "over the daily limit": 0,
            "goodwill offered": 0,
        }
        # What the people were told and sent today is read a group at a time: for everyone at
        # once it is two dicts of 100,000 entries held through the fan-out, and a day's outbox
        # counted in one query that holds the loop for a third of a second.
        async for group in self._audience(shown):
            # Updates that may offer goodwill wait for the end of the group: the store says,
            # for all of them in one go, which message is each person's one offer.
            offers: list[tuple[Recipient, Message, str, frozenset[str] | None]] = []
            ids = [recipient.person.id for recipient in group]
            told = await self.store.told_about(incident.id, ids)
            sent_today = await self.store.message_counts(ids, now - DAY)
            for recipient in group:
                # A turn per person, told already or not: a pass over 100,000 people who are
                # all told would otherwise hold the loop (and every probe) for seconds.
                await asyncio.sleep(0)
                person_id = recipient.person.id
                affected = frozenset(s.name for s in recipient.affected)
                before = told.get(person_id)
                choice = choose(
                    False,
                    incident.pending_round,
                    before,
                    affected,
                    sent_today.get(person_id, 0),
                    limit,
                )
                if isinstance(choice, NoMessage):
                    continue
                if choice.reason is Reason.GREW and grew_seq is None:
                    # One new update number for everyone the outage grew for in this pass.
                    incident = replace(incident, update_seq=incident.update_seq + 1)
                    await self.store.save_incident(incident)
                    grew_seq = incident.update_seq
                if isinstance(choice, Withheld):
                    counts["over the daily limit"] += 1
                    continue
                if choice.kind is MessageKind.ACKNOWLEDGE:
                    label = "acknowledge"
                    counts["acknowledged"] += 1
                else:
                    seq = grew_seq if choice.reason is Reason.GREW else incident.update_seq
                    label = f"update-{seq}"
                    counts["updated"] += 1
                if goodwill_owed(
                    choice, recipient.affected_since, now, goodwill_after
                ) and self.composer.goodwill_for(recipient, view):
                    offers.append((recipient, choice, label, before))
                    continue
                batch.append(self._item(incident, view, recipient, choice, label, now, response))
                batch_told[person_id] = told_after(before, affected)
                if len(batch) >= self.batch_size:
                    await self._decide(batch, batch_told, incident.id)
                    batch, batch_told = [], {}
            if offers:
                keys = {
                    r.person.id: outbox_key(incident.id, label, r.person.id)
                    for r, _, label, _ in offers
                }
                given = await self.store.offer_goodwill(incident.id, keys)
                for recipient, choice, label, before in offers:
                    person_id = recipient.person.id
                    offered = given.get(person_id) == keys[person_id]
                    counts["goodwill offered"] += offered
                    item = self._item(
                        incident, view, recipient, choice, label, now, response, offered
                    )
                    batch.append(item)
                    affected = frozenset(s.name for s in recipient.affected)
                    batch_told[person_id] = told_after(before, affected)
                if len(batch) >= self.batch_size:
                    await self._decide(batch, batch_told, incident.id)
                    batch, batch_told = [], {}
        await self._decide(batch, batch_told, incident.id)
        await self._note_counts(incident.id, now, counts)
        return incident

    async def _tell_resolved(
        self, incident: Incident, now: float, hidden: Collection[str] = ()
    ) -> None:
        """The fix to everyone told; the explanation with it when on-call gave it first, else
        the promise of one (settled as the first of them is decided: nobody told, no promise)."""
        view = self._view(customer_view(incident, hidden))

        async def settled() -> IncidentView:
            explanation = await self.store.settle_for_resolution(incident.id, now)
            return replace(view, explanation=resolved_carries(explanation))

        sent = await self._tell_everyone_told(incident, RESOLVED, settled, now)
        # Kept for the post-incident report: counted later, it would use later subscriptions.
        await self.store.record_audience(incident.id, await self._audience_of(incident))
        await self.store.save_incident(replace(incident, resolution_told_at=now))
        if sent:
            await self.store.add_timeline(incident.id, now, "messages", f"resolved: {sent} people")

    async def _tell_explanation(self, incident: Incident, now: float) -> None:
        """Keep the promise: the explanation, final from now, to everyone told."""
        explanation = await self.store.start_explaining(incident.id, now)
        view = replace(self._view(incident), explanation=explanation.text)

        async def as_given() -> IncidentView:
            return view

        sent = await self._tell_everyone_told(incident, EXPLANATION, as_given, now)
        await self.store.keep_promise(incident.id, now)
        event(log, "explanation decided", incident=incident.id, people=sent)
        if sent:
            await self.store.add_timeline(
                incident.id, now, "messages", f"explanation: {sent} people"
            )

    async def _tell_everyone_told(
        self,
        incident: Incident,
        message: Message,
        view_for: Callable[[], Awaitable[IncidentView]],
        now: float,
    ) -> int:
        """Decide ``message`` for everyone told about ``incident``, as the incident
        ``view_for`` gives (asked once, when the first of them is found); how many are new.

        Everyone told was acknowledged, so each gets it (``choose``'s rule 1 for the fix, the
        promise's rule 2 for the explanation), whatever their count for the day."""
        lookback = self.settings.attempt_lookback
        attempts = await self.store.attempts(incident.systems, attempts_window(incident, lookback))
        attempts_of: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            attempts_of.setdefault(attempt.person_id, []).append(attempt)
        down_at = {m.name: m.down_at for m in incident.members}
        label = message.kind.value
        response = await self._response(incident)
        view: IncidentView | None = None
        sent = 0
        batch: list[OutboxItem] = []
        # A page of people at a time: the whole record of who was told, for 100,000 people,
        # is ~30 MB held for the length of the fan-out.
        async for told in self.store.told_pages(incident.id):
            if view is None:
                view = await view_for()
            people = await self.store.people_by_ids(list(told))
            # Someone who unsubscribed since hears nothing further (an app reporting them
            # failing in this incident still counts with ``unsubscribed: affected_only``).
            gone = await self.store.unsubscribed_among(list(told))
            if self.settings.subscriptions.unsubscribed == "affected_only":
                gone -= attempts_of.keys()
            for person_id, systems_told in told.items():
                await asyncio.sleep(0)
                if person_id in gone:
                    continue
                systems = sorted(systems_told, key=lambda n: (down_at.get(n, now), n))
                recipient = Recipient(
                    person=people.get(person_id, Person(id=person_id)),
                    affected=tuple(self.systems.get(n, SystemInfo(n, n)) for n in systems),
                    attempts=tuple(attempts_of.get(person_id, ())),
                    affected_since=min((down_at.get(n, now) for n in systems), default=now),
                )
                batch.append(self._item(incident, view, recipient, message, label, now, response))
                if len(batch) >= self.batch_size:
                    sent += await self._decide(batch, {}, incident.id)
                    batch = []
        sent += await self._decide(batch, {}, incident.id)
        return sent

    async def _decide(
        self, batch: list[OutboxItem], told: dict[str, frozenset[str]], incident_id: int
    ) -> int:
        if not batch and not told:
            return 0
        inserted = await self.store.decide(batch, told, incident_id)
        for listen in self.on_decided:
            listen(batch)
        return inserted

    async def _note_counts(self, incident_id: int, now: float, counts: dict[str, int]) -> None:
        said = ", ".join(f"{label}: {n}" for label, n in counts.items() if n)
        if said:
            await self.store.add_timeline(incident_id, now, "messages", said)
            event(log, "messages decided", incident=incident_id, **counts)

    def _item(
        self,
        incident: Incident,
        view: IncidentView,
        recipient: Recipient,
        message: Message,
        label: str,
        now: float,
        response: Response,
        goodwill: bool = False,
    ) -> OutboxItem:
        rendered = self.composer.render(
            message.kind,
            message.reason,
            recipient,
            view,
            now,
            response=response,
            goodwill=goodwill,
        )
        return OutboxItem(
            key=outbox_key(incident.id, label, recipient.person.id),
            incident_id=incident.id,
            person_id=recipient.person.id,
            kind=message.kind.value,
            reason=message.reason.value,
            created_at=now,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            sms=rendered.sms,
            channels=channels_of(recipient.person),
            next_try_at=now,
        )

    async def _response(self, incident: Incident) -> Response:
        """What the team is doing about ``incident``, read once a pass: when and how on-call
        was alerted, and the "Doing:" part of on-call's note."""
        alert = await self.store.alert(incident.id)
        doing = handling.split_note(incident.note)[1]
        if alert is None:
            return Response(doing=doing)
        return Response(alert.at, alert.routes, doing)

    def _view(self, incident: Incident) -> IncidentView:
        def info(name: str) -> SystemInfo:
            return self.systems.get(name, SystemInfo(name, name))

        return IncidentView(
            id=str(incident.id),
            started_at=incident.opened_at,
            resolved_at=incident.resolved_at,
            cause=info(incident.cause),
            systems=tuple(info(m.name) for m in incident.members),
            note=handling.split_note(incident.note)[0],
            status=incident.status,
        )
