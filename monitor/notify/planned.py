"""Planned work told to customers: the notice before each occurrence of a maintenance window,
and the note once it is over, decided by the leader at each tick by the rules of
``monitor.maintenance.rules`` (4 to 6), each committed to the outbox before any send.

An occurrence the leader starts telling is recorded in the store once, whoever records it
(``begin_maintenance_notice``), under an id its messages are kept under: their ``incident_id``
is minus it, never an incident's, so a person hears of one occurrence in order (the notice
before the note). Each message's key is unique (``maintenance-<ref>.notice.<person>``, the
left part of its Message-ID), so a fan-out run twice (a restart, a new leader) decides nothing
twice; who was told what is kept as for an incident (``told``), and the note goes to them.
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
    lead_of,
    notice_due,
    over_due,
)
from monitor.model import Address, Person, Recipient, SystemInfo
from monitor.notify.choice import key_part
from monitor.notify.composer import Composer, TemplateError
from monitor.store import Maintenance, Outbox, OutboxItem, People, Subscriptions

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
    ) -> None:
        """Decide the notices due now and the notes owed now (``down``: the systems DOWN)."""
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
            records[occurrence.ref] = record
            if record.announced_at is None and await self._notify(occurrence, record.id, now):
                await self.store.mark_maintenance_notice(record.id, announced_at=now)
        for record in records.values():
            found = schedule.find(record.ref, (record.starts_at, record.starts_at + 1.0))
            owed = over_due(found, record.ends_at, now, down, grace)
            if owed is Over.NOT_YET:
                continue
            telling = owed is Over.TELL and found is not None
            if telling and found and not await self._say_over(found, record.id, now):
                continue  # a template fails: tried again at the next tick
            await self.store.mark_maintenance_notice(record.id, over_at=now)

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

    async def _say_over(self, occurrence: Occurrence, notice_id: int, now: float) -> bool:
        """The note that it is over, to everyone its notice was decided for."""
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
                    batch.append(
                        self._item(NoticeKind.OVER, person, theirs, occurrence, notice_id, now)
                    )
                    if len(batch) >= self.batch_size:
                        decided += await self.decide(batch, {}, -notice_id)
                        batch = []
        except TemplateError as exc:
            self._cannot(occurrence, exc)
            return False
        decided += await self.decide(batch, {}, -notice_id)
        event(
            log, "maintenance over decided", maintenance=occurrence.ref, people=people, new=decided
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
