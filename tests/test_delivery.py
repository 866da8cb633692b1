"""Delivery's bookkeeping against a real mail server and a real SQLite outbox: outcomes are
committed several at a time, never held back, and never leave more than ``concurrency``
messages sent but not marked (what a ``kill -9`` would send again)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from pathlib import Path

from clock import FakeClock
from world import decided

from monitor.delivery.channels import EmailChannel
from monitor.delivery.sender import Channels, Delivery
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.store import PENDING, SENT, OutboxItem, SQLiteStore
from monitor.store.types import outbox_shard


class RecordingStore(SQLiteStore):
    """The real store, remembering how many outcomes each commit carried."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits: list[int] = []

    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        await super().update_items(items)
        self.commits.append(len(items))


async def sent_count(store: SQLiteStore) -> int:
    return (await store.outbox_counts(1)).get("acknowledge", {}).get(SENT, 0)


async def test_outcomes_are_committed_together_and_never_more_than_concurrency_unmarked(
    tmp_path: Path,
) -> None:
    """60 messages, 16 at a time: outcomes go to the store at most 8 per commit, in far fewer
    commits than messages; whenever the server accepts a message, the messages it has that are
    not marked sent (the ones a crash now would send again) are at most 16."""
    clock = FakeClock()
    store = RecordingStore(tmp_path / "monitor.db")
    people = [f"p{i:02d}" for i in range(60)]
    await decided(store, clock, people)
    unmarked: list[int] = []

    async def accepted(_message: CaughtMessage) -> None:
        unmarked.append(len(catcher.messages) - await sent_count(store))

    async with MailCatcher(on_message=accepted) as catcher:
        # As many connections as sends: the server can hold 16 messages at once.
        email = EmailChannel.from_url(catcher.url, "status@example.com", pool_size=16)
        # No timer: only a full batch, or no send under way, commits.
        delivery = Delivery(
            store,
            Channels(email=email, message_domain="example.com"),
            clock,
            concurrency=16,
            mark_batch=8,
            mark_delay=3600,
        )
        try:
            while await delivery.run_once():
                pass
        finally:
            await email.close()
    assert len(catcher.messages) == len(people)
    assert await sent_count(store) == len(people)  # all committed when run_once returned
    assert sum(store.commits) == len(people)
    assert max(store.commits) <= 8
    assert len(store.commits) < len(people) / 2
    assert max(unmarked) <= 16
    await store.close()


async def test_an_outcome_is_committed_while_another_send_is_stalled(tmp_path: Path) -> None:
    """One message's reply is held by the server; another's "sent" is committed meanwhile
    (within ``mark_delay``), not when the stalled send ends."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "monitor.db")
    await decided(store, clock, ["slow", "quick"])
    release = asyncio.Event()
    quick_marked = asyncio.Event()

    async def hold_slow(message: CaughtMessage) -> None:
        if message.rcpt_tos == ("slow@example.com",):
            await release.wait()

    async with MailCatcher(on_message=hold_slow) as catcher:
        email = EmailChannel.from_url(catcher.url, "status@example.com")
        delivery = Delivery(
            store, Channels(email=email, message_domain="example.com"), clock, concurrency=2
        )
        delivery.on_outcome.append(
            lambda item, outcome, channel: quick_marked.set() if item.person_id == "quick" else None
        )
        try:
            sending = asyncio.create_task(delivery.run_once())
            await asyncio.wait_for(quick_marked.wait(), 30)
            status = {i.person_id: i.status for i in await store.outbox_items(1)}
            assert status == {"quick": SENT, "slow": PENDING}
            assert len(catcher.messages) == 2  # the slow one is in, its reply held
            release.set()
            assert await sending == 2
        finally:
            await email.close()
    assert {i.person_id: i.status for i in await store.outbox_items(1)} == {
        "quick": SENT,
        "slow": SENT,
    }
    await store.close()


class SlowCommitStore(SQLiteStore):
    """The real store, whose commits of outcomes take a while, as a database server's round
    trip does: other work of the event loop (the next round asking what is due) runs meanwhile.
    """

    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        await asyncio.sleep(0.003)
        await super().update_items(items)


async def test_with_commits_that_take_a_round_trip_each_message_goes_out_once(
    tmp_path: Path,
) -> None:
    """With commits of outcomes that take a round trip (as on PostgreSQL), committed by the
    timer and at the end of each round, 300 messages through the running sender: each reaches
    the mail server once, each outcome is recorded once, and all are marked sent."""
    clock = FakeClock()
    store = SlowCommitStore(tmp_path / "monitor.db")
    people = [f"p{i:03d}" for i in range(300)]
    await decided(store, clock, people)
    async with MailCatcher() as catcher:
        email = EmailChannel.from_url(catcher.url, "status@example.com")
        # Outcomes committed only by the timer and at the end of a round, never 8 at a time:
        # the timer's commits are the ones a round did not wait for.
        delivery = Delivery(
            store,
            Channels(email=email, message_domain="example.com"),
            clock,
            mark_batch=len(people),
            mark_delay=0.001,
        )
        marked: list[str] = []
        all_marked = asyncio.Event()

        def count(item: OutboxItem, outcome: str, _channel: object) -> None:
            marked.append(item.key)
            if len(marked) >= len(people):
                all_marked.set()

        delivery.on_outcome.append(count)
        runner = asyncio.create_task(delivery.run(idle=0.01))
        try:
            async with asyncio.timeout(60):
                await all_marked.wait()
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await email.close()
        ids = [m.message["Message-ID"] for m in catcher.messages]
    assert len(ids) == len(set(ids)) == len(people)
    assert sorted(marked) == sorted(set(marked))
    assert await sent_count(store) == len(people)
    assert await store.pending_count() == 0


async def test_two_senders_of_disjoint_outbox_shards_send_each_message_once(
    tmp_path: Path,
) -> None:
    """Two replicas' deliveries share one outbox (two stores on one file), one sending from
    shards 0-31, the other from 32-63, at the same time: every message is sent once, each by
    the sender of its person's shard; a sender of no shard sends nothing."""
    clock = FakeClock()
    first, second, idle = (SQLiteStore(tmp_path / "monitor.db") for _ in range(3))
    people = [f"p{i:03d}" for i in range(200)]
    await decided(first, clock, people)
    halves = {"first": set(range(32)), "second": set(range(32, 64))}
    async with MailCatcher() as catcher:
        emails = [EmailChannel.from_url(catcher.url, "status@example.com") for _ in range(3)]
        senders = [
            Delivery(
                store,
                Channels(email=email, message_domain="example.com"),
                clock,
                shards=lambda shards=shards: shards,  # type: ignore[misc]
            )
            for store, email, shards in zip(
                (first, second, idle),
                emails,
                (halves["first"], halves["second"], set()),
                strict=True,
            )
        ]
        sent_by: list[list[str]] = [[], [], []]
        for sender, sent in zip(senders, sent_by, strict=True):

            def record(item: OutboxItem, _o: str, _a: object, sent: list[str] = sent) -> None:
                sent.append(item.person_id)

            sender.on_outcome.append(record)
        try:
            while sum(await asyncio.gather(*(s.run_once() for s in senders))):
                pass
        finally:
            for email in emails:
                await email.close()
    told = [to for message in catcher.messages for to in message.rcpt_tos]
    assert sorted(told) == sorted(f"{p}@example.com" for p in people)
    assert await sent_count(first) == len(people)
    assert {outbox_shard(p) for p in sent_by[0]} <= halves["first"]
    assert {outbox_shard(p) for p in sent_by[1]} <= halves["second"]
    assert [bool(sent) for sent in sent_by] == [True, True, False]
    assert sorted(sent_by[0] + sent_by[1]) == people
    for store in (first, second, idle):
        await store.close()


class HeldCommitAndRead(SQLiteStore):
    """The real store, with two moments a test holds: the first outcome commit (as a database
    server's commit that takes a while), and a ``due`` read after reading (as a server's query
    whose snapshot predates a commit that finishes meanwhile)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release_commit = asyncio.Event()
        self.committing = asyncio.Event()  # the first commit has begun
        self.committed = asyncio.Event()  # ... and is done
        self.hold_due = False
        self.release_due = asyncio.Event()
        self.due_read = asyncio.Event()

    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        if self.committing.is_set():
            await super().update_items(items)
            return
        self.committing.set()
        await self.release_commit.wait()
        await super().update_items(items)
        self.committed.set()

    async def due(
        self, now: float, limit: int, shards: Collection[int] | None = None
    ) -> list[OutboxItem]:
        read = await super().due(now, limit, shards)
        if self.hold_due:
            self.due_read.set()
            await self.release_due.wait()
        return read


async def test_a_message_whose_outcome_commits_while_due_is_read_is_not_sent_again(
    tmp_path: Path,
) -> None:
    """Alice's outcome is being committed (slowly) when the next round reads what is due: the
    read still sees her message pending, and the commit finishes before the read returns.
    She gets one message, not two (the duplicates a benchmark on PostgreSQL found)."""
    clock = FakeClock()
    store = HeldCommitAndRead(tmp_path / "monitor.db")
    await decided(store, clock, ["alice", "bob"])
    bob_gate = asyncio.Event()

    async def accepted(message: CaughtMessage) -> None:
        if "bob@example.com" in message.rcpt_tos:
            await bob_gate.wait()  # Bob's send is under way while Alice's outcome commits

    async with MailCatcher(on_message=accepted) as catcher:
        email = EmailChannel.from_url(catcher.url, "status@example.com", pool_size=2)
        delivery = Delivery(
            store,
            Channels(email=email, message_domain="example.com"),
            clock,
            concurrency=2,
            mark_batch=8,
            mark_delay=0.0,  # Alice's outcome goes to a commit of its own at once
        )
        try:
            first = asyncio.create_task(delivery.run_once())
            await store.committing.wait()  # Alice's commit has begun, and is held
            bob_gate.set()
            await first  # Bob sent and committed; Alice's commit still held
            store.hold_due = True
            second = asyncio.create_task(delivery.run_once())
            await store.due_read.wait()  # the read saw Alice pending
            store.release_commit.set()
            await store.committed.wait()  # her outcome is committed before the read returns
            store.release_due.set()
            await second
        finally:
            await email.close()
    told = sorted(to for m in catcher.messages for to in m.rcpt_tos)
    assert told == ["alice@example.com", "bob@example.com"]
    await store.close()
