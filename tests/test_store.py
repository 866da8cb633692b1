"""The SQLite store: history stays bounded, state survives a restart, failures are named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from clock import FakeClock
from world import decided

from monitor.incidents.correlation import Incident
from monitor.model import Attempt, Health, Person, ProbeResult, SystemState, Transition
from monitor.store import SQLiteStore, StoreUnavailable


def results(system: str, start: float, count: int) -> list[ProbeResult]:
    return [ProbeResult(system, True, "status 200", start + i, 0.01) for i in range(count)]


async def test_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    """The database file is in WAL mode, so readers never block the monitor's writes."""
    store = SQLiteStore(tmp_path / "monitor.db")
    mode = next(store.db.query("PRAGMA journal_mode"))["journal_mode"]
    await store.close()
    assert mode == "wal"


async def test_results_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    """Results older than the retention age are deleted; newer ones stay."""
    store = SQLiteStore(tmp_path / "monitor.db")
    await store.record_results(results("payment", 1000.0, 10))
    deleted = await store.prune_results(older_than=1005.0, keep_per_system=1000)
    assert deleted == 5
    assert [r.started_at for r in await store.recent_results("payment")] == [
        1009.0,
        1008.0,
        1007.0,
        1006.0,
        1005.0,
    ]
    await store.close()


async def test_each_system_keeps_at_most_max_results(tmp_path: Path) -> None:
    """With a cap of 3 per system, each system keeps its 3 newest results."""
    store = SQLiteStore(tmp_path / "monitor.db")
    await store.record_results(results("payment", 1000.0, 10) + results("login", 1000.0, 2))
    await store.prune_results(older_than=0.0, keep_per_system=3)
    assert [r.started_at for r in await store.recent_results("payment")] == [1009.0, 1008.0, 1007.0]
    assert len(await store.recent_results("login")) == 2
    await store.close()


async def test_state_and_transitions_survive_reopening(tmp_path: Path) -> None:
    """A transition saved with its state is there, unchanged, when the file is opened again."""
    path = tmp_path / "monitor.db"
    store = SQLiteStore(path)
    state = SystemState(
        "payment", Health.DOWN, since=1030.0, fail_streak=4, last_reason="timed out after 5s"
    )
    await store.save_transition(
        Transition("payment", 1030.0, Health.UP, Health.DOWN, "timed out after 5s", 3), state
    )
    await store.close()
    again = SQLiteStore(path)
    assert await again.load_states() == {"payment": state}
    assert [t.current for t in await again.transitions("payment")] == [Health.DOWN]
    await again.close()


async def test_a_database_refusing_writes_is_reported_not_crashed(tmp_path: Path) -> None:
    """When SQLite refuses writes (here: query_only, as for a read-only file), the store
    raises StoreUnavailable with SQLite's reason instead of a raw sqlite3 error."""
    store = SQLiteStore(tmp_path / "monitor.db")
    store.db.execute("PRAGMA query_only=1")
    with pytest.raises(StoreUnavailable, match="readonly"):
        await store.check_writable()
    with pytest.raises(StoreUnavailable, match="readonly"):
        await store.record_results(results("payment", 1000.0, 1))
    await store.close()


async def test_attempts_older_than_the_cutoff_are_forgotten(tmp_path: Path) -> None:
    """Pruning attempts drops the old ones and keeps the recent ones."""
    store = SQLiteStore(tmp_path / "monitor.db")
    eve = Person("eve", "Eve")
    await store.add_attempt(Attempt("payment", "eve", "pay", 100.0), eve)
    await store.add_attempt(Attempt("payment", "eve", "pay again", 900.0), eve)
    assert await store.prune_attempts(older_than=500.0) == 1
    assert [a.action for a in await store.attempts(["payment"], since=0.0)] == ["pay again"]
    await store.close()


async def test_who_was_told_what_reads_back_a_page_at_a_time(tmp_path: Path) -> None:
    """2,500 people told about incident 1 (and one about incident 2) read back in pages of
    1,000, by id: every person of incident 1 once, with their systems, and no one else."""
    store = SQLiteStore(tmp_path / "monitor.db")
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"}) for i in range(2500)
    }
    await store.decide([], told, 1)
    await store.decide([], {"other": frozenset({"crm"})}, 2)
    pages = [page async for page in store.told_pages(1, size=1000)]
    await store.close()
    assert [len(page) for page in pages] == [1000, 1000, 500]
    merged = {person: systems for page in pages for person, systems in page.items()}
    assert merged == told
    assert [person for page in pages for person in page] == sorted(told)


async def test_what_some_people_were_told_is_read_for_just_those_people(tmp_path: Path) -> None:
    """Asked about 1,200 ids of incident 1 (more than one query takes), the store gives what
    the told ones among them were told, and nothing for the others or for incident 2."""
    store = SQLiteStore(tmp_path / "monitor.db")
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"})
        for i in range(0, 3000, 2)
    }
    await store.decide([], told, 1)
    await store.decide([], {"p00001": frozenset({"crm"})}, 2)
    asked = [f"p{i:05d}" for i in range(1200)]
    found = await store.told_about(1, asked)
    await store.close()
    assert found == {person: told[person] for person in asked if person in told}


async def test_messages_per_person_are_counted_since_a_moment(tmp_path: Path) -> None:
    """Each of 1,200 people has one message at t=100 and the even ones one more at t=500:
    counted since t=200 they have 1 (even) or none (odd, left out); since 0, 2 or 1."""
    clock = FakeClock(100.0)
    store = SQLiteStore(tmp_path / "monitor.db")
    people = [f"p{i:05d}" for i in range(1200)]
    await decided(store, clock, people)
    later = [
        replace(item, key=f"{item.key}.later", created_at=500.0)
        for item in await store.outbox_items(1)
        if int(item.person_id[1:]) % 2 == 0
    ]
    await store.decide(later, {}, 1)
    since_200 = await store.message_counts(people, since=200.0)
    since_0 = await store.message_counts(people, since=0.0)
    await store.close()
    assert since_200 == dict.fromkeys(people[::2], 1)
    assert since_0 == {person: 2 if i % 2 == 0 else 1 for i, person in enumerate(people)}


async def test_subscribers_of_several_systems_come_once_each_in_id_order(tmp_path: Path) -> None:
    """2,500 people over three systems, many on two or three of them, read across pages of
    1,000: each subscriber of payment or login exactly once, in id order, with their details;
    crm-only people and subscriptions whose person has gone are not included."""
    store = SQLiteStore(tmp_path / "monitor.db")
    plans = [("payment",), ("login",), ("payment", "login"), ("crm",), ("payment", "crm")]
    people = [
        Person(f"p{i:05d}", f"Person {i}", f"p{i}@example.com", None, None, plans[i % 5])
        for i in range(2500)
    ]
    await store.upsert_people(people)
    store.db.execute("INSERT INTO subscriptions VALUES ('login', 'gone')")
    found = [p async for page in store.subscriber_pages(["login", "payment"]) for p in page]
    await store.close()
    expected = [p for p in people if {"payment", "login"} & set(p.systems)]
    assert found == expected
    assert len(found) == 2000


async def test_subscribers_of_every_system_in_a_mass_failure_come_once_each_in_id_order(
    tmp_path: Path,
) -> None:
    """The same over 100 systems failing together (read in person order, not system by
    system): 2,500 people on one to three of 120 systems, across pages of 1,000; those on any
    of the 100 come once each, in id order; the rest and vanished people are left out."""
    store = SQLiteStore(tmp_path / "monitor.db")
    systems = [f"app-{n}" for n in range(120)]
    people = [
        Person(f"p{i:05d}", f"Person {i}", None, None, None, tuple(systems[i % 120 :][: i % 3 + 1]))
        for i in range(2500)
    ]
    await store.upsert_people(people)
    store.db.execute("INSERT INTO subscriptions VALUES ('app-1', 'gone')")
    down = systems[:100]
    found = [p async for page in store.subscriber_pages(reversed(down)) for p in page]
    await store.close()
    expected = [p for p in people if set(down) & set(p.systems)]
    assert found == expected
    assert 2000 < len(found) < 2500


async def test_two_processes_taking_incident_ids_never_get_the_same_one(tmp_path: Path) -> None:
    """Two stores on one file (two monitors on one database), taking incident ids in turn
    with nothing saved in between: each id is reserved by the database, so none is given twice."""
    path = tmp_path / "monitor.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    taken = []
    for _ in range(3):
        taken += [await first.new_incident_id(), await second.new_incident_id()]
    await first.close()
    await second.close()
    assert taken == [1, 2, 3, 4, 5, 6]


async def test_incident_ids_go_on_after_the_highest_incident_saved(tmp_path: Path) -> None:
    """An incident already there with a higher id than any reserved (as in a file written
    before ids were reserved) is never given again: the next id comes after it."""
    store = SQLiteStore(tmp_path / "monitor.db")
    assert await store.new_incident_id() == 1
    await store.save_incident(Incident(id=7, opened_at=100.0, members=(), cause="payment"))
    assert await store.new_incident_id() == 8
    await store.close()
