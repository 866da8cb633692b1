"""The notifier takes transitions from the store, whichever process saved them there: each is
applied to the incidents once, at a tick, with its incident changes in the same commit; a store
that refuses leaves them for the next tick; after a restart what a crash cut off is applied
once (monitor/notify/correlating.py, monitor/notify/notifier.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from clock import FakeClock
from postgres import Database

from monitor.config import MonitorSettings, Org
from monitor.incidents.correlation import Correlator
from monitor.model import Health, SystemInfo, SystemState, Transition
from monitor.notify.composer import Composer
from monitor.notify.notifier import Notifier
from monitor.store import SQLiteStore, Store

MESSAGES = Path(__file__).resolve().parent.parent / "messages"
SYSTEMS = {
    "payment": SystemInfo("payment", "Online payments"),
    "login": SystemInfo("login", "Signing in to your account"),
}


def down(system: str, at: float) -> tuple[Transition, SystemState]:
    return (
        Transition(system, at, Health.UP, Health.DOWN, "status 503", 3),
        SystemState(system, Health.DOWN, at, 3, 0, "status 503", at),
    )


def up(system: str, at: float) -> tuple[Transition, SystemState]:
    return (
        Transition(system, at, Health.DOWN, Health.UP, "status 200", 2),
        SystemState(system, Health.UP, at, 0, 2, "status 200", at),
    )


def notifier_on(store: Store, clock: FakeClock) -> Notifier:
    settings = MonitorSettings(org=Org(name="Example Ltd"))
    return Notifier(
        store=store,
        composer=Composer(MESSAGES, settings.org, SYSTEMS),
        settings=settings,
        systems=SYSTEMS,
        correlator=Correlator(dict.fromkeys(SYSTEMS, ()), settings.correlation_window),
        clock=clock,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database: a SQLite file, or a PostgreSQL database (skipped, saying why, where no
    server can be started)."""
    if request.param == "sqlite":
        return str(tmp_path / "monitor.db")
    pg = request.getfixturevalue("pg_database")
    assert isinstance(pg, Database)
    return pg.url


async def open_store(where: str) -> Store:
    if where.startswith("postgresql://"):
        from monitor.store.postgres import open_postgres

        return await open_postgres(where)
    return SQLiteStore(where)


async def test_a_transition_another_replica_saved_is_applied_here_once(database: str) -> None:
    """Payment's DOWN, saved through another process's store on the same database, opens one
    incident at this notifier's tick, at the transition's time; a second tick changes nothing
    (no second incident, nothing more on the timeline); payment's UP, saved there too,
    resolves it at the next tick."""
    here, there = await open_store(database), await open_store(database)
    try:
        clock = FakeClock()
        notifier = notifier_on(here, clock)
        down_at = clock.now() - 30
        await there.save_transitions([down("payment", down_at)])
        await notifier.tick()
        [incident] = await here.incidents()
        assert (incident.opened_at, incident.systems, incident.is_open) == (
            down_at,
            ("payment",),
            True,
        )
        timeline = await here.timeline(incident.id)
        assert [(entry.at, entry.kind) for entry in timeline] == [(down_at, "opened")]
        assert await there.unapplied_transitions(10) == []

        await notifier.tick()
        assert await here.incidents() == [incident]
        assert await here.timeline(incident.id) == timeline

        up_at = clock.advance(30)
        await there.save_transitions([up("payment", up_at)])
        await notifier.tick()
        [resolved] = await here.incidents()
        assert (resolved.id, resolved.resolved_at) == (incident.id, up_at)
    finally:
        await here.close()
        await there.close()


async def test_transitions_a_store_refuses_to_apply_wait_for_the_next_tick(
    tmp_path: Path,
) -> None:
    """While this notifier's store refuses writes, payment's DOWN (saved by another process)
    opens no incident and stays unapplied; once it takes writes, the next tick applies it:
    one incident, at the transition's time."""
    here, there = SQLiteStore(tmp_path / "monitor.db"), SQLiteStore(tmp_path / "monitor.db")
    try:
        clock = FakeClock()
        notifier = notifier_on(here, clock)
        saved = down("payment", clock.now())
        await there.save_transitions([saved])
        here.db.execute("PRAGMA query_only=1")
        await notifier.tick()
        assert await here.incidents() == []
        assert [t for _, t in await here.unapplied_transitions(10)] == [saved[0]]
        here.db.execute("PRAGMA query_only=0")
        await notifier.tick()
        [incident] = await here.incidents()
        assert incident.opened_at == saved[0].at
        assert await here.unapplied_transitions(10) == []
    finally:
        await here.close()
        await there.close()


async def test_after_a_restart_a_saved_transition_is_applied_once_and_a_bare_state_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The process died after saving payment's DOWN and before applying it, and login's DOWN
    state was saved without a transition (an older monitor died between the two): the first
    tick after ``resume`` opens one incident, payment once ("opened", never "failed again")
    and login from its state, logged as resumed."""
    db = tmp_path / "monitor.db"
    clock = FakeClock()
    payment_at, login_at = clock.now() - 60, clock.now() - 50
    before = SQLiteStore(db)
    await before.save_transitions([down("payment", payment_at)])
    await before.save_states([down("login", login_at)[1]])
    await before.close()

    store = SQLiteStore(db)
    try:
        notifier = notifier_on(store, clock)
        notifier.resume()
        with caplog.at_level(logging.WARNING, logger="monitor.notifier"):
            await notifier.tick()
            await notifier.tick()
        [incident] = await store.incidents()
        assert [(m.name, m.down_at) for m in incident.members] == [
            ("payment", payment_at),
            ("login", login_at),
        ]
        timeline = [(entry.at, entry.kind) for entry in await store.timeline(incident.id)]
        assert timeline == [(payment_at, "opened"), (login_at, "joined")]
        resumed = [r for r in caplog.records if "resuming transitions" in r.getMessage()]
        assert [r.__dict__["fields"] for r in resumed] == [{"transitions": ["login DOWN"]}]
    finally:
        await store.close()
