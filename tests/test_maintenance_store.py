"""The store's contract for planned work (``roles.Maintenance``), run against every backend
(SQLite, PostgreSQL) with the contract suite's fixtures: windows posted to the API kept under
ids never handed out again and seen by a second process at once; each occurrence recorded
once whoever records it, with when its cancellation began; its messages kept under minus its
id, in order per person, exactly once (two processes deciding one notice at once keep one),
and pruned with it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from test_store_contract import Backend, backend, database, message, sent, store

from monitor.store import Store

__all__ = ["backend", "database", "store"]  # the contract suite's fixtures, used here

SPEC = '{"systems": ["payment"], "start": "2026-12-13T02:00:00", "end": "2026-12-13T04:00:00"}'


async def test_windows_posted_are_kept_under_ids_never_handed_out_again(
    backend: Backend, store: Store
) -> None:
    """Each window gets a new id; another process reads them at once; a removed one is gone,
    and its id is not given to the next."""
    first = await store.add_maintenance_window(SPEC, 100.0)
    second = await store.add_maintenance_window(SPEC.replace("payment", "crm"), 110.0)
    assert second.id > first.id
    other = await backend.open()
    assert await other.maintenance_windows() == [first, second]
    assert await other.remove_maintenance_window(second.id)
    assert not await store.remove_maintenance_window(second.id)
    third = await store.add_maintenance_window(SPEC, 120.0)
    assert third.id > second.id
    assert [w.id for w in await store.maintenance_windows()] == [first.id, third.id]


async def test_an_occurrence_is_recorded_once_whoever_records_it(
    backend: Backend, store: Store
) -> None:
    """Two processes beginning the same occurrence get one record; it is listed until it is
    told as over, and a moment recorded stays what it was first."""
    made = await store.begin_maintenance_notice("db-202612130100", ["payment", "login"], 10.0, 20.0)
    other = await backend.open()
    again = await other.begin_maintenance_notice("db-202612130100", ["crm"], 11.0, 21.0)
    assert again == made
    assert (made.systems, made.starts_at, made.ends_at) == (("payment", "login"), 10.0, 20.0)
    later = await store.begin_maintenance_notice("db-202612200100", ["payment"], 30.0, 40.0)
    assert later.id > made.id
    await other.mark_maintenance_notice(made.id, announced_at=5.0)
    await store.mark_maintenance_notice(made.id, announced_at=6.0)
    assert await store.maintenance_notices() == [replace(made, announced_at=5.0), later]
    await store.mark_maintenance_notice(made.id, over_at=25.0)
    assert await other.maintenance_notices() == [later]
    assert (await store.begin_maintenance_notice("db-202612130100", [], 0.0, 0.0)).over_at == 25.0


async def test_an_occurrences_messages_are_kept_under_minus_its_id_in_order_per_person(
    store: Store,
) -> None:
    """Its notice and over-note go in order for each person, each key once; who was told reads
    back under minus its id, beside an incident of the same number untouched."""
    record = await store.begin_maintenance_notice("db-202612130100", ["payment"], 10.0, 20.0)
    key = -record.id
    notice = replace(message("alice", kind="maintenance"), key="maintenance-db.notice.alice")
    notice = replace(notice, incident_id=key)
    over = replace(notice, key="maintenance-db.over.alice", kind="maintenance-over")
    over = replace(over, created_at=120.0, next_try_at=50.0)
    told = {"alice": frozenset({"payment"})}
    assert await store.decide([notice], told, key) == 1
    assert await store.decide([notice, over], {}, key) == 1
    await store.decide([message("alice", incident=record.id)], {}, record.id)
    due = await store.due(now=1000.0, limit=10)
    assert [(i.key, i.incident_id) for i in due] == [
        ("maintenance-db.notice.alice", key),
        (f"incident-{record.id}.acknowledge.alice", record.id),
    ]
    assert [page async for page in store.told_pages(key)] == [told]
    assert await store.told_about(record.id, ["alice"]) == {}


async def test_an_occurrence_over_goes_with_its_messages_once_none_is_pending(
    store: Store,
) -> None:
    """Told as over before the cut-off, it is pruned a batch at a time: its settled messages,
    then (once none is pending) who was told, then the record; an occurrence not over, or over
    since, is not touched."""
    over = await store.begin_maintenance_notice("a-1", ["payment"], 10.0, 20.0)
    still = await store.begin_maintenance_notice("b-1", ["payment"], 10.0, 20.0)
    recent = await store.begin_maintenance_notice("c-1", ["payment"], 10.0, 20.0)
    for record in (over, recent):
        await store.mark_maintenance_notice(record.id, over_at=500.0 if record is over else 900.0)
    items = [
        replace(message(p), key=f"maintenance-a-1.notice.{p}", incident_id=-over.id)
        for p in ("alice", "bob", "carol")
    ]
    await store.decide(items, {p: frozenset({"payment"}) for p in ("alice", "bob")}, -over.id)
    assert await store.prunable_maintenance_notices(800.0) == []  # messages still pending
    await store.update_items([sent(i) for i in items[:2]])
    assert await store.prune_maintenance_notice(over.id, 800.0, batch=1) == 1  # settled ones
    assert await store.prune_maintenance_notice(over.id, 800.0, batch=1) == 1
    assert await store.prune_maintenance_notice(over.id, 800.0) == 0  # carol's is pending
    assert await store.told_about(-over.id, ["alice"]) == {"alice": frozenset({"payment"})}
    await store.update_items([sent(items[2])])
    assert await store.prunable_maintenance_notices(800.0) == [over.id]
    assert await store.prune_maintenance_notice(over.id, 800.0) == 1
    assert await store.prune_maintenance_notice(over.id, 800.0) == 2  # told
    assert await store.prune_maintenance_notice(over.id, 800.0) == 1  # the record
    assert await store.prune_maintenance_notice(over.id, 800.0) == 0
    assert await store.outbox_items(-over.id) == []
    assert await store.prune_maintenance_notice(recent.id, 800.0) == 0
    assert [r.ref for r in await store.maintenance_notices()] == ["b-1"]
    assert still.over_at is None
    assert await store.pending_count() == 0


async def test_a_cancellation_begun_is_recorded_once_and_the_occurrence_stays_open_until_over(
    backend: Backend, store: Store
) -> None:
    """When telling it cancelled began is kept as first recorded, whoever records it again; the
    occurrence is still read as open, with it, until it is told as over."""
    made = await store.begin_maintenance_notice("db-202612130100", ["payment"], 10.0, 20.0)
    assert made.cancelled_at is None
    other = await backend.open()
    await store.mark_maintenance_notice(made.id, cancelled_at=5.0)
    await other.mark_maintenance_notice(made.id, cancelled_at=6.0, announced_at=4.0)
    assert await other.maintenance_notices() == [replace(made, announced_at=4.0, cancelled_at=5.0)]
    await store.mark_maintenance_notice(made.id, over_at=7.0)
    assert await other.maintenance_notices() == []
    again = await other.begin_maintenance_notice("db-202612130100", ["payment"], 10.0, 20.0)
    assert (again.cancelled_at, again.over_at) == (5.0, 7.0)


async def test_a_notice_decided_by_two_processes_at_once_is_one_message(
    backend: Backend, store: Store
) -> None:
    """Two replicas telling one new subscriber of the same occurrence at the same moment (the
    confirm link taken by both) keep one message: its key is unique in the database."""
    record = await store.begin_maintenance_notice("db-202612130100", ["payment"], 10.0, 20.0)
    key = -record.id
    notice = replace(
        message("alice", kind="maintenance"), key="maintenance-db.notice.alice", incident_id=key
    )
    other = await backend.open()
    told = {"alice": frozenset({"payment"})}
    new = await asyncio.gather(store.decide([notice], told, key), other.decide([notice], told, key))
    assert sorted(new) == [0, 1]
    assert await store.outbox_items(key) == [notice]
    assert [page async for page in other.told_pages(key)] == [told]
