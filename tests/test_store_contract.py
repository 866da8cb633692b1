"""The store's contract, one suite run against every backend (SQLite, PostgreSQL): what each
role method promises (``monitor/store/roles.py``) and what every backend guarantees
(docs/store.md): saved as it was, each batch all or nothing, each key decided once, a settled
message final, incident ids never handed out twice, pages in id order, StoreUnavailable and
never a password when the database cannot answer."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import LiteralString, NamedTuple, cast
from urllib.parse import quote

import psycopg
import pytest
from killable import until
from postgres import Database

from monitor.incidents.correlation import Incident, Member
from monitor.model import Address, Attempt, Health, Person, ProbeResult, SystemState, Transition
from monitor.store import (
    PENDING,
    SENT,
    UNDELIVERABLE,
    OutboxItem,
    SQLiteStore,
    Store,
    StoreUnavailable,
    TimelineEntry,
)

BACKENDS = ["sqlite", "postgresql"]
# A write the database refuses half-way through a batch: the backend's own error, or its
# StoreUnavailable. The batch must leave nothing behind either way.
REFUSED = (StoreUnavailable, sqlite3.Error, psycopg.Error)
RECONNECT_S = 30.0  # how long a backend may take to reach a database server started again


@dataclass
class Backend:
    """One backend's database for one test: stores opened on it (closed after the test), its
    own SQL for the few things the interface cannot do (a subscription whose person vanished),
    and a way to make it refuse writes and take them again."""

    location: str  # a SQLite file, or a postgresql:// URL
    postgres: Database | None = None
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        """Another store on the same database, as a second process would open it."""
        store: Store
        if self.postgres is None:
            store = SQLiteStore(self.location)
        else:
            from monitor.store.postgres import open_postgres

            store = await open_postgres(self.location, upgrade=True)
        self.opened.append(store)
        return store

    async def reopen(self, store: Store) -> Store:
        """Close ``store`` and open the database again, as after a restart."""
        self.opened.remove(store)
        await store.close()
        return await self.open()

    async def close(self) -> None:
        while self.opened:
            await self.opened.pop().close()

    def execute(self, sql: LiteralString) -> None:
        """Run ``sql`` on the database itself, beside any store."""
        if self.postgres is None:
            with contextlib.closing(sqlite3.connect(self.location)) as conn, conn:
                conn.execute(sql)
        else:
            with psycopg.connect(self.location, autocommit=True) as pg:
                pg.execute(sql)

    def refuse_writes(self, store: Store) -> None:
        """SQLite: the connection turns read-only; PostgreSQL: the server stops, as a crash."""
        if self.postgres is None:
            assert isinstance(store, SQLiteStore)
            store.db.execute("PRAGMA query_only=1")
        else:
            self.postgres.cluster.stop("immediate")

    def take_writes(self, store: Store) -> None:
        if self.postgres is None:
            assert isinstance(store, SQLiteStore)
            store.db.execute("PRAGMA query_only=0")
        else:
            self.postgres.cluster.start()

    def secrets(self) -> list[str]:
        """What no message of the store may quote: the server's password."""
        if self.postgres is None:
            return []
        password = self.postgres.cluster.password
        return [password, quote(password, safe="")]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Where the test's store lives: a file in the test's folder, or a new PostgreSQL
    database (the PostgreSQL tests skip, saying why, where no server can be started)."""
    if request.param == "sqlite":
        return Backend(str(tmp_path / "monitor.db"))
    pg = request.getfixturevalue("pg_database")
    assert isinstance(pg, Database)
    return Backend(pg.url, pg)


@pytest.fixture
async def backend(database: Backend) -> AsyncIterator[Backend]:
    """The test's database, every store opened on it closed after the test."""
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    """A store on a new, empty database of the backend, upgraded to this monitor's schema."""
    return await backend.open()


# what the tests write ----------------------------------------------------------------------


def results(system: str, start: float, count: int) -> list[ProbeResult]:
    return [ProbeResult(system, True, "status 200", start + i, 0.01) for i in range(count)]


def transition(system: str, at: float, current: Health, streak: int = 3) -> Transition:
    previous = Health.UP if current is Health.DOWN else Health.DOWN
    return Transition(system, at, previous, current, f"status at {at:g}", streak)


def state_after(change: Transition) -> SystemState:
    down = change.current is Health.DOWN
    return SystemState(
        change.system,
        change.current,
        since=change.at,
        fail_streak=change.streak if down else 0,
        pass_streak=0 if down else change.streak,
        last_reason=change.reason,
        last_checked=change.at + 0.25,
    )


def message(
    person: str,
    *,
    incident: int = 1,
    kind: str = "acknowledge",
    created_at: float = 100.0,
    next_try_at: float | None = None,
) -> OutboxItem:
    """A decided message to ``person``, due at ``next_try_at`` (by default when decided)."""
    return OutboxItem(
        key=f"incident-{incident}.{kind}.{person}",
        incident_id=incident,
        person_id=person,
        kind=kind,
        reason="first",
        created_at=created_at,
        subject="Sorry: payments are failing",
        text=f"Dear {person}, we are on it.",
        html=f"<p>Dear {person}, we are on it.</p>",
        sms="We are on it.",
        channels=(Address("email", f"{person}@example.com"), Address("sms", "+15550100")),
        next_try_at=created_at if next_try_at is None else next_try_at,
    )


def sent(item: OutboxItem, at: float = 150.0) -> OutboxItem:
    return replace(item, status=SENT, tries=item.tries + 1, sent_at=at, sent_via=item.channels[0])


def undeliverable(item: OutboxItem, why: str) -> OutboxItem:
    return replace(item, status=UNDELIVERABLE, tries=item.tries + 1, last_error=why)


async def acknowledgements(store: Store, people: list[str]) -> None:
    """Incident 1's acknowledgement to each of ``people``, decided and due at t=100."""
    await store.decide([message(p) for p in people], {}, 1)


def resolved_incident(
    incident_id: int, resolved_at: float, told_at: float | None = None
) -> Incident:
    """Payment's incident, resolved at ``resolved_at``, its resolved messages decided then (or
    at ``told_at``)."""
    return Incident(
        id=incident_id,
        opened_at=resolved_at - 50,
        members=(Member("payment", resolved_at - 50, resolved_at),),
        cause="payment",
        resolved_at=resolved_at,
        notified_at=resolved_at - 40,
        resolution_told_at=resolved_at if told_at is None else told_at,
    )


def open_incident(incident_id: int, opened_at: float) -> Incident:
    return Incident(
        id=incident_id,
        opened_at=opened_at,
        members=(Member("payment", opened_at),),
        cause="payment",
    )


class Kept(NamedTuple):
    """All the store keeps of one incident, read through the interface."""

    incident: Incident | None
    messages: list[OutboxItem]
    told: list[dict[str, frozenset[str]]]  # pages
    timeline: list[TimelineEntry]


async def everything_of(store: Store, incident_id: int) -> Kept:
    return Kept(
        await store.incident(incident_id),
        await store.outbox_items(incident_id),
        [page async for page in store.told_pages(incident_id)],
        await store.timeline(incident_id),
    )


def ids(people: list[Person]) -> list[str]:
    return [p.id for p in people]


async def apply_all(store: Store) -> None:
    """Mark every transition applied, as the notifier does once it has applied them."""
    await store.save_incidents([], [], [id_ for id_, _ in await store.unapplied_transitions(1000)])


# states, transitions, results ----------------------------------------------------------------


async def test_states_and_transitions_are_read_back_as_they_were_saved(
    backend: Backend, store: Store
) -> None:
    """States and transitions saved (one at a time, in a batch, states alone) are what a store
    opened afterwards on the same database reads: every field, transitions oldest first, the
    newest ``limit`` of them, one system's or all."""
    first = transition("payment", 1030.0, Health.DOWN)
    await store.save_transition(first, state_after(first))
    batch = [
        transition("login", 1040.5, Health.DOWN, 2),
        transition("payment", 1090.25, Health.UP, 1),
    ]
    await store.save_transitions([(t, state_after(t)) for t in batch])
    crm = SystemState("crm", Health.UNKNOWN, None, 0, 0, "", None)
    await store.save_states([crm, replace(state_after(batch[1]), last_checked=1100.0)])
    again = await backend.reopen(store)
    assert await again.load_states() == {
        "payment": replace(state_after(batch[1]), last_checked=1100.0),
        "login": state_after(batch[0]),
        "crm": crm,
    }
    assert await again.transitions() == [first, *batch]
    assert await again.transitions("payment") == [first, batch[1]]
    assert await again.transitions(limit=2) == batch
    assert await again.transitions("crm") == []


async def test_a_batch_of_transitions_refused_half_way_leaves_nothing_behind(
    store: Store,
) -> None:
    """A batch whose last state the database refuses raises, and saves none of the batch: the
    earlier transition and state are all there is."""
    before = transition("payment", 1000.0, Health.DOWN)
    await store.save_transitions([(before, state_after(before))])
    up, login = transition("payment", 1060.0, Health.UP), transition("login", 1060.0, Health.DOWN)
    # A value no backend stores (a NOT NULL column), standing for any failure half-way.
    refused = replace(state_after(login), fail_streak=cast(int, None))
    with pytest.raises(REFUSED):
        await store.save_transitions([(up, state_after(up)), (login, refused)])
    assert await store.transitions() == [before]
    assert await store.load_states() == {"payment": state_after(before)}


async def test_recent_results_come_newest_first(store: Store) -> None:
    """Results recorded in one call read back per system, newest first, at most ``limit``."""
    await store.record_results(results("payment", 1000.0, 5) + results("login", 1000.0, 2))
    await store.record_results([])
    found = await store.recent_results("payment", limit=3)
    assert found == [
        ProbeResult("payment", True, "status 200", t, 0.01) for t in (1004, 1003, 1002)
    ]
    assert len(await store.recent_results("login")) == 2
    assert await store.recent_results("crm") == []


async def test_results_older_than_max_age_are_pruned(store: Store) -> None:
    """Results older than the retention age are deleted; newer ones stay."""
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


async def test_each_system_keeps_at_most_max_results(store: Store) -> None:
    """With a cap of 3 per system, each system keeps its 3 newest results."""
    await store.record_results(results("payment", 1000.0, 10) + results("login", 1000.0, 2))
    await store.prune_results(older_than=0.0, keep_per_system=3)
    assert [r.started_at for r in await store.recent_results("payment")] == [1009.0, 1008.0, 1007.0]
    assert len(await store.recent_results("login")) == 2


async def test_states_changed_since_a_read_come_back_and_none_is_missed(
    database: Backend, store: Store
) -> None:
    """A replica reading what changed since its last read gets every state written since,
    even one whose transaction began before a later one and committed after it (PostgreSQL
    gives only what changed; SQLite, on one machine, everything each time)."""

    def up(system: str, at: float) -> SystemState:
        return SystemState(system, Health.UP, since=at, pass_streak=1, last_checked=at)

    await store.save_states([up("payment", 1.0), up("login", 1.0)])
    first, mark = await store.states_changed(None)
    assert first == {"payment": up("payment", 1.0), "login": up("login", 1.0)}
    if database.postgres is None:
        assert mark is None
        await store.save_states([up("crm", 2.0)])
        assert set((await store.states_changed(mark))[0]) == {"payment", "login", "crm"}
        return
    assert mark is not None
    # A write that began first and is still open while a later one commits and is read.
    with psycopg.connect(database.location) as slow:
        slow.execute(
            "INSERT INTO states (system, health, since, fail_streak, pass_streak, "
            "last_reason, last_checked, written) VALUES ('crm', 'UP', 3, 0, 1, '', 3, "
            "pg_current_xact_id())"
        )
        await store.save_states([up("login", 4.0)])
        changed, mark = await store.states_changed(mark)
        assert changed == {"login": up("login", 4.0)}
        slow.commit()
    changed, mark = await store.states_changed(mark)
    assert "crm" in changed
    assert "payment" not in changed
    assert (await store.states_changed(mark))[0].keys() <= {"crm", "login"}


async def test_results_are_pruned_by_age_in_batches_and_per_system_keeping_the_newest(
    store: Store,
) -> None:
    """The steps the prune yields between: old results go at most ``batch`` at a time, the
    systems with results are listed, and one system keeps its newest ``keep``."""
    await store.record_results(results("payment", 1000.0, 10) + results("login", 1000.0, 4))
    assert [await store.prune_aged(1003.0, batch=4) for _ in range(3)] == [4, 2, 0]
    assert sorted(await store.result_systems()) == ["login", "payment"]
    assert await store.prune_systems(["payment"], keep=3) == 4
    assert await store.prune_systems(["payment"], keep=3) == 0
    assert [r.started_at for r in await store.recent_results("payment")] == [1009.0, 1008.0, 1007.0]
    assert [r.started_at for r in await store.recent_results("login")] == [1003.0]


async def test_one_prune_of_several_systems_keeps_each_ones_newest(store: Store) -> None:
    """Pruning a batch of systems keeps each system's own newest results (not the batch's)."""
    await store.record_results(
        results("payment", 1000.0, 6) + results("login", 2000.0, 5) + results("crm", 3000.0, 1)
    )
    assert await store.prune_systems(["payment", "login", "crm", "gone"], keep=2) == 7
    assert [r.started_at for r in await store.recent_results("payment")] == [1005.0, 1004.0]
    assert [r.started_at for r in await store.recent_results("login")] == [2004.0, 2003.0]
    assert [r.started_at for r in await store.recent_results("crm")] == [3000.0]


async def test_old_transitions_are_pruned_keeping_each_systems_newest_older_one(
    store: Store,
) -> None:
    """Pruning a system's transitions older than a moment keeps the newest of them (it says
    how the system was then) and everything after; other systems are untouched."""
    payment = [
        transition("payment", at, health)
        for at, health in [
            (100, Health.DOWN),
            (200, Health.UP),
            (300, Health.DOWN),
            (400, Health.UP),
        ]
    ]
    login = [transition("login", 150, Health.DOWN), transition("login", 250, Health.UP)]
    await store.save_transitions(
        [(t, state_after(t)) for t in sorted(payment + login, key=lambda t: t.at)]
    )
    await apply_all(store)
    assert sorted(await store.transition_systems()) == ["login", "payment"]
    assert await store.prune_transitions(["payment"], older_than=350.0) == 2
    assert await store.transitions("payment") == payment[2:]
    assert await store.prune_transitions(["payment"], older_than=350.0) == 0
    assert await store.prune_transitions(["login"], older_than=100.0) == 0
    assert await store.transitions("login") == login
    assert await store.prune_transitions(["login"], older_than=1000.0) == 1
    assert await store.transitions("login") == login[1:]
    await store.save_transitions(
        [(t, state_after(t)) for t in [transition("login", 1100, Health.DOWN)]]
    )
    await apply_all(store)
    assert await store.prune_transitions(["login", "payment"], older_than=2000.0) == 2
    assert await store.transitions("login") == [transition("login", 1100, Health.DOWN)]
    assert await store.transitions("payment") == payment[3:]


async def test_an_unapplied_transition_is_never_pruned(store: Store) -> None:
    """Pruning keeps a transition the incidents have not seen yet, however old; once applied
    it goes as any other."""
    payment = [
        transition("payment", 100, Health.DOWN),
        transition("payment", 200, Health.UP),
        transition("payment", 300, Health.DOWN),
    ]
    await store.save_transitions([(t, state_after(t)) for t in payment])
    assert await store.prune_transitions(["payment"], older_than=1000.0) == 0
    assert await store.transitions("payment") == payment
    await apply_all(store)
    assert await store.prune_transitions(["payment"], older_than=1000.0) == 2
    assert await store.transitions("payment") == payment[2:]


async def test_unapplied_transitions_come_oldest_first_with_their_ids_until_applied(
    backend: Backend, store: Store
) -> None:
    """Transitions are saved unapplied and given back, whichever store on the database saved
    them, oldest first (by time, then as saved), at most ``limit``, with their ids; once
    marked applied (by any store) they are not given again, and stay in the history."""
    other = await backend.open()  # another process on the database
    late = transition("payment", 300.0, Health.DOWN)
    await other.save_transitions([(late, state_after(late))])
    early = [transition("login", 100.0, Health.DOWN), transition("crm", 100.0, Health.DOWN)]
    await store.save_transitions([(t, state_after(t)) for t in early])
    middle = transition("search", 200.0, Health.DOWN)
    await store.save_transition(middle, state_after(middle))
    found = await store.unapplied_transitions(10)
    assert [t for _, t in found] == [*early, middle, late]
    assert len({id_ for id_, _ in found}) == 4
    assert await store.unapplied_transitions(2) == found[:2]
    assert await other.unapplied_transitions(10) == found
    await other.save_incidents([], [], [id_ for id_, _ in found[:3]])
    assert await store.unapplied_transitions(10) == found[3:]
    assert await store.transitions() == [late, *early, middle]


async def test_transitions_are_marked_applied_in_the_same_commit_as_their_incidents(
    store: Store,
) -> None:
    """The incidents and timeline a chunk of transitions made commit with those transitions
    marked applied: refused half-way, the transitions are still unapplied and no incident is
    saved; accepted, the incident and its timeline are there and the transitions applied."""
    down = transition("payment", 100.0, Health.DOWN)
    await store.save_transition(down, state_after(down))
    [(applied, _)] = await store.unapplied_transitions(10)
    refused = replace(open_incident(2, 100.0), cause=cast(str, None))
    entry = (1, TimelineEntry(100.0, "opened", "payment is down"))
    with pytest.raises(REFUSED):
        await store.save_incidents([open_incident(1, 100.0), refused], [entry], [applied])
    assert await store.unapplied_transitions(10) == [(applied, down)]
    assert await store.incidents() == []
    await store.save_incidents([open_incident(1, 100.0)], [entry], [applied])
    assert await store.unapplied_transitions(10) == []
    assert await store.incidents() == [open_incident(1, 100.0)]
    assert await store.timeline(1) == [entry[1]]


async def test_health_history_starts_with_how_each_system_was_then(store: Store) -> None:
    """From a moment on: each system's health then (from its last transition before), then
    every transition after, in time order; a system first seen after it starts at its first
    transition, and one with no transitions is absent."""
    changes = [
        transition("payment", 100, Health.DOWN),
        transition("login", 150, Health.DOWN),
        transition("payment", 200, Health.UP),
        transition("login", 250, Health.UP),
        transition("payment", 300, Health.DOWN),
        transition("crm", 320, Health.DOWN),
        transition("payment", 400, Health.UP),
    ]
    await store.save_transitions([(t, state_after(t)) for t in changes])
    await store.save_states([SystemState("search", Health.UP, 10.0)])
    assert await store.health_history(since=275.0) == {
        "payment": [(275.0, Health.UP), (300.0, Health.DOWN), (400.0, Health.UP)],
        "login": [(275.0, Health.UP)],
        "crm": [(320.0, Health.DOWN)],
    }
    assert await store.health_history(since=50.0) == {
        "payment": [
            (100.0, Health.DOWN),
            (200.0, Health.UP),
            (300.0, Health.DOWN),
            (400.0, Health.UP),
        ],
        "login": [(150.0, Health.DOWN), (250.0, Health.UP)],
        "crm": [(320.0, Health.DOWN)],
    }


async def test_health_changes_are_the_transitions_after_a_moment_in_time_order(
    store: Store,
) -> None:
    """After a moment: each system's transitions in time order, whatever order they were
    saved in (a replica saving late); one at the moment itself, and systems with none after,
    are left out."""
    changes = [
        transition("payment", 100, Health.DOWN),
        transition("login", 275, Health.DOWN),
        transition("payment", 400, Health.UP),
        transition("payment", 300, Health.DOWN),
        transition("crm", 320, Health.DOWN),
        transition("payment", 350, Health.UP),
    ]
    await store.save_transitions([(t, state_after(t)) for t in changes])
    assert await store.health_changes(since=275.0) == {
        "payment": [(300.0, Health.DOWN), (350.0, Health.UP), (400.0, Health.UP)],
        "crm": [(320.0, Health.DOWN)],
    }
    assert await store.health_changes(since=400.0) == {}
    assert await store.health_changes(since=275.0, until=350.0) == {
        "payment": [(300.0, Health.DOWN), (350.0, Health.UP)],
        "crm": [(320.0, Health.DOWN)],
    }
    assert await store.health_history(since=275.0, until=310.0) == {
        "payment": [(275.0, Health.DOWN), (300.0, Health.DOWN)],
        "login": [(275.0, Health.DOWN)],
    }


async def test_incidents_of_a_span_are_those_open_at_any_moment_of_it(store: Store) -> None:
    """The incidents open at some moment of a span: resolved since its start (or open) and
    opened before its end, by id."""
    await store.save_incidents(
        [
            resolved_incident(1, 100.0),  # 50 to 100
            resolved_incident(2, 250.0),  # 200 to 250
            open_incident(3, 260.0),
            resolved_incident(4, 450.0),  # 400 to 450
            open_incident(5, 500.0),
        ],
        [],
    )
    found = await store.incidents(resolved_since=220.0, opened_before=420.0)
    assert [i.id for i in found] == [2, 3, 4]
    assert [i.id for i in await store.incidents(opened_before=210.0)] == [1, 2]


# incidents -----------------------------------------------------------------------------------


async def test_two_processes_taking_incident_ids_never_get_the_same_one(backend: Backend) -> None:
    """Two stores on one database (two monitors on one database), taking incident ids in turn
    with nothing saved in between: each id is reserved by the database, so none is given twice."""
    first, second = await backend.open(), await backend.open()
    taken = []
    for _ in range(3):
        taken += [await first.new_incident_id(), await second.new_incident_id()]
    assert taken == [1, 2, 3, 4, 5, 6]


async def test_a_pruned_incidents_id_is_never_handed_out_again(
    backend: Backend, store: Store
) -> None:
    """The newest incident pruned whole, its id is not taken again, neither by this store nor
    by one opened afterwards (a restart): it is in every Message-ID sent about it."""
    for _ in range(2):
        incident_id = await store.new_incident_id()
        await store.save_incident(resolved_incident(incident_id, 100.0))
    while await store.prune_incident(2, resolved_before=500.0):
        pass
    assert await store.incident(2) is None
    assert await store.new_incident_id() == 3
    again = await backend.reopen(store)
    assert await again.new_incident_id() == 4


async def test_incidents_are_saved_with_their_timeline_and_read_back_as_they_were(
    store: Store,
) -> None:
    """Incidents saved in one call with their timeline entries read back field for field, the
    entries in the order written (one added later last); saving an incident again replaces
    it; an unknown id is None."""
    first = Incident(
        id=1,
        opened_at=1000.5,
        members=(Member("payment", 1000.5), Member("login", 1012.25, 1100.0)),
        cause="payment",
        note="A database update went wrong; we are rolling it back.",
        held=True,
        notified_at=1060.0,
        last_update_at=1070.0,
        update_seq=2,
        pending_round="note",
    )
    second = resolved_incident(2, 2000.0)
    entries = [
        (1, TimelineEntry(1000.5, "opened", "payment is down")),
        (2, TimelineEntry(1950.0, "opened", "payment is down")),
        (1, TimelineEntry(1012.25, "joined", "login is down too")),
    ]
    await store.save_incidents([first, second], entries)
    assert await store.incident(1) == first
    assert await store.incident(2) == second
    assert await store.incident(3) is None
    await store.add_timeline(1, 1100.0, "note", "on-call wrote a note")
    assert await store.timeline(1) == [
        entries[0][1],
        entries[2][1],
        TimelineEntry(1100.0, "note", "on-call wrote a note"),
    ]
    assert await store.timeline(2) == [entries[1][1]]
    fixed = replace(
        first, resolved_at=1200.0, held=False, pending_round=None, resolution_told_at=1201.0
    )
    await store.save_incident(fixed)
    assert await store.incident(1) == fixed
    assert await store.incidents() == [fixed, second]


async def test_incidents_with_their_timeline_are_saved_all_or_nothing(store: Store) -> None:
    """A batch of incidents the database refuses in part raises and saves none of them, nor
    their timeline entries."""
    refused = replace(open_incident(2, 200.0), cause=cast(str, None))
    with pytest.raises(REFUSED):
        await store.save_incidents(
            [open_incident(1, 100.0), refused], [(1, TimelineEntry(100.0, "opened", "down"))]
        )
    assert await store.incidents() == []
    assert await store.timeline(1) == []


async def test_incidents_are_listed_by_id_open_or_resolved_since_and_newest_first(
    store: Store,
) -> None:
    """All incidents by id; the open ones; the open ones and those resolved since a moment;
    the newest few, newest first, optionally only open or only resolved; the open count."""
    one, four = open_incident(1, 100.0), open_incident(4, 1800.0)
    two, three = resolved_incident(2, 500.0), resolved_incident(3, 1500.0)
    await store.save_incidents([three, one, four, two], [])
    assert await store.incidents() == [one, two, three, four]
    assert await store.incidents(open_only=True) == [one, four]
    assert await store.incidents(resolved_since=1000.0) == [one, three, four]
    assert await store.latest_incidents(2) == [four, three]
    assert await store.latest_incidents(10, status="open") == [four, one]
    assert await store.latest_incidents(10, status="resolved") == [three, two]
    assert await store.open_incident_count() == 2


async def test_only_old_settled_incidents_are_prunable_oldest_first(store: Store) -> None:
    """Prunable before a moment: resolved, and their resolution decided, before it, with no
    message pending, oldest first; never an open one, one resolved later, one whose resolved
    messages were decided later, or one with a message still pending."""
    await store.save_incidents(
        [
            resolved_incident(1, 100.0),
            resolved_incident(2, 90.0),
            open_incident(3, 50.0),
            resolved_incident(4, 900.0),
            resolved_incident(5, 60.0, told_at=600.0),
            resolved_incident(6, 80.0),
        ],
        [],
    )
    await store.decide([message("alice", incident=2)], {}, 2)
    await store.decide([message("bob", incident=6)], {}, 6)
    await store.update_items([sent(message("bob", incident=6))])
    assert await store.prunable_incidents(resolved_before=500.0) == [6, 1]
    assert await store.prunable_incidents(resolved_before=500.0, limit=1) == [6]


async def test_an_incident_is_pruned_in_batches_messages_first_itself_last(store: Store) -> None:
    """An old incident with five settled messages, three people told and two timeline entries
    goes at most ``batch`` rows a call, its messages first and itself last, then 0; one with a
    message still pending loses only its settled messages; an open one, or one resolved
    after the moment, loses nothing."""
    people = ["amy", "bob", "cy", "dee", "eve"]
    told = {p: frozenset({"payment"}) for p in people[:3]}
    await store.save_incidents(
        [resolved_incident(1, 100.0), resolved_incident(2, 100.0), open_incident(3, 50.0)],
        [(i, TimelineEntry(at, "opened", "down")) for i in (1, 2, 3) for at in (60.0, 70.0)],
    )
    await store.decide([message(p) for p in people], told, 1)
    await store.update_items([sent(message(p)) for p in people])
    await store.decide([message(p, incident=2) for p in ("amy", "bob")], told, 2)
    await store.update_items([sent(message("amy", incident=2))])
    kept = {i: await everything_of(store, i) for i in (1, 2, 3)}

    steps = []
    while deleted := await store.prune_incident(1, resolved_before=500.0, batch=2):
        steps.append(deleted)
        now = await everything_of(store, 1)
        if now.messages:  # while a message is left, nothing else of the incident has gone
            assert (now.told, now.timeline) == (kept[1].told, kept[1].timeline), steps
        if now.messages or now.told or now.timeline:
            assert now.incident == kept[1].incident, steps  # the incident itself goes last
    assert all(1 <= n <= 2 for n in steps), steps
    assert sum(steps) == 5 + 3 + 2 + 1, steps
    assert await everything_of(store, 1) == Kept(None, [], [], [])

    assert await store.prune_incident(2, resolved_before=500.0, batch=10) == 1
    assert await store.prune_incident(2, resolved_before=500.0, batch=10) == 0
    left = await everything_of(store, 2)
    assert left.messages == [m for m in kept[2].messages if m.person_id == "bob"]
    assert left._replace(messages=[]) == kept[2]._replace(messages=[])
    assert await store.prune_incident(3, resolved_before=500.0) == 0
    assert await store.prune_incident(2, resolved_before=50.0) == 0
    assert await everything_of(store, 3) == kept[3]


async def test_resolved_incidents_are_paged_newest_first_before_an_id(store: Store) -> None:
    """The status page's history pages back from an id: resolved incidents with a lower id,
    newest first, the open ones left out."""
    await store.save_incidents(
        [resolved_incident(i, 100.0 * i) for i in (1, 2, 4, 5)] + [open_incident(3, 250.0)], []
    )
    newest = await store.latest_incidents(2, status="resolved")
    assert [i.id for i in newest] == [5, 4]
    older = await store.latest_incidents(2, status="resolved", before=4)
    assert [i.id for i in older] == [2, 1]
    assert await store.latest_incidents(2, status="resolved", before=1) == []
    assert [i.id for i in await store.latest_incidents(10, before=4)] == [3, 2, 1]


async def test_the_public_timeline_is_on_calls_notes_and_explanation(store: Store) -> None:
    """Of an incident's timeline, customers may see the notes and the explanation, in the
    order written: never the probes' reasons, counts of people or holds."""
    await store.save_incidents(
        [open_incident(1, 50.0)], [(1, TimelineEntry(50.0, "opened", "Payments: status 503"))]
    )
    await store.add_timeline(1, 60.0, "held", "customer messages held")
    await store.add_timeline(1, 70.0, "note", "Our card provider is down. (sent)")
    await store.add_timeline(1, 80.0, "messages", "acknowledge: 1,200 people")
    await store.add_timeline(1, 90.0, "explanation", "A certificate expired.")
    assert await store.public_timeline(1) == [
        TimelineEntry(70.0, "note", "Our card provider is down. (sent)"),
        TimelineEntry(90.0, "explanation", "A certificate expired."),
    ]
    assert await store.public_timeline(2) == []


async def test_only_old_settled_incidents_keeping_their_private_part_are_prunable_so(
    store: Store,
) -> None:
    """Incidents whose private part may go before a moment are those prunable then (resolved
    and told before it, nothing pending), oldest first, until their private part is gone; a
    note added to one afterwards does not bring it back."""
    await store.save_incidents(
        [
            resolved_incident(1, 100.0),
            resolved_incident(2, 90.0),
            open_incident(3, 50.0),
            resolved_incident(4, 900.0),
            resolved_incident(5, 60.0, told_at=600.0),
            resolved_incident(6, 80.0),
        ],
        [],
    )
    await store.decide([message("alice", incident=2)], {}, 2)
    assert await store.private_prunable_incidents(resolved_before=500.0) == [6, 1]
    assert await store.private_prunable_incidents(resolved_before=500.0, limit=1) == [6]
    while await store.prune_private(6, resolved_before=500.0):
        pass
    assert await store.private_prunable_incidents(resolved_before=500.0) == [1]
    await store.save_incident(replace(resolved_incident(6, 80.0), note="Fixed for good."))
    assert await store.private_prunable_incidents(resolved_before=500.0) == [1]
    assert await store.prunable_incidents(resolved_before=500.0) == [6, 1]


async def test_an_incidents_private_part_is_pruned_in_batches_leaving_what_customers_see(
    store: Store,
) -> None:
    """An old incident loses at most ``batch`` rows a call, its settled messages first, then
    who was told, on-call's alert, the goodwill offered and the timeline customers may not
    see; it stays with its notes and explanation, and then 0. A promise with no explanation
    goes with it; one with a message pending, open, or resolved after the moment loses
    nothing but settled messages."""
    people = ["amy", "bob", "cy"]
    told = {p: frozenset({"payment"}) for p in people}
    entries = [
        TimelineEntry(60.0, "opened", "Payments: status 503"),
        TimelineEntry(65.0, "note", "The card provider is down."),
        TimelineEntry(70.0, "messages", "acknowledge: 3 people"),
        TimelineEntry(120.0, "explanation", "A certificate expired; we now renew them."),
    ]
    await store.save_incidents(
        [resolved_incident(i, 100.0) for i in (1, 2, 4)] + [open_incident(3, 50.0)],
        [(i, e) for i in (1, 2, 3, 4) for e in entries],
    )
    for i in (1, 2):
        await store.decide([message(p, incident=i) for p in people], told, i)
        await store.update_items([sent(message(p, incident=i)) for p in people[: 3 - i + 1]])
    await store.record_alert(1, 61.0, ["slack"])
    await store.offer_goodwill(1, {"amy": "incident-1.acknowledge.amy"})
    await store.explain(1, "A certificate expired; we now renew them.", 120.0)
    await store.settle_for_resolution(4, 100.0)  # a promise, never explained
    incident = await store.incident(1)

    steps = []
    while deleted := await store.prune_private(1, resolved_before=500.0, batch=2):
        steps.append(deleted)
        if await store.outbox_items(1):  # while a message is left, the rest is all there
            assert len([p async for page in store.told_pages(1) for p in page]) == 3, steps
    assert all(1 <= n <= 2 for n in steps), steps
    # 3 messages, 3 told, 2 private timeline entries, the alert, the goodwill, the mark
    assert sum(steps) == 3 + 3 + 2 + 1 + 1 + 1, steps
    assert await everything_of(store, 1) == Kept(incident, [], [], [entries[1], entries[3]])
    assert await store.public_timeline(1) == [entries[1], entries[3]]
    explanation = await store.explanation(1)
    assert explanation is not None
    assert explanation.text == "A certificate expired; we now renew them."
    assert await store.alert(1) is None
    assert await store.offer_goodwill(1, {"amy": "incident-1.update-2.amy"}) == {
        "amy": "incident-1.update-2.amy"
    }  # the earlier offer is forgotten

    while await store.prune_private(4, resolved_before=500.0):
        pass
    assert await store.explanation(4) is None  # a promise alone is private: its people are gone
    assert [e.kind for e in await store.timeline(4)] == ["note", "explanation"]

    assert await store.prune_private(2, resolved_before=500.0) == 2  # its settled messages
    assert await store.prune_private(2, resolved_before=500.0) == 0  # one is pending
    assert len(await store.timeline(2)) == 4
    assert await store.prune_private(3, resolved_before=500.0) == 0
    assert await store.prune_private(1, resolved_before=50.0) == 0
    assert len(await store.timeline(3)) == 4
    while await store.prune_incident(1, resolved_before=500.0):
        pass
    assert await everything_of(store, 1) == Kept(None, [], [], [])
    assert await store.explanation(1) is None


# people ----------------------------------------------------------------------------------------


async def test_people_are_added_or_replaced_by_id_with_their_subscriptions(store: Store) -> None:
    """Upserting a person again replaces them, details and subscriptions alike (the systems
    they left no longer reach them); each call says how many it took; people are read by id,
    an unknown one is not there."""
    alice = Person("alice", "Alice", "alice@example.com", None, None, ("payment", "login"))
    bob = Person("bob", "Bob", None, "+15550101", "https://hooks.example.com/bob", ("payment",))
    assert await store.upsert_people([alice, bob]) == 2
    moved = Person("alice", "Alice Jones", None, "+15550102", None, ("crm",))
    assert await store.upsert_people(iter([moved])) == 1
    assert await store.person("alice") == moved
    assert await store.person("nobody") is None
    assert await store.people_by_ids(["bob", "nobody", "alice"]) == {"alice": moved, "bob": bob}

    async def subscribers(system: str) -> list[str]:
        return [p.id async for page in store.subscriber_pages([system]) for p in page]

    assert await subscribers("payment") == ["bob"]
    assert await subscribers("login") == []
    assert await subscribers("crm") == ["alice"]


async def test_people_are_upserted_all_or_nothing(store: Store) -> None:
    """A batch with a person the database refuses raises and adds or changes nobody."""
    alice = Person("alice", "Alice", "alice@example.com", None, None, ("payment",))
    await store.upsert_people([alice])
    refused = Person("zed", cast(str, None), None, None, None, ("payment",))
    with pytest.raises(REFUSED):
        await store.upsert_people([replace(alice, systems=("crm",)), Person("bob", "Bob"), refused])
    assert await store.people_by_ids(["alice", "bob", "zed"]) == {"alice": alice}
    assert [p.id async for page in store.subscriber_pages(["payment"]) for p in page] == ["alice"]


async def test_subscribers_of_several_systems_come_once_each_in_id_order(
    backend: Backend, store: Store
) -> None:
    """2,500 people over three systems, many on two or three of them, read across pages of
    1,000: each subscriber of payment or login exactly once, in id order, with their details;
    crm-only people and subscriptions whose person has gone are not included."""
    plans = [("payment",), ("login",), ("payment", "login"), ("crm",), ("payment", "crm")]
    people = [
        Person(f"p{i:05d}", f"Person {i}", f"p{i}@example.com", None, None, plans[i % 5])
        for i in range(2500)
    ]
    await store.upsert_people(people)
    backend.execute("INSERT INTO subscriptions VALUES ('login', 'gone')")
    pages = [page async for page in store.subscriber_pages(["login", "payment"])]
    found = [p for page in pages for p in page]
    expected = [p for p in people if {"payment", "login"} & set(p.systems)]
    assert found == expected
    assert len(found) == 2000
    assert len(pages) > 1


async def test_subscribers_of_every_system_in_a_mass_failure_come_once_each_in_id_order(
    backend: Backend, store: Store
) -> None:
    """The same over 100 systems failing together (read in person order, not system by
    system): 2,500 people on one to three of 120 systems, across pages of 1,000; those on any
    of the 100 come once each, in id order; the rest and vanished people are left out."""
    systems = [f"app-{n}" for n in range(120)]
    people = [
        Person(f"p{i:05d}", f"Person {i}", None, None, None, tuple(systems[i % 120 :][: i % 3 + 1]))
        for i in range(2500)
    ]
    await store.upsert_people(people)
    backend.execute("INSERT INTO subscriptions VALUES ('app-1', 'gone')")
    down = systems[:100]
    found = [p async for page in store.subscriber_pages(reversed(down)) for p in page]
    expected = [p for p in people if set(down) & set(p.systems)]
    assert found == expected
    assert 2000 < len(found) < 2500


async def test_a_subscriber_page_may_be_followed_by_writes(store: Store) -> None:
    """Each page is read whole: deciding and upserting between pages (as the fan-out does)
    neither stops the pages nor repeats or skips anyone."""
    people = [
        Person(f"p{i:05d}", f"Person {i}", None, None, None, ("payment",)) for i in range(2100)
    ]
    await store.upsert_people(people)
    found: list[str] = []
    async for page in store.subscriber_pages(["payment"]):
        found += ids(page)
        await store.decide(
            [message(p.id) for p in page], {p.id: frozenset({"payment"}) for p in page}, 1
        )
        await store.upsert_people([replace(page[0], name="Changed")])
    assert found == ids(people)
    assert await store.pending_count() == 2100


async def test_the_audience_counted_is_what_the_pages_and_attempts_give(store: Store) -> None:
    """The audience count of some systems is the subscribers the pages give together with the
    people who reported an attempt on one of them in the window, each person once: not those
    who tried before or after it, or on another system."""
    plans = [("payment",), ("login",), ("payment", "login"), ("crm",)]
    people = [
        Person(f"p{i:04d}", f"Person {i}", None, None, None, plans[i % 4]) for i in range(1200)
    ]
    await store.upsert_people(people)
    tried = [
        (Attempt("payment", "p0000", "pay", 500.0), people[0]),  # a subscriber: counted once
        (Attempt("payment", "p0003", "pay", 500.0), people[3]),  # crm only: counted
        (Attempt("login", "p0007", "log in", 600.0), people[7]),  # crm only: counted
        (Attempt("payment", "p0007", "pay", 650.0), people[7]),  # ... once
        (Attempt("login", "stranger", "log in", 700.0), Person("stranger", "Sam")),  # counted
        (Attempt("payment", "early", "pay", 100.0), Person("early")),  # before the window
        (Attempt("payment", "late", "pay", 1900.0), Person("late")),  # after it
        (Attempt("crm", "p0011", "look", 500.0), people[11]),  # another system
    ]
    for attempt, person in tried:
        await store.add_attempt(attempt, person)
    pages = {p.id async for page in store.subscriber_pages(["payment", "login"]) for p in page}
    window = {
        a.person_id for a, _ in tried if a.system in ("payment", "login") and 200 < a.at < 1800
    }
    assert len(pages) == 900
    assert await store.audience_count(["login", "payment"], 200.0, 1800.0) == len(pages | window)
    assert len(pages | window) == 903
    # crm's subscribers; p0011, who tried crm, is one of them
    assert await store.audience_count(["crm"], 200.0, 1800.0) == 300


async def test_attempts_are_read_since_a_moment_and_keep_who_tried(store: Store) -> None:
    """Attempts on some systems since a moment come in time order; someone unknown who tried
    is kept with no subscriptions; a known person keeps their name and subscriptions, and
    gets the contact details they lacked."""
    alice = Person("alice", "Alice", None, "+15550100", None, ("payment",))
    await store.upsert_people([alice])
    await store.add_attempt(
        Attempt("payment", "alice", "pay", 300.0), Person("alice", "A.", "a@example.com", "+1999")
    )
    await store.add_attempt(
        Attempt("login", "sam", "log in", 200.0), Person("sam", "Sam", "sam@example.com")
    )
    await store.add_attempt(Attempt("payment", "sam", "pay", 100.0), Person("sam", "Sam"))
    await store.add_attempt(Attempt("crm", "alice", "look", 250.0), alice)
    assert await store.attempts(["payment", "login"], since=150.0) == [
        Attempt("login", "sam", "log in", 200.0),
        Attempt("payment", "alice", "pay", 300.0),
    ]
    assert await store.attempts([], since=0.0) == []
    assert await store.person("alice") == replace(alice, email="a@example.com")
    assert await store.person("sam") == Person("sam", "Sam", "sam@example.com")


async def test_attempts_older_than_the_cutoff_are_forgotten(store: Store) -> None:
    """Pruning attempts drops the old ones and keeps the recent ones."""
    eve = Person("eve", "Eve")
    await store.add_attempt(Attempt("payment", "eve", "pay", 100.0), eve)
    await store.add_attempt(Attempt("payment", "eve", "pay again", 900.0), eve)
    assert await store.prune_attempts(older_than=500.0) == 1
    assert [a.action for a in await store.attempts(["payment"], since=0.0)] == ["pay again"]


# the outbox ------------------------------------------------------------------------------------


async def test_who_was_told_what_reads_back_a_page_at_a_time(store: Store) -> None:
    """2,500 people told about incident 1 (and one about incident 2) read back in pages of
    1,000, by id: every person of incident 1 once, with their systems, and no one else."""
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"}) for i in range(2500)
    }
    await store.decide([], told, 1)
    await store.decide([], {"other": frozenset({"crm"})}, 2)
    pages = [page async for page in store.told_pages(1, size=1000)]
    assert [len(page) for page in pages] == [1000, 1000, 500]
    merged = {person: systems for page in pages for person, systems in page.items()}
    assert merged == told
    assert [person for page in pages for person in page] == sorted(told)


async def test_what_some_people_were_told_is_read_for_just_those_people(store: Store) -> None:
    """Asked about 1,200 ids of incident 1 (more than one query takes), the store gives what
    the told ones among them were told, and nothing for the others or for incident 2."""
    told = {
        f"p{i:05d}": frozenset({"payment", "login"} if i % 2 else {"payment"})
        for i in range(0, 3000, 2)
    }
    await store.decide([], told, 1)
    await store.decide([], {"p00001": frozenset({"crm"})}, 2)
    asked = [f"p{i:05d}" for i in range(1200)]
    found = await store.told_about(1, asked)
    assert found == {person: told[person] for person in asked if person in told}


async def test_deciding_inserts_each_key_once_and_says_how_many_were_new(
    backend: Backend, store: Store
) -> None:
    """Decisions come back as decided; deciding them again (a restart, a second process)
    inserts nothing and says 0; a batch with one new key says 1 and leaves the decided one
    as it was; what each person was told is replaced by the newer word."""
    first = [message(p) for p in ("alice", "bob", "carol")]
    assert await store.decide(first, {"alice": frozenset({"payment"})}, 1) == 3
    assert await store.decide(first, {}, 1) == 0
    other = await backend.open()
    again = [replace(first[0], subject="Changed"), message("dave", created_at=120.0)]
    told = {"alice": frozenset({"payment", "login"}), "dave": frozenset({"login"})}
    assert await other.decide(again, told, 1) == 1
    assert await store.outbox_items(1) == [*first, again[1]]
    assert await store.told_about(1, ["alice", "bob", "dave"]) == told
    assert await store.pending_count() == 4


async def test_decisions_are_committed_all_or_nothing(store: Store) -> None:
    """A decision whose record of who was told the database refuses raises, and neither its
    messages nor anything it said was told are kept."""
    await store.decide([message("alice")], {"alice": frozenset({"payment"})}, 1)
    refused = {"bob": frozenset({"payment"}), cast(str, None): frozenset({"payment"})}
    with pytest.raises(REFUSED):
        await store.decide([message("bob"), message("carol")], refused, 1)
    assert [i.person_id for i in await store.outbox_items(1)] == ["alice"]
    assert await store.told_about(1, ["alice", "bob"]) == {"alice": frozenset({"payment"})}


async def test_messages_are_due_by_their_time_oldest_first_and_in_order_per_person(
    store: Store,
) -> None:
    """Pending messages due by now come oldest due first, at most ``limit``; nothing settled,
    nothing not due yet, and nothing while an earlier message of the same person about the
    same incident is still pending (Erin's resolved waits for her acknowledgement)."""
    await store.decide(
        [
            message("alice", next_try_at=100.0),
            message("bob", next_try_at=300.0),
            message("carol", created_at=110.0, next_try_at=50.0),
            message("dave", next_try_at=20.0),
            message("erin", next_try_at=500.0),
            message("erin", kind="resolved", created_at=120.0, next_try_at=60.0),
        ],
        {},
        1,
    )
    await store.decide([message("erin", incident=2, next_try_at=70.0)], {}, 2)
    await store.update_items([sent(message("dave", next_try_at=20.0))])

    def who(items: list[OutboxItem]) -> list[tuple[str, str, int]]:
        return [(i.person_id, i.kind, i.incident_id) for i in items]

    assert who(await store.due(now=200.0, limit=10)) == [
        ("carol", "acknowledge", 1),
        ("erin", "acknowledge", 2),
        ("alice", "acknowledge", 1),
    ]
    assert who(await store.due(now=1000.0, limit=2)) == [
        ("carol", "acknowledge", 1),
        ("erin", "acknowledge", 2),
    ]
    assert who(await store.due(now=1000.0, limit=10)) == [
        ("carol", "acknowledge", 1),
        ("erin", "acknowledge", 2),
        ("alice", "acknowledge", 1),
        ("bob", "acknowledge", 1),
        ("erin", "acknowledge", 1),
    ]
    await store.update_items([sent(message("erin", next_try_at=500.0))])
    assert who(await store.due(now=1000.0, limit=10)) == [
        ("carol", "acknowledge", 1),
        ("erin", "resolved", 1),
        ("erin", "acknowledge", 2),
        ("alice", "acknowledge", 1),
        ("bob", "acknowledge", 1),
    ]
    assert (await store.due(now=1000.0, limit=1))[0] == message(
        "carol", created_at=110.0, next_try_at=50.0
    )


async def test_outcomes_are_recorded_and_a_settled_message_never_changes_again(
    store: Store,
) -> None:
    """A send's outcome is recorded: sent (with when and how), undeliverable (with why), or
    another try later (still whole); a settled message keeps its key, subject and times but
    not its text, html and sms, and a stale or different outcome written later changes
    nothing of it."""
    alice, bob, carol = (message(p) for p in ("alice", "bob", "carol"))
    await store.decide([alice, bob, carol], {}, 1)
    retry = replace(
        carol, tries=1, next_try_at=400.0, last_error="421 try later", channels=carol.channels[1:]
    )
    await store.update_items([sent(alice), undeliverable(bob, "550 no such user"), retry])
    found = {i.person_id: i for i in await store.outbox_items(1)}
    assert found["alice"] == replace(sent(alice), text="", html=None, sms="")
    assert found["alice"].sent_via == Address("email", "alice@example.com")
    assert found["bob"] == replace(
        undeliverable(bob, "550 no such user"), text="", html=None, sms=""
    )
    assert found["carol"] == retry
    await store.update_items([alice, replace(found["bob"], status=SENT), sent(retry, at=410.0)])
    await store.update_item(undeliverable(alice, "too late"))
    again = {i.person_id: i for i in await store.outbox_items(1)}
    assert again["alice"] == found["alice"]
    assert again["bob"] == found["bob"]
    assert again["carol"] == replace(sent(retry, at=410.0), text="", html=None, sms="")
    assert await store.pending_count() == 0


async def test_outcomes_are_recorded_all_or_nothing(store: Store) -> None:
    """A batch of outcomes one of which the database refuses raises and records none."""
    alice, bob = message("alice"), message("bob")
    await store.decide([alice, bob], {}, 1)
    with pytest.raises(REFUSED):
        await store.update_items([sent(alice), replace(bob, status=cast(str, None))])
    assert await store.outbox_items(1) == [alice, bob]


async def test_messages_per_person_are_counted_since_a_moment(store: Store) -> None:
    """Each of 1,200 people has one message at t=100 and the even ones one more at t=500:
    counted since t=200 they have 1 (even) or none (odd, left out); since 0, 2 or 1."""
    people = [f"p{i:05d}" for i in range(1200)]
    await acknowledgements(store, people)
    later = [
        replace(item, key=f"{item.key}.later", created_at=500.0)
        for item in await store.outbox_items(1)
        if int(item.person_id[1:]) % 2 == 0
    ]
    await store.decide(later, {}, 1)
    since_200 = await store.message_counts(people, since=200.0)
    since_0 = await store.message_counts(people, since=0.0)
    assert since_200 == dict.fromkeys(people[::2], 1)
    assert since_0 == {person: 2 if i % 2 == 0 else 1 for i, person in enumerate(people)}


async def test_messages_are_counted_by_kind_and_status_per_incident_or_in_all(store: Store) -> None:
    """Counts of messages by kind and status, for one incident or every one; none for an
    incident without messages."""
    await store.decide(
        [message("alice"), message("bob"), message("alice", kind="resolved", created_at=200.0)],
        {},
        1,
    )
    await store.decide([message("carol", incident=2)], {}, 2)
    await store.update_items(
        [sent(message("alice")), undeliverable(message("carol", incident=2), "no address")]
    )
    assert await store.outbox_counts(1) == {
        "acknowledge": {SENT: 1, PENDING: 1},
        "resolved": {PENDING: 1},
    }
    assert await store.outbox_counts() == {
        "acknowledge": {SENT: 1, PENDING: 1, UNDELIVERABLE: 1},
        "resolved": {PENDING: 1},
    }
    assert await store.outbox_counts(3) == {}
    assert await store.pending_count() == 2


async def test_undeliverable_messages_are_listed_by_person_with_why(store: Store) -> None:
    """An incident's undeliverable messages come by person with their kind and reason, at most
    ``limit``; sent and pending ones, and other incidents', are not listed."""
    people = ["zed", "amy", "bob", "cy", "dee"]
    await store.decide([message(p) for p in people], {}, 1)
    await store.decide([message("abe", incident=2)], {}, 2)
    await store.update_items(
        [
            undeliverable(message("zed"), "no channel left"),
            undeliverable(message("amy"), "550 no such user"),
            undeliverable(message("bob"), "SMS API 400: invalid number"),
            sent(message("cy")),
            undeliverable(message("abe", incident=2), "550 no such user"),
        ]
    )
    assert await store.undeliverable(1, limit=10) == [
        ("amy", "acknowledge", "550 no such user"),
        ("bob", "acknowledge", "SMS API 400: invalid number"),
        ("zed", "acknowledge", "no channel left"),
    ]
    assert await store.undeliverable(1, limit=2) == [
        ("amy", "acknowledge", "550 no such user"),
        ("bob", "acknowledge", "SMS API 400: invalid number"),
    ]
    assert await store.undeliverable(3, limit=10) == []


async def test_an_incidents_messages_are_tallied_by_kind_status_and_channel(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tally counts an incident's messages by kind, status and the channel that sent them,
    the people nobody could reach once each, and gives the acknowledgements' times in order;
    other incidents' messages are left out, and an incident without any has none."""
    # SQLite counts a part of about this many messages at a time, each part ending with all
    # of its last person's: here two people's messages a part.
    monkeypatch.setattr("monitor.store.sqlite._TALLY_PART", 3)
    people = ["amy", "bob", "cy", "dee", "eve"]
    await store.decide([message(p) for p in people], {}, 1)
    await store.decide([message(p, kind="resolved", created_at=300.0) for p in people], {}, 1)
    await store.decide([message("abe", incident=2)], {}, 2)
    by_sms = replace(message("bob"), channels=(Address("sms", "+15550100"),))
    await store.update_items(
        [
            sent(message("amy"), at=190.0),
            sent(by_sms, at=130.0),
            sent(message("cy"), at=160.0),
            undeliverable(message("dee"), "550 no such user"),
            undeliverable(message("dee", kind="resolved", created_at=300.0), "550 no such user"),
            sent(message("amy", kind="resolved", created_at=300.0), at=320.0),
            sent(message("abe", incident=2), at=110.0),
        ]
    )
    tally = await store.message_tally(1)
    assert tally.counts == {
        ("acknowledge", SENT, "email"): 2,
        ("acknowledge", SENT, "sms"): 1,
        ("acknowledge", UNDELIVERABLE, ""): 1,
        ("acknowledge", PENDING, ""): 1,
        ("resolved", SENT, "email"): 1,
        ("resolved", UNDELIVERABLE, ""): 1,
        ("resolved", PENDING, ""): 3,
    }
    assert tally.undeliverable_people == 1
    assert tally.acknowledged_at == (130.0, 160.0, 190.0)
    empty = await store.message_tally(3)
    assert (empty.counts, empty.undeliverable_people, empty.acknowledged_at) == ({}, 0, ())


# the store itself --------------------------------------------------------------------------------


async def test_what_one_store_commits_another_on_the_database_reads_at_once(
    backend: Backend, store: Store
) -> None:
    """Each method has committed before it returns: a second store on the same database (a
    second process) reads each write as soon as it is made."""
    other = await backend.open()
    down = transition("payment", 100.0, Health.DOWN)
    await store.save_transitions([(down, state_after(down))])
    assert await other.transitions() == [down]
    assert await other.load_states() == {"payment": state_after(down)}
    await store.save_incident(open_incident(await store.new_incident_id(), 100.0))
    assert await other.open_incident_count() == 1
    await store.decide([message("alice")], {"alice": frozenset({"payment"})}, 1)
    assert await other.pending_count() == 1
    await store.update_items([sent(message("alice"))])
    assert await other.pending_count() == 0
    await store.upsert_people([Person("alice", "Alice")])
    assert await other.person("alice") == Person("alice", "Alice")


async def test_a_store_that_cannot_write_says_so_and_writes_again_once_it_can(
    backend: Backend, store: Store
) -> None:
    """A writable store passes ``check_writable``; once the database refuses writes (SQLite:
    read-only; PostgreSQL: the server stopped), ``check_writable`` and writes raise
    StoreUnavailable (never the driver's own error, never quoting a password); once it takes
    writes again, so does the store, and nothing it refused was half-written."""
    await store.check_writable()
    await store.record_results(results("payment", 1000.0, 1))
    backend.refuse_writes(store)
    refused: list[StoreUnavailable] = []
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_writable()
        refused.append(raised.value)
        with pytest.raises(StoreUnavailable) as raised:
            await store.record_results(results("payment", 2000.0, 1))
        refused.append(raised.value)
        with pytest.raises(StoreUnavailable) as raised:
            await store.decide([message("alice")], {}, 1)
        refused.append(raised.value)
    finally:
        backend.take_writes(store)

    async def writable() -> bool:
        try:
            await store.check_writable()
        except StoreUnavailable as exc:
            refused.append(exc)  # a server just started: the backend reconnects
            return False
        return True

    await until("the store takes writes again", writable, deadline=RECONNECT_S, every=0.1)
    for error in refused:
        assert str(error)
        assert not any(secret in str(error) for secret in backend.secrets()), error
    await store.record_results(results("payment", 3000.0, 1))
    assert [r.started_at for r in await store.recent_results("payment")] == [3000.0, 1000.0]
    assert await store.pending_count() == 0


async def test_maintenance_after_a_prune_says_what_it_did(store: Store) -> None:
    """``maintain`` after rows were deleted returns what it did, as counts by name, for the
    prune's log line."""
    await store.record_results(results("payment", 1000.0, 3000))
    await store.prune_results(older_than=5000.0, keep_per_system=0)
    done = await store.maintain()
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in done.items()), done
    await store.record_results(results("payment", 6000.0, 1))
    assert len(await store.recent_results("payment")) == 1
