"""The monitor loop: a hanging system never holds up another one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from clock import FakeClock
from targets import Mode, Target

from monitor.config import HttpClient, load_config
from monitor.model import Health, ProbeResult, SystemState, Transition
from monitor.probing.probes import Prober, make_session
from monitor.probing.runtime import Monitor
from monitor.store import SQLiteStore
from monitor.web.views import uptimes

CHECK = """\
name: {name}
title: {name}
every: 30s
timeout: 10s
fail_after: 1
recover_after: 1
probe: {{http: {{url: "{url}"}}}}
"""


async def test_a_hanging_system_does_not_delay_another_systems_probe(tmp_path: Path) -> None:
    """While login's probe hangs on a slow server, payment's probe runs and finishes."""
    async with Target() as slow, Target() as healthy:
        await slow.set_mode(Mode.SLOW)
        checks = tmp_path / "checks"
        checks.mkdir()
        (checks / "login.yaml").write_text(CHECK.format(name="login", url=slow.url_for("/healthz")))
        (checks / "payment.yaml").write_text(
            CHECK.format(name="payment", url=healthy.url_for("/healthz"))
        )
        config = load_config(checks, {})
        store = SQLiteStore(tmp_path / "monitor.db")
        async with make_session(HttpClient()) as session:
            monitor = Monitor(config, store, FakeClock(), Prober(session, FakeClock()))
            hanging = asyncio.create_task(monitor.probe("login"))
            result = await monitor.probe("payment")
            assert result is not None
            assert result.ok
            assert not hanging.done()
            assert monitor.states["payment"].health is Health.UP
            await slow.set_mode(Mode.HEALTHY)  # lets the hanging request finish
            login = await hanging
            assert login is not None
            assert login.ok
        await store.close()


async def test_probing_goes_on_in_memory_while_the_store_refuses_writes(tmp_path: Path) -> None:
    """With the database refusing writes, a DOWN transition still reaches listeners and is
    kept; once the database takes writes again it is saved and the error clears."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "payment.yaml").write_text(CHECK.format(name="payment", url="http://127.0.0.1:9/"))
    store = SQLiteStore(tmp_path / "monitor.db")
    clock = FakeClock()
    monitor = Monitor(load_config(checks, {}), store, clock)
    heard: list[Transition] = []
    monitor.on_transition.append(heard.append)
    store.db.execute("PRAGMA query_only=1")
    monitor.observe(ProbeResult("payment", False, "connection refused", clock.now(), 0.001))
    await monitor.flush()
    assert [t.current for t in heard] == [Health.DOWN]
    assert monitor.store_error is not None
    assert "readonly" in monitor.store_error
    store.db.execute("PRAGMA query_only=0")
    await monitor.flush()
    assert monitor.store_error is None
    assert [t.current for t in await store.transitions("payment")] == [Health.DOWN]
    assert len(await store.recent_results("payment")) == 1
    await store.close()


async def test_pruning_applies_the_retention_settings_from_monitor_yaml(tmp_path: Path) -> None:
    """With max_results_per_system 3 and max_age 1h, the monitor keeps each system's three
    newest results from the last hour."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "monitor.yaml").write_text("retention: {max_age: 1h, max_results_per_system: 3}\n")
    (checks / "payment.yaml").write_text(CHECK.format(name="payment", url="http://127.0.0.1:9/"))
    store = SQLiteStore(tmp_path / "monitor.db")
    clock = FakeClock()
    monitor = Monitor(load_config(checks, {}), store, clock)
    for age in (7200, 50, 40, 30, 20, 10):
        monitor.observe(ProbeResult("payment", True, "status 200", clock.now() - age, 0.01))
    await monitor.flush()
    assert await monitor.prune() == 3
    kept = [clock.now() - r.started_at for r in await store.recent_results("payment")]
    assert kept == [10, 20, 30]
    await store.close()


@pytest.mark.parametrize(
    ("retention", "kept"),
    [
        # Six days of flaps (twelve transitions) are older than seven days: one of them stays.
        ("{max_age: 1h, history: 1d}", 40 - 11),
        # The status page's eight days and one more: two days' flaps are older, one stays.
        ("{max_age: 1h, history: 8d}", 40 - 3),
    ],
)
async def test_pruning_forgets_state_history_older_than_the_uptime_window_and_no_more(
    tmp_path: Path, retention: str, kept: int
) -> None:
    """Payment flaps twice a day for ten days; login went UP once, ten days ago. With max_age 1h,
    pruning keeps the seven days the uptime figures read, or the status page's history and a
    day when longer: each system's uptime is the same before and after, and payment's older
    flaps are gone but for the one that says how it was then."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "monitor.yaml").write_text(f"retention: {retention}\n")
    for name in ("payment", "login"):
        (checks / f"{name}.yaml").write_text(CHECK.format(name=name, url="http://127.0.0.1:9/"))
    store = SQLiteStore(tmp_path / "monitor.db")
    clock = FakeClock()
    monitor = Monitor(load_config(checks, {}), store, clock)
    monitor.observe(ProbeResult("login", True, "status 200", clock.now(), 0.01))
    for _ in range(20):
        monitor.observe(ProbeResult("payment", False, "status 500", clock.now(), 0.01))
        clock.advance(3600)
        monitor.observe(ProbeResult("payment", True, "status 200", clock.now(), 0.01))
        clock.advance(11 * 3600)
    await monitor.flush()
    # Applied to the incidents, as the notifier does at its tick: an unapplied one is kept.
    applied = [id_ for id_, _ in await store.unapplied_transitions(1000)]
    await store.save_incidents([], [], applied)
    names = ["payment", "login"]
    before = await uptimes(store, names, clock.now())

    await monitor.prune()

    assert await uptimes(store, names, clock.now()) == before
    assert before["payment"] == pytest.approx(1 - 14 / (7 * 24))
    assert before["login"] == 1.0
    assert [t.current for t in await store.transitions("login")] == [Health.UP]
    assert len(await store.transitions("payment")) == kept
    await store.close()


async def test_transitions_of_one_loop_turn_are_saved_before_the_next_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    """Thousands of systems change state together at start and in a mass outage; whatever
    changed in one turn of the event loop is in the database once the loop moves on, in order,
    and a monitor started on that database resumes from it."""
    checks = tmp_path / "checks"
    checks.mkdir()
    names = [f"system-{n}" for n in range(50)]
    for name in names:
        (checks / f"{name}.yaml").write_text(CHECK.format(name=name, url="http://127.0.0.1:9/"))
    config = load_config(checks, {})
    store = SQLiteStore(tmp_path / "monitor.db")
    clock = FakeClock()
    monitor = Monitor(config, store, clock)
    for name in names:
        monitor.observe(ProbeResult(name, False, "connection refused", clock.now(), 0.001))
    monitor.observe(ProbeResult("system-7", True, "status 200", clock.now() + 1, 0.001))
    await asyncio.sleep(0)

    saved = {name: [t.current for t in await store.transitions(name)] for name in names}
    assert saved["system-7"] == [Health.DOWN, Health.UP]
    assert all(saved[name] == [Health.DOWN] for name in names if name != "system-7")
    await store.close()

    reopened = SQLiteStore(tmp_path / "monitor.db")
    resumed = Monitor(config, reopened, FakeClock())
    await resumed.restore()
    assert resumed.states["system-7"].health is Health.UP
    assert {resumed.states[name].health for name in names if name != "system-7"} == {Health.DOWN}
    await reopened.close()


class SlowCommits(SQLiteStore):
    """The real store, each commit of transitions held until ``go`` is set: the time a
    database server's round trip takes, during which the event loop runs on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.go = asyncio.Event()
        self.commits: list[list[str]] = []

    async def save_transitions(
        self, saved: Sequence[tuple[Transition, SystemState]], holder: str | None = None
    ) -> None:
        await self.go.wait()
        await super().save_transitions(saved, holder)
        self.commits.append([t.system for t, _ in saved])


async def test_transitions_coming_in_while_others_are_being_written_are_each_saved_once_in_order(
    tmp_path: Path,
) -> None:
    """While the store takes its time over one commit of transitions, more come in: they go in
    the next commit, after it, and none is written twice."""
    checks = tmp_path / "checks"
    checks.mkdir()
    names = ["crm", "login", "payment"]
    for name in names:
        (checks / f"{name}.yaml").write_text(CHECK.format(name=name, url="http://127.0.0.1:9/"))
    store = SlowCommits(tmp_path / "monitor.db")
    clock = FakeClock()
    monitor = Monitor(load_config(checks, {}), store, clock)
    monitor.observe(ProbeResult("payment", False, "status 503", clock.now(), 0.001))
    await asyncio.sleep(0)  # its write has begun, and waits for the store
    clock.advance(1)
    monitor.observe(ProbeResult("login", False, "status 503", clock.now(), 0.001))
    monitor.observe(ProbeResult("crm", False, "status 503", clock.now(), 0.001))
    store.go.set()
    await monitor.flush()

    assert store.commits == [["payment"], ["login", "crm"]]
    saved = await store.transitions()
    assert [(t.system, t.current) for t in saved] == [
        ("payment", Health.DOWN),
        ("login", Health.DOWN),
        ("crm", Health.DOWN),
    ]
    await store.close()


async def test_a_restart_resumes_the_failure_streak_of_a_system_still_up(tmp_path: Path) -> None:
    """Payment's failures count towards the three it takes to go DOWN across restarts, and a
    pass in between starts the count again."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "payment.yaml").write_text(
        CHECK.format(name="payment", url="http://127.0.0.1:9/").replace(
            "fail_after: 1", "fail_after: 3"
        )
    )
    config = load_config(checks, {})
    clock = FakeClock()

    async def run(results: list[bool]) -> Monitor:
        store = SQLiteStore(tmp_path / "monitor.db")
        monitor = Monitor(config, store, clock)
        await monitor.restore()
        for ok in results:
            clock.advance(30)
            monitor.observe(ProbeResult("payment", ok, "status 503", clock.now(), 0.001))
        await monitor.flush()
        await store.close()
        return monitor

    await run([True])  # UP
    await run([True, False])  # restarted: a pass, then one failure
    await run([False])  # restarted: two
    resumed = await run([False])  # restarted again: three
    assert resumed.states["payment"].health is Health.DOWN

    await run([True, True, False, False])  # UP again, then two failures
    await run([True])  # a pass: the count starts again
    again = await run([False, False])
    assert again.states["payment"].health is Health.UP
    assert again.states["payment"].fail_streak == 2
