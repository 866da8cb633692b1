"""The App's shape: every part it owns is declared in its class body, with a type."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from clock import FakeClock
from world import MESSAGES, write_config

from monitor.app import App, Options


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
