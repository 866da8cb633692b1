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
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

from monitor.delivery.channels import Channels, DeliveryError
from monitor.logs import event
from monitor.model import Address, Clock
from monitor.store import PENDING, SENT, UNDELIVERABLE, Outbox, OutboxItem, StoreUnavailable
from monitor.store.types import outbox_shard

log = logging.getLogger("monitor.delivery")

OutcomeListener = Callable[[OutboxItem, str, Address | None], None]
"""Told each outcome once it is saved: the item as saved; "sent", "retry", "next channel" or
"undeliverable"; and the channel it was about (the one tried; for an item no channel could
take, its first; None when it had none)."""
# An item and its outcome, as the listeners are told them.
_Outcome = tuple[OutboxItem, str, Address | None]


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

    store: Outbox
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
    on_outcome: list[OutcomeListener] = field(default_factory=list)
    _inflight: set[str] = field(default_factory=set)
    # Outcomes sent but not committed yet, each holding its place in ``_limit``, by item key.
    _marks: dict[str, _Outcome] = field(default_factory=dict)
    _limit: asyncio.Semaphore | None = None
    _flush_timer: asyncio.TimerHandle | None = None
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)  # commits the timer began
    # Keys whose outcome is being committed now: still pending in the store until the commit
    # returns, which on a database server is a round trip during which the next round may ask
    # for what is due. Read back then, they would be sent again.
    _committing: set[str] = field(default_factory=set)
    # One set per ``due`` read under way, of the keys whose outcome committed meanwhile: the
    # read may have begun before that commit (a server's snapshot) and give them as pending.
    _reading: list[set[str]] = field(default_factory=list)
    # Outcomes the store refused to record (sent, retry...), oldest first, by item key.
    _unsaved: dict[str, _Outcome] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: Callable[[], bool] = field(default=lambda: False)
    # Whether this process may send now (its hold on its shards is current); checked before
    # each send starts.
    _active: Callable[[], bool] = field(default=lambda: True)
    # The outbox shards this process sends from (None: all, as a monitor alone does).
    shards: Callable[[], Collection[int] | None] = field(default=lambda: None)
    _settled: asyncio.Event = field(default_factory=asyncio.Event)  # set at each commit
    _shard_of: dict[str, int] = field(default_factory=dict)  # of each message under way

    @property
    def claimed(self) -> int:
        """Messages this process is sending or has sent without their outcome recorded yet."""
        return len(self._inflight) + len(self._marks) + len(self._committing) + len(self._unsaved)

    async def let_go(self, shards: Collection[int], wait: float = 10.0) -> None:
        """Return once no message of ``shards`` is being sent or awaits its outcome's commit
        (``shards()`` no longer gives them, so none starts), or after ``wait`` seconds (a
        stopped delivery, a store away): the replica they go to next then finds each of them
        pending or settled, not on its way."""
        going = set(shards)

        def busy() -> bool:
            keys = self._inflight | self._marks.keys() | self._committing
            return any(self._shard_of.get(key) in going for key in keys)

        deadline = asyncio.get_running_loop().time() + wait
        while busy():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                event(log, "shards handed over with messages still under way", logging.WARNING)
                return
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), min(left, 1.0))

    def wake(self) -> None:
        """There may be new work: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Send everything due now, ``concurrency`` at a time; return how many were tried.
        Every outcome is committed (or, if the store refuses, kept in memory) on return.

        Raises StoreUnavailable while outcomes of earlier sends cannot be recorded: nothing
        more goes out until they are, so a message the store cannot mark sent is not sent again.
        """
        await self._save_unsaved()
        now = self.clock.now()
        settled_meanwhile: set[str] = set()
        self._reading.append(settled_meanwhile)
        try:
            read = await self.store.due(
                now, limit=self.concurrency * 8 + len(self._inflight), shards=self.shards()
            )
        finally:
            self._reading = [r for r in self._reading if r is not settled_meanwhile]
        due = [
            item
            for item in read
            if item.key not in self._inflight
            and item.key not in settled_meanwhile
            and item.key not in self._unsaved
            and item.key not in self._marks
            and item.key not in self._committing
        ]
        if not due:
            return 0
        limit = self._limit = asyncio.Semaphore(self.concurrency)

        async def one(item: OutboxItem) -> None:
            await limit.acquire()
            parked = False
            try:
                # On shutdown, or once the store refuses to record outcomes, what has not
                # started stays pending. A sent item's place is given back when committed.
                if not self._stopping() and self._active() and not self._unsaved:
                    await self._park(await self._send(item))
                    parked = True
            finally:
                if not parked:
                    limit.release()

        try:
            await asyncio.gather(*(one(item) for item in due))
        finally:
            await self._flush_marks()
        return len(due)

    async def run(
        self,
        idle: float = 1.0,
        stopping: Callable[[], bool] = lambda: False,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        """Deliver until cancelled or ``stopping()``: as fast as the work comes, else poll every
        ``idle`` s. Once stopping, sends under way finish and nothing new starts; while not
        ``active()`` (another replica sends), nothing new starts either."""
        self._stopping, self._active = stopping, active
        while not stopping():
            try:
                if active():
                    tried = await self.run_once()
                else:
                    # Not sending (cut off from the database until a moment ago, say), but the
                    # outcomes kept meanwhile are recorded as soon as the store takes them.
                    await self._save_unsaved()
                    tried = 0
            except StoreUnavailable as exc:
                event(log, "delivery waits for the store", logging.WARNING, error=str(exc))
                tried = 0
            if tried:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle)
        with contextlib.suppress(StoreUnavailable):
            await self._save_unsaved()

    async def _send(self, item: OutboxItem) -> _Outcome:
        self._inflight.add(item.key)
        self._shard_of[item.key] = outbox_shard(item.person_id)
        try:
            return await self._attempt(item)
        finally:
            self._inflight.discard(item.key)

    async def _attempt(self, item: OutboxItem) -> _Outcome:
        """Try the item's first usable channel; the item as it is to be saved, the outcome,
        and the channel it was about."""
        usable = tuple(a for a in item.channels if self.channels.supports(a))
        if not usable:
            why = "no email, phone or webhook" if not item.channels else "no configured channel"
            error = f"{why} (had: {', '.join(a.kind for a in item.channels) or 'none'})"
            first = item.channels[0] if item.channels else None
            return replace(item, status=UNDELIVERABLE, last_error=error), "undeliverable", first
        if len(usable) != len(item.channels):
            item = replace(item, channels=usable)
        address = usable[0]
        try:
            await self.channels.send(address, item)
        except DeliveryError as exc:
            return self._failed(item, address, exc)
        except Exception as exc:  # a channel bug must not lose the message
            log.exception("channel failed unexpectedly")
            return self._failed(
                item, address, DeliveryError(f"unexpected error: {exc!r}", permanent=False)
            )
        now = self.clock.now()
        return (
            replace(item, status=SENT, sent_at=now, sent_via=address, tries=item.tries + 1),
            "sent",
            address,
        )

    def _failed(self, item: OutboxItem, address: Address, exc: DeliveryError) -> _Outcome:
        now = self.clock.now()
        tries = item.tries + 1
        error = f"{address.kind}: {exc}"
        rest = item.channels[1:]
        exhausted = exc.permanent or (rest and tries >= self.tries_per_channel)
        if exhausted and rest:
            event(log, "trying next channel", item=item.key, error=error, next=rest[0].kind)
            return (
                replace(item, channels=rest, tries=0, next_try_at=now, last_error=error),
                "next channel",
                address,
            )
        if exc.permanent or now - item.created_at >= self.give_up_after:
            return (
                replace(item, tries=tries, status=UNDELIVERABLE, last_error=error),
                "undeliverable",
                address,
            )
        wait = backoff(tries, self.backoff_base, self.backoff_cap, self.rng)
        saved = replace(item, tries=tries, next_try_at=now + wait, last_error=error)
        return saved, "retry", address

    async def _park(self, outcome: _Outcome) -> None:
        """Keep an outcome for the next commit; commit now if enough are waiting or nothing
        else is being sent, else within ``mark_delay``."""
        self._marks[outcome[0].key] = outcome
        if len(self._marks) >= self.mark_batch or not self._inflight:
            await self._flush_marks()
        elif self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self.mark_delay, self._flush_later)

    def _flush_later(self) -> None:
        """``mark_delay`` is up: commit what is kept, in a task of its own (kept referenced
        until it is done)."""
        self._flush_timer = None
        task = asyncio.get_running_loop().create_task(self._flush_marks(), name="commit marks")
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush_marks(self) -> None:
        """Commit the outcomes kept so far in one transaction (kept in memory instead while
        the store refuses), and give their places back."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._marks:
            return
        marks = list(self._marks.values())
        self._marks.clear()
        committing = [item.key for item, _, _ in marks]
        self._committing.update(committing)
        try:
            if self._unsaved:  # the older outcomes must be written first
                raise StoreUnavailable("earlier outcomes are not recorded yet")
            await self.store.update_items([item for item, _, _ in marks])
        except StoreUnavailable as exc:
            event(log, "outcome kept until the store takes it", logging.WARNING, error=str(exc))
            # Kept in memory and written later (``_save_unsaved``): read back as pending now,
            # the items would otherwise be sent again on the next round.
            self._unsaved.update((mark[0].key, mark) for mark in marks)
        else:
            for reading in self._reading:
                reading.update(committing)
            for item, outcome, channel in marks:
                self._told(item, outcome, channel)
        finally:
            # Committed, or kept in ``_unsaved`` (which ``run_once`` leaves alone too).
            self._committing.difference_update(committing)
            for key in committing:
                if key not in self._unsaved:
                    self._shard_of.pop(key, None)
            self._settled.set()
            if self._limit is not None:
                for _ in marks:
                    self._limit.release()

    async def _save_unsaved(self) -> None:
        """Record the outcomes the store refused before; raise StoreUnavailable if it still
        does."""
        if not self._unsaved:
            return
        kept = list(self._unsaved.values())
        await self.store.update_items([item for item, _, _ in kept])
        # Only what was written: outcomes kept meanwhile (while awaiting a server) stay kept.
        for item, _, _ in kept:
            del self._unsaved[item.key]
            self._shard_of.pop(item.key, None)
        for reading in self._reading:
            reading.update(item.key for item, _, _ in kept)
        for item, outcome, channel in kept:
            self._told(item, outcome, channel)

    def _told(self, item: OutboxItem, outcome: str, channel: Address | None) -> None:
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
            listen(item, outcome, channel)


__all__ = ["PENDING", "Channels", "Delivery", "backoff"]
