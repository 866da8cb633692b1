"""The SQLite store: history stays bounded, state survives a restart, failures are named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from clock import FakeClock
from world import decided

from monitor.model import Attempt, Health, Person, ProbeResult, SystemState, Transition
from monitor.store import SQLiteStore, StoreUnavailable


def results(system: str, start: float, count: int) -> list[ProbeResult]:
    return [ProbeResult(system, True, "status 200", start + i, 0.01) for i in range(count)]


def test_store_uses_write_ahead_logging(tmp_path: Path) -> None:
    """The database file is in WAL mode, so readers never block the monitor's writes."""
    store = SQLiteStore(tmp_path / "monitor.db")
    mode = next(store.db.query("PRAGMA journal_mode"))["journal_mode"]
    store.close()
    assert mode == "wal"


def test_results_older_than_max_age_are_pruned(tmp_path: Path) -> None:
    """Results older than the retention age are deleted; newer ones stay."""
    store = SQLiteStore(tmp_path / "monitor.db")
    store.record_results(results("payment", 1000.0, 10))
    deleted = store.prune_results(older_than=1005.0, keep_per_system=1000)
    assert deleted == 5
    assert [r.started_at for r in store.recent_results("payment")] == [
        1009.0,
        1008.0,
        1007.0,
        1006.0,
        1005.0,
    ]
    store.close()


def test_each_system_keeps_at_most_max_results(tmp_path: Path) -> None:
    """With a cap of 3 per system, each system keeps its 3 newest results."""
    store = SQLiteStore(tmp_path / "monitor.db")
    store.record_results(results("payment", 1000.0, 10) + results("login", 1000.0, 2))
    store.prune_results(older_than=0.0, keep_per_system=3)
    assert [r.started_at for r in store.recent_results("payment")] == [1009.0, 1008.0, 1007.0]
    assert len(store.recent_results("login")) == 2
    store.close()


def test_state_and_transitions_survive_reopening(tmp_path: Path) -> None:
    """A transition saved with its state is there, unchanged, when the file is opened again."""
    path = tmp_path / "monitor.db"
    store = SQLiteStore(path)
    state = SystemState(
        "payment", Health.DOWN, since=1030.0, fail_streak=4, last_reason="timed out after 5s"
    )
    store.save_transition(
        Transition("payment", 1030.0, Health.UP, Health.DOWN, "timed out after 5s", 3), state
    )
    store.close()
    again = SQLiteStore(path)
    assert again.load_states() == {"payment": state}
    assert [t.current for t in again.transitions("payment")] == [Health.DOWN]
    again.close()


def test_a_database_refusing_writes_is_reported_not_crashed(tmp_path: Path) -> None:
    """When SQLite refuses writes (here: query_only, as for a read-only file), the store
    raises StoreUnavailable with SQLite's reason instead of a raw sqlite3 error."""
    store = SQLiteStore(tmp_path / "monitor.db")
    store.db.execute("PRAGMA query_only=1")
    with pytest.raises(StoreUnavailable, match="readonly"):
        store.check_writable()
    with pytest.raises(StoreUnavailable, match="readonly"):
        store.record_results(results("payment", 1000.0, 1))
    store.close()


def test_attempts_older_than_the_cutoff_are_forgotten(tmp_path: Path) -> None:
    """Pruning attempts drops the old ones and keeps the recent ones."""
    store = SQLiteStore(tmp_path / "monitor.db")
    eve = Person("eve", "Eve")
    store.add_attempt(Attempt("payment", "eve", "pay", 100.0), eve)
    store.add_attempt(Attempt("payment", "eve", "pay again", 900.0), eve)
    assert store.prune_attempts(older_than=500.0) == 1
    assert [a.action for a in store.attempts(["payment"], since=0.0)] == ["pay again"]
    store.close()


def test_who_was_told_what_reads_back_a_page_at_a_time(tmp_path: Path) -> None:
    """2,500 people told about incident 1 (and one about incident 2) read back in pages of
    1,000, by id: every person of incident 1 once, with their systems, and no one else."""
    store = SQLiteStore(tmp_path / "monitor.db")
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"}) for i in range(2500)
    }
    store.decide([], told, 1)
    store.decide([], {"other": frozenset({"crm"})}, 2)
    pages = list(store.told_pages(1, size=1000))
    store.close()
    assert [len(page) for page in pages] == [1000, 1000, 500]
    merged = {person: systems for page in pages for person, systems in page.items()}
    assert merged == told
    assert [person for page in pages for person in page] == sorted(told)


def test_what_some_people_were_told_is_read_for_just_those_people(tmp_path: Path) -> None:
    """Asked about 1,200 ids of incident 1 (more than one query takes), the store gives what
    the told ones among them were told, and nothing for the others or for incident 2."""
    store = SQLiteStore(tmp_path / "monitor.db")
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"})
        for i in range(0, 3000, 2)
    }
    store.decide([], told, 1)
    store.decide([], {"p00001": frozenset({"crm"})}, 2)
    asked = [f"p{i:05d}" for i in range(1200)]
    found = store.told_about(1, asked)
    store.close()
    assert found == {person: told[person] for person in asked if person in told}


def test_messages_per_person_are_counted_since_a_moment(tmp_path: Path) -> None:
    """Each of 1,200 people has one message at t=100 and the even ones one more at t=500:
    counted since t=200 they have 1 (even) or none (odd, left out); since 0, 2 or 1."""
    clock = FakeClock(100.0)
    store = SQLiteStore(tmp_path / "monitor.db")
    people = [f"p{i:05d}" for i in range(1200)]
    decided(store, clock, people)
    later = [
        replace(item, key=f"{item.key}.later", created_at=500.0)
        for item in store.outbox_items(1)
        if int(item.person_id[1:]) % 2 == 0
    ]
    store.decide(later, {}, 1)
    since_200 = store.message_counts(people, since=200.0)
    since_0 = store.message_counts(people, since=0.0)
    store.close()
    assert since_200 == dict.fromkeys(people[::2], 1)
    assert since_0 == {person: 2 if i % 2 == 0 else 1 for i, person in enumerate(people)}


def test_subscribers_of_several_systems_come_once_each_in_id_order(tmp_path: Path) -> None:
    """2,500 people over three systems, many on two or three of them, read across pages of
    1,000: each subscriber of payment or login exactly once, in id order, with their details;
    crm-only people and subscriptions whose person has gone are not included."""
    store = SQLiteStore(tmp_path / "monitor.db")
    plans = [("payment",), ("login",), ("payment", "login"), ("crm",), ("payment", "crm")]
    people = [
        Person(f"p{i:05d}", f"Person {i}", f"p{i}@example.com", None, None, plans[i % 5])
        for i in range(2500)
    ]
    store.upsert_people(people)
    store.db.execute("INSERT INTO subscriptions VALUES ('login', 'gone')")
    found = list(store.people_for_systems(["login", "payment"]))
    store.close()
    expected = [p for p in people if {"payment", "login"} & set(p.systems)]
    assert found == expected
    assert len(found) == 2000


def test_subscribers_of_every_system_in_a_mass_failure_come_once_each_in_id_order(
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
    store.upsert_people(people)
    store.db.execute("INSERT INTO subscriptions VALUES ('app-1', 'gone')")
    down = systems[:100]
    found = list(store.people_for_systems(reversed(down)))
    store.close()
    expected = [p for p in people if set(down) & set(p.systems)]
    assert found == expected
    assert 2000 < len(found) < 2500
