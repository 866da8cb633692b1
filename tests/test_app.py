"""The App's shape: every part it owns is declared in its class body, with a type."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from clock import FakeClock
from world import MESSAGES, write_config

from monitor.app import App, Options
from monitor.model import ProbeResult


async def test_every_part_a_started_app_holds_is_a_declared_field(tmp_path: Path) -> None:
    """After start, the App has no attribute its class body does not declare, and every part
    tests, the demo and the benchmarks use is among them."""
    checks = tmp_path / "checks"
    write_config(checks)
    app = App(
        Options(config=checks, messages=MESSAGES, db=tmp_path / "monitor.db", listen="-"),
        clock=FakeClock(),
        environ={},
        serve_http=False,
        watch_files=False,
    )
    await app.start()
    try:
        held = set(vars(app))
    finally:
        await app.stop()
    declared = {f.name for f in dataclasses.fields(App)}
    assert held - declared == set()
    parts = {"config", "store", "metrics", "monitor", "notifier", "delivery", "oncall"}
    assert parts | {"scheduler", "runner", "web_services"} <= declared


async def test_only_the_leading_replica_prunes_the_shared_history(tmp_path: Path) -> None:
    """Two replicas on one database: the one that does not lead leaves old probe results
    alone, the leader deletes them (one replica's work, not the same rows deleted twice)."""
    checks = tmp_path / "checks"
    write_config(checks)
    clock = FakeClock()
    options = Options(config=checks, messages=MESSAGES, db=tmp_path / "monitor.db", listen="-")
    apps = [
        App(
            options,
            clock=clock,
            environ={"MONITOR_REPLICA": name},
            serve_http=False,
            watch_files=False,
        )
        for name in ("r1", "r2")
    ]
    for app in apps:
        await app.start()
    try:
        leader, follower = sorted(apps, key=lambda app: not app.membership.leads())
        assert leader.membership.leads()
        assert not follower.membership.leads()
        old = clock.now() - 30 * 86400.0
        await leader.store.record_results(
            [ProbeResult("payment", False, "timeout", old + i, 0.1) for i in range(5)]
        )
        await follower._prune()
        assert len(await leader.store.recent_results("payment", limit=100)) == 5
        await leader._prune()
        assert await leader.store.recent_results("payment", limit=100) == []
    finally:
        for app in apps:
            await app.stop()
