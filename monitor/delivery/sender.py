"""From the outbox to people: send what is due, retry what failed, never drop anything silently.

Each outbox item lists the person's channels, best first. A send that fails transiently is
retried with exponential backoff and jitter; after ``tries_per_channel`` failures, or at once on
a permanent failure, the next channel is tried. On the last channel, transient failures keep
being retried (a mail server that is down for an hour loses nothing) until ``give_up_after``.
An item with no channel left is marked undeliverable, with the reason, where the API and the
metrics show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from monitor.delivery.channels import DeliveryError, Email, EmailChannel, SmsChannel, WebhookChannel
from monitor.logs import event
from monitor.model import Clock
from monitor.store import PENDING, SENT, UNDELIVERABLE, OutboxItem, Store, StoreUnavailable

log = logging.getLogger("monitor.delivery")

Outcome = Callable[[OutboxItem, str], None]  # the item as saved, and "sent" / "retry" / ...


@dataclass
class Channels:
    """The channels this monitor can use; a missing one counts as a permanent failure."""

    email: EmailChannel | None = None
    sms: SmsChannel | None = None
    webhook: WebhookChannel | None = None
    message_domain: str = "monitor.invalid"

    def configured(self) -> list[str]:
        """The kinds of channel configured, best first (empty: nobody can be told)."""
        return [k for k in ("email", "sms", "webhook") if getattr(self, k) is not None]

    def supports(self, channel: str) -> bool:
        kind = channel.partition(":")[0]
        return (
            getattr(self, kind, None) is not None if kind in ("email", "sms", "webhook") else False
        )

    async def send(self, channel: str, item: OutboxItem) -> None:
        kind, _, address = channel.partition(":")
        if kind == "email" and self.email is not None:
            await self.email.send(
                Email(
                    message_id=f"{item.key}@{self.message_domain}",
                    to=address,
                    subject=item.subject,
                    text=item.text,
                    html=item.html,
                )
            )
        elif kind == "sms" and self.sms is not None:
            await self.sms.send(address, item.sms)
        elif kind == "webhook" and self.webhook is not None:
            await self.webhook.send(
                address,
                {
                    "id": item.key,
                    "incident": item.incident_id,
                    "person": item.person_id,
                    "kind": item.kind,
                    "reason": item.reason,
                    "subject": item.subject,
                    "text": item.text,
                    "sms": item.sms,
                },
            )
        else:
            raise DeliveryError(f"no {kind} channel is configured", permanent=True)

    async def close(self) -> None:
        if self.email is not None:
            await self.email.close()


def backoff(tries: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the ``tries``-th failure: exponential, capped, with full jitter
    over its upper half so retries of many messages spread out."""
    ceiling = min(cap, base * 2.0 ** max(0, tries - 1))
    return ceiling / 2 + rng.random() * ceiling / 2


@dataclass
class Delivery:
    """Sends what is due, ``concurrency`` at a time.

    Outcomes ("sent", "retry", ...) are committed ``mark_batch`` at a time: one SQLite commit
    per message cost more than the rest of the bookkeeping together. An outcome waits for others
    to share its commit at most ``mark_delay`` seconds, and not at all once no send is under
    way. Until its outcome is committed a message keeps its place in ``concurrency``, so sends
    under way and outcomes not yet committed are never more than ``concurrency`` together:
    after a crash (``kill -9``) at most that many messages go out again, with their Message-ID.
    """

    store: Store
    channels: Channels
    clock: Clock
    concurrency: int = 16
    mark_batch: int = 8
    mark_delay: float = 0.005
    tries_per_channel: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    give_up_after: float = 86400.0
    rng: random.Random = field(default_factory=random.Random)
    on_outcome: list[Outcome] = field(default_factory=list)
    _inflight: set[str] = field(default_factory=set)
    # Outcomes sent but not committed yet, each holding its place in ``_limit``, by item key.
    _marks: dict[str, tuple[OutboxItem, str]] = field(default_factory=dict)
    _limit: asyncio.Semaphore | None = None
    _flush_timer: asyncio.TimerHandle | None = None
    # Outcomes the store refused to record (sent, retry...), oldest first, by item key.
    _unsaved: dict[str, tuple[OutboxItem, str]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: Callable[[], bool] = field(default=lambda: False)

    def wake(self) -> None:
        """There may be new work: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Send everything due now, ``concurrency`` at a time; return how many were tried.
        Every outcome is committed (or, if the store refuses, kept in memory) on return.

        Raises StoreUnavailable while outcomes of earlier sends cannot be recorded: nothing
        more goes out until they are, so a message the store cannot mark sent is not sent again.
        """
        self._save_unsaved()
        now = self.clock.now()
        due = [
            item
            for item in self.store.due(now, limit=self.concurrency * 8 + len(self._inflight))
            if item.key not in self._inflight
            and item.key not in self._unsaved
            and item.key not in self._marks
        ]
        if not due:
            return 0
        limit = self._limit = asyncio.Semaphore(self.concurrency)

        async def one(item: OutboxItem) -> None:
            await limit.acquire()
            parked = False
            try:
                # On shutdown, or once the store refuses to record outcomes, what has not
                # started stays pending.
                if not self._stopping() and not self._unsaved:
                    saved, outcome = await self._send(item)
                    self._park(saved, outcome)  # its place is given back when committed
                    parked = True
            finally:
                if not parked:
                    limit.release()

        try:
            await asyncio.gather(*(one(item) for item in due))
        finally:
            self._flush_marks()
        return len(due)

    async def run(self, idle: float = 1.0, stopping: Callable[[], bool] = lambda: False) -> None:
        """Deliver until cancelled or ``stopping()``: as fast as the work comes, else poll every
        ``idle`` s. Once stopping, sends under way finish and nothing new starts."""
        self._stopping = stopping
        while not stopping():
            try:
                tried = await self.run_once()
            except StoreUnavailable as exc:
                event(log, "delivery waits for the store", logging.WARNING, error=str(exc))
                tried = 0
            if tried:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle)
        with contextlib.suppress(StoreUnavailable):
            self._save_unsaved()

    async def _send(self, item: OutboxItem) -> tuple[OutboxItem, str]:
        self._inflight.add(item.key)
        try:
            return await self._attempt(item)
        finally:
            self._inflight.discard(item.key)

    async def _attempt(self, item: OutboxItem) -> tuple[OutboxItem, str]:
        """Try the item's first usable channel; the item as it is to be saved, and the
        outcome."""
        usable = tuple(c for c in item.channels if self.channels.supports(c))
        if not usable:
            why = "no email, phone or webhook" if not item.channels else "no configured channel"
            error = f"{why} (had: {', '.join(c.split(':')[0] for c in item.channels) or 'none'})"
            return replace(item, status=UNDELIVERABLE, last_error=error), "undeliverable"
        if usable != item.channels:
            item = replace(item, channels=usable)
        channel = item.channels[0]
        try:
            await self.channels.send(channel, item)
        except DeliveryError as exc:
            return self._failed(item, channel, exc)
        except Exception as exc:  # a channel bug must not lose the message
            log.exception("channel failed unexpectedly")
            return self._failed(
                item, channel, DeliveryError(f"unexpected error: {exc!r}", permanent=False)
            )
        now = self.clock.now()
        return (
            replace(item, status=SENT, sent_at=now, sent_via=channel, tries=item.tries + 1),
            "sent",
        )

    def _failed(self, item: OutboxItem, channel: str, exc: DeliveryError) -> tuple[OutboxItem, str]:
        now = self.clock.now()
        tries = item.tries + 1
        error = f"{channel.partition(':')[0]}: {exc}"
        rest = item.channels[1:]
        exhausted = exc.permanent or (rest and tries >= self.tries_per_channel)
        if exhausted and rest:
            event(
                log, "trying next channel", item=item.key, error=error, next=rest[0].split(":")[0]
            )
            return (
                replace(item, channels=rest, tries=0, next_try_at=now, last_error=error),
                "next channel",
            )
        if exc.permanent or now - item.created_at >= self.give_up_after:
            return (
                replace(item, tries=tries, status=UNDELIVERABLE, last_error=error),
                "undeliverable",
            )
        wait = backoff(tries, self.backoff_base, self.backoff_cap, self.rng)
        return replace(item, tries=tries, next_try_at=now + wait, last_error=error), "retry"

    def _park(self, item: OutboxItem, outcome: str) -> None:
        """Keep an outcome for the next commit; commit now if enough are waiting or nothing
        else is being sent, else within ``mark_delay``."""
        self._marks[item.key] = (item, outcome)
        if len(self._marks) >= self.mark_batch or not self._inflight:
            self._flush_marks()
        elif self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self.mark_delay, self._flush_marks)

    def _flush_marks(self) -> None:
        """Commit the outcomes kept so far in one transaction (kept in memory instead while
        the store refuses), and give their places back."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._marks:
            return
        marks = list(self._marks.values())
        self._marks.clear()
        try:
            if self._unsaved:  # the older outcomes must be written first
                raise StoreUnavailable("earlier outcomes are not recorded yet")
            self.store.update_items([item for item, _ in marks])
        except StoreUnavailable as exc:
            event(log, "outcome kept until the store takes it", logging.WARNING, error=str(exc))
            # Kept in memory and written later (``_save_unsaved``): read back as pending now,
            # the items would otherwise be sent again on the next round.
            self._unsaved.update((item.key, (item, outcome)) for item, outcome in marks)
        else:
            for item, outcome in marks:
                self._told(item, outcome)
        finally:
            if self._limit is not None:
                for _ in marks:
                    self._limit.release()

    def _save_unsaved(self) -> None:
        """Record the outcomes the store refused before; raise StoreUnavailable if it still
        does."""
        if not self._unsaved:
            return
        kept = list(self._unsaved.values())
        self.store.update_items([item for item, _ in kept])
        self._unsaved.clear()
        for item, outcome in kept:
            self._told(item, outcome)

    def _told(self, item: OutboxItem, outcome: str) -> None:
        if outcome == "undeliverable":  # once: this runs when the outcome is saved
            event(
                log,
                "undeliverable",
                logging.WARNING,
                item=item.key,
                person=item.person_id,
                error=item.last_error,
            )
        for listen in self.on_outcome:
            listen(item, outcome)


__all__ = ["PENDING", "Channels", "Delivery", "backoff"]
