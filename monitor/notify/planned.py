"""Planned work told to customers: the notice before each occurrence of a maintenance window,
the note once it is over, and the word that it is cancelled when its window goes before it
starts, decided by the leader at each tick by the rules of ``monitor.maintenance.rules`` (4 to
9), each committed to the outbox before any send; and the notice to someone who subscribes
after it went (``tell_subscriber``, on whichever replica took the subscription).

An occurrence the leader starts telling is recorded in the store once, whoever records it
(``begin_maintenance_notice``), under an id its messages are kept under: their ``incident_id``
is minus it, never an incident's, so a person hears of one occurrence in order (the notice
before the note). Each message's key is unique (``maintenance-<ref>.notice.<person>``, the
left part of its Message-ID; ``.over.`` and ``.cancelled.`` for the others), so a fan-out run
twice (a restart, a new leader, two replicas telling one new subscriber) decides nothing twice;
who was told what is kept as for an incident (``told``), and the note and the cancellation go to
them. The note and the cancellation are worded from the record (its systems and times: the
window may be gone), with the window's note when it is still there and "" when not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.logs import event
from monitor.maintenance import (
    NoticeKind,
    Occurrence,
    Over,
    Schedule,
    announced_to_subscriber,
    lead_of,
    notice_due,
    over_due,
    recorded_occurrence,
)
from monitor.model import Address, Person, Recipient, SystemInfo
from monitor.notify.choice import key_part
from monitor.notify.composer import Composer, TemplateError
from monitor.store import Maintenance, NoticeRecord, Outbox, OutboxItem, People, Subscriptions

log = logging.getLogger("monitor.notifier")

# Commits ``items`` and what each person has now been told, under the occurrence's key
# (``-id``); how many items were new.
Decide = Callable[[list[OutboxItem], dict[str, frozenset[str]], int], Awaitable[int]]


class PlannedStore(People, Outbox, Maintenance, Subscriptions, Protocol):
    """What telling planned work reads and writes."""


def notice_key(occurrence: Occurrence, kind: NoticeKind, person_id: str) -> str:
    """The outbox key, and the Message-ID's left part:
    ``maintenance-weekly-202612130100.notice.u1``."""
    return f"maintenance-{occurrence.ref}.{kind.label}.{key_part(person_id)}"


@dataclass
class PlannedWork:
    """Tells planned work: ``tell`` at each of the leader's ticks."""

    store: PlannedStore
    composer: Composer
    systems: Mapping[str, SystemInfo]
    decide: Decide
    channels: Callable[[Person], tuple[Address, ...]]
    batch_size: int = 64
    _failed: dict[str, str] = field(default_factory=dict)  # ref -> the template error said
    _said_replanned: set[str] = field(default_factory=set)  # cancelled refs planned again
    _said_waiting: set[str] = field(default_factory=set)  # removals waiting for the replicas
    # The last read found no occurrence open: with no window either, none can be (only a
    # leader with a window records one), so the store is not asked again until there is one.
    _none_open: bool = False

    async def tell(
        self,
        schedule: Schedule,
        now: float,
        lead: float,
        grace: float,
        down: frozenset[str],
        files_agree: Callable[[], bool] = lambda: True,
    ) -> None:
        """Decide the notices due now and the notes and cancellations owed now (``down``: the
        systems DOWN; ``grace``: monitor.yaml's, a window's own wins; ``files_agree``: every
        live replica's files declare what this one's do, so a window gone is gone: rule 8)."""
        if not schedule and self._none_open:
            return
        records = {record.ref: record for record in await self.store.maintenance_notices()}
        self._none_open = not records
        horizon = max([lead, *(w.notify_before or 0.0 for w in schedule.windows)])
        # Through the moment ``horizon`` ahead: one starting just then is due now.
        for occurrence in schedule.between(now, now + horizon + 1.0) if horizon > 0 else ():
            record = records.get(occurrence.ref)
            if record is not None and record.announced_at is not None:
                continue
            if not notice_due(occurrence, lead_of(occurrence, lead), now, record is not None):
                continue
            record = await self.store.begin_maintenance_notice(
                occurrence.ref, occurrence.systems, occurrence.start, occurrence.end
            )
            self._none_open = False  # one is open now: read again when the window is gone
            if record.cancelled_at is not None:
                self._replanned(occurrence)
                continue
            records[occurrence.ref] = record
            if record.announced_at is None and await self._notify(occurrence, record.id, now):
                await self.store.mark_maintenance_notice(record.id, announced_at=now)
        for record in records.values():
            if record.over_at is None:
                await self._settle(record, schedule, now, grace, down, files_agree)

    async def _settle(
        self,
        record: NoticeRecord,
        schedule: Schedule,
        now: float,
        grace: float,
        down: frozenset[str],
        files_agree: Callable[[], bool],
    ) -> None:
        """What an occurrence told of owes now (rules 5 to 9): nothing yet, the note that it is
        over, the word that it is cancelled, or nothing more; then it is done with."""
        planned = schedule.find(record.ref, (record.starts_at, record.starts_at + 1.0))
        told = recorded_occurrence(record.ref, record.systems, record.starts_at, record.ends_at)
        # Asked only of an occurrence its window is gone for: it reads the files' windows.
        agreed = planned is not None or files_agree()
        owed = over_due(
            planned,
            told,
            now,
            down,
            grace,
            cancelling=record.cancelled_at is not None,
            unreadable=schedule.unreadable(record.ref),
            agreed=agreed,
        )
        if owed is Over.NOT_YET:
            if not agreed:
                self._waiting_for_replicas(record.ref)
            return
        if owed is Over.CANCEL:
            if record.cancelled_at is None:
                # Kept before the first message: a crash midway finishes it as a cancellation.
                await self.store.mark_maintenance_notice(record.id, cancelled_at=now)
            if not await self._tell_told(NoticeKind.CANCELLED, told, record.id, now):
                return  # a template fails: tried again at the next tick
        elif owed is Over.TELL and not await self._tell_told(
            NoticeKind.OVER, planned or told, record.id, now
        ):
            return
        await self.store.mark_maintenance_notice(record.id, over_at=now)

    async def tell_subscriber(self, person: Person, schedule: Schedule, now: float) -> int:
        """Someone just subscribed, or added systems: the notice of each occurrence of their
        systems already told of and not yet begun, to them alone (rule 4); how many were new.
        One decided before (the fan-out reached them, or another replica took the same
        confirmation) is decided as nothing: its key is in the outbox."""
        if not person.systems:
            return 0
        decided = 0
        for record in await self.store.maintenance_notices():
            if not set(record.systems) & set(person.systems):
                continue
            planned = schedule.find(record.ref, (record.starts_at, record.starts_at + 1.0))
            if planned is None or not announced_to_subscriber(
                planned, now, record.cancelled_at is not None
            ):
                continue
            theirs = [n for n in planned.systems if n in person.systems]
            if not theirs:
                continue
            try:
                item = self._item(NoticeKind.NOTICE, person, theirs, planned, record.id, now)
            except TemplateError as exc:
                self._cannot(planned, exc)
                continue
            new = await self.decide([item], {person.id: frozenset(theirs)}, -record.id)
            if new:
                event(log, "maintenance notice decided for a subscriber", maintenance=record.ref)
            decided += new
        return decided

    async def _notify(self, occurrence: Occurrence, notice_id: int, now: float) -> bool:
        """The notice to each subscriber of the occurrence's systems; False when a template
        cannot be rendered (said once; tried again at each tick)."""
        batch: list[OutboxItem] = []
        told: dict[str, frozenset[str]] = {}
        decided = people = 0
        try:
            async for page in self.store.subscriber_pages(occurrence.systems):
                for person in page:
                    # A turn per person, as an incident's fan-out takes: probes start on time.
                    await asyncio.sleep(0)
                    theirs = [n for n in occurrence.systems if n in person.systems]
                    if not theirs:
                        continue
                    people += 1
                    batch.append(
                        self._item(NoticeKind.NOTICE, person, theirs, occurrence, notice_id, now)
                    )
                    told[person.id] = frozenset(theirs)
                    if len(batch) >= self.batch_size:
                        decided += await self.decide(batch, told, -notice_id)
                        batch, told = [], {}
        except TemplateError as exc:
            self._cannot(occurrence, exc)
            return False
        decided += await self.decide(batch, told, -notice_id)
        event(
            log,
            "maintenance notices decided",
            maintenance=occurrence.ref,
            people=people,
            new=decided,
        )
        return True

    async def _tell_told(
        self, kind: NoticeKind, occurrence: Occurrence, notice_id: int, now: float
    ) -> bool:
        """The note that it is over, or that it is cancelled, to everyone its notice was
        decided for (but those who unsubscribed since); False when a template fails."""
        batch: list[OutboxItem] = []
        decided = people = 0
        try:
            async for told in self.store.told_pages(-notice_id):
                known = await self.store.people_by_ids(list(told))
                gone = await self.store.unsubscribed_among(list(told))
                for person_id, systems in told.items():
                    await asyncio.sleep(0)
                    if person_id in gone:
                        continue  # unsubscribed since the notice
                    person = known.get(person_id, Person(id=person_id))
                    theirs = [n for n in occurrence.systems if n in systems] or sorted(systems)
                    people += 1
                    batch.append(self._item(kind, person, theirs, occurrence, notice_id, now))
                    if len(batch) >= self.batch_size:
                        decided += await self.decide(batch, {}, -notice_id)
                        batch = []
        except TemplateError as exc:
            self._cannot(occurrence, exc)
            return False
        decided += await self.decide(batch, {}, -notice_id)
        event(
            log,
            f"maintenance {kind.label} decided",
            maintenance=occurrence.ref,
            people=people,
            new=decided,
        )
        return True

    def _item(
        self,
        kind: NoticeKind,
        person: Person,
        theirs: Sequence[str],
        occurrence: Occurrence,
        notice_id: int,
        now: float,
    ) -> OutboxItem:
        affected = tuple(self.systems.get(n) or SystemInfo(n, n) for n in theirs)
        recipient = Recipient(person, affected, (), occurrence.start)
        rendered = self.composer.render_planned(kind, recipient, occurrence, now)
        return OutboxItem(
            key=notice_key(occurrence, kind, person.id),
            incident_id=-notice_id,
            person_id=person.id,
            kind=kind.value,
            reason=kind.label,
            created_at=now,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            sms=rendered.sms,
            channels=self.channels(person),
            next_try_at=now,
        )

    def _cannot(self, occurrence: Occurrence, exc: TemplateError) -> None:
        """A template about planned work fails: said once an occurrence and error (it is
        tried again at each tick, and ``monitor validate`` says what to fix)."""
        said = str(exc)
        if self._failed.get(occurrence.ref) != said:
            self._failed[occurrence.ref] = said
            event(
                log,
                "planned work cannot be told: a template fails",
                logging.ERROR,
                maintenance=occurrence.ref,
                error=said,
            )

    def _waiting_for_replicas(self, ref: str) -> None:
        """A window told of is gone from this leader's files while the live replicas' files
        differ (a rolling update): said once; told when they agree (rule 8)."""
        if ref in self._said_waiting:
            return
        self._said_waiting.add(ref)
        event(
            log,
            "planned work told of is not in this replica's files, and the replicas' files differ: "
            "its customers are told it is cancelled or over once every replica's files agree",
            logging.WARNING,
            maintenance=ref,
        )

    def _replanned(self, occurrence: Occurrence) -> None:
        """An occurrence told cancelled is in a window again, at the same time: said once (its
        people are not told again: the same key, the same messages)."""
        if occurrence.ref in self._said_replanned:
            return
        self._said_replanned.add(occurrence.ref)
        event(
            log,
            "planned work told as cancelled is planned again at the same time: its customers "
            "are not told again; give the window a new name to announce it",
            logging.WARNING,
            maintenance=occurrence.ref,
        )
