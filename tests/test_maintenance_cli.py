"""On-call plans work at a terminal: ``monitor maintenance add|list|remove`` against a real
running monitor over real HTTP (``tests/test_oncall_cli.py``'s App and terminal), ``monitor
preview --kind maintenance`` from the shipped templates, and ``monitor validate`` counting the
windows it read."""

from __future__ import annotations

import json
from pathlib import Path

from test_oncall_cli import TOKEN, Terminal, running, terminal
from world import MESSAGES, write_config

__all__ = ["terminal"]  # the fixture, used here

WITH_TOKEN = {"MONITOR_API_TOKEN": TOKEN}


async def test_maintenance_is_added_listed_and_removed_through_the_running_monitor(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`add` prints the new window's id, `list` shows it with its next occurrence (UTC) and its
    own grace, and `remove` takes it away; `-o json` is the API's answer."""
    async with running(tmp_path) as world:
        url = {"MONITOR_URL": world.url}
        code, out, err = await terminal.run(
            "maintenance",
            "add",
            "--systems",
            "payment,login",
            "--every",
            "sunday",
            "--start",
            "02:00",
            "--end",
            "03:00",
            "--timezone",
            "Europe/Berlin",
            "--note",
            "We back up the payment database.",
            "--grace",
            "1h",
            env={**url, **WITH_TOKEN},
        )
        assert (code, err) == (0, "")
        assert out == (
            "maintenance window 1 added: every sunday 02:00-03:00 Europe/Berlin; payment, login\n"
        )
        code, out, _ = await terminal.run("maintenance", "list", env=url)
        assert code == 0
        header, line = out.splitlines()
        assert header.split() == ["ID", "SYSTEMS", "WHEN", "NEXT", "(UTC)", "GRACE", "SOURCE"]
        # The clock is on Friday 2027-01-15: the next Sunday 02:00 in Berlin is 01:00 UTC.
        assert "2027-01-17 01:00 - 02:00" in line
        assert line.startswith("1 ")
        assert line.split()[-2:] == ["1h", "api"]  # its own grace, where it is written
        code, out, _ = await terminal.run("maintenance", "list", "-o", "json", env=url)
        listed = json.loads(out)["windows"][0]
        assert (listed["every"], listed["grace"]) == (["sunday"], 3600.0)
        code, out, err = await terminal.run("maintenance", "remove", "1", env={**url, **WITH_TOKEN})
        assert (code, out, err) == (0, "maintenance window 1 removed\n", "")
        code, out, _ = await terminal.run("maintenance", "list", env=url)
        assert (code, out) == (0, "no maintenance windows\n")


async def test_a_window_the_monitor_refuses_is_said_and_exits_1(
    tmp_path: Path, terminal: Terminal
) -> None:
    """A system no check declares is refused with "did you mean" (exit 1), as is a write
    without the token; removing an id no window has exits 1."""
    async with running(tmp_path) as world:
        url = {"MONITOR_URL": world.url}
        window = ["--start", "2027-01-20 02:00", "--end", "2027-01-20 03:00", "--note", "Work."]
        code, _, err = await terminal.run(
            "maintenance", "add", "--systems", "paymnet", *window, env={**url, **WITH_TOKEN}
        )
        assert code == 1
        assert "did you mean 'payment'?" in err
        code, _, err = await terminal.run(
            "maintenance", "add", "--systems", "payment", *window, env=url
        )
        assert code == 1
        assert "MONITOR_API_TOKEN" in err
        code, _, err = await terminal.run("maintenance", "remove", "7", env={**url, **WITH_TOKEN})
        assert code == 1
        assert "no maintenance window is named '7'" in err


async def test_preview_shows_the_notice_of_planned_work_in_a_language(
    terminal: Terminal,
) -> None:
    """`monitor preview payment --kind maintenance --language de` renders the shipped German
    notice with sample data."""
    code, out, err = await terminal.run(
        "preview", "payment", "--kind", "maintenance", "--language", "de"
    )
    assert (code, err) == (0, "")
    assert out.startswith("Subject: Geplante Arbeiten an Online payments morgen von 02:00 Uhr")


async def test_validate_counts_the_maintenance_windows_it_read(
    tmp_path: Path, terminal: Terminal
) -> None:
    """`monitor validate` says how many windows it read, a file's and monitor.yaml's, beside
    the systems (and, with none, what it always said)."""
    checks = tmp_path / "checks"
    write_config(checks)
    messages = ["--config", str(checks), "--messages", str(MESSAGES)]
    assert await terminal.run("validate", *messages) == (0, "3 systems, 0 problems\n", "")
    (checks / "maintenance").mkdir()
    (checks / "maintenance" / "db.yaml").write_text(
        "name: db\nsystems: [payment]\nstart: 2027-01-17 02:00\nend: 2027-01-17 04:00\n"
        "note: We move the database.\n"
    )
    with (checks / "monitor.yaml").open("a") as settings:
        settings.write(
            "maintenance:\n  - {name: backups, systems: [crm], every: sunday, start: '02:00', "
            "end: '03:00', note: We back up your orders.}\n"
        )
    assert await terminal.run("validate", *messages) == (
        0,
        "3 systems, 2 maintenance windows, 0 problems\n",
        "",
    )


async def test_a_window_the_monitor_cannot_read_is_listed_as_unusable_and_removed(
    tmp_path: Path, terminal: Terminal
) -> None:
    """A window stored by an older version (a key this one does not know) is listed with why
    it cannot be used, and `remove` takes it away like any other."""
    async with running(tmp_path) as world:
        url = {"MONITOR_URL": world.url}
        await world.app.store.add_maintenance_window(
            '{"systems": ["payment"], "start": "2027-01-20T02:00:00", '
            '"end": "2027-01-20T03:00:00", "note": "Work.", "window_kind": "old"}',
            world.clock.now(),
        )
        code, out, _ = await terminal.run("maintenance", "list", env=url)
        assert code == 0
        _, line, why = out.splitlines()
        assert line.split()[:4] == ["1", "payment", "2027-01-20T02:00:00", "-"]
        assert "unusable (see below)" in line
        assert why == (
            "window 1 cannot be used: window_kind: unknown key 'window_kind' (valid keys here: "
            "systems, start, end, every, timezone, note, notify_before, grace) (`monitor "
            "maintenance remove 1` removes it)"
        )
        code, out, err = await terminal.run("maintenance", "remove", "1", env={**url, **WITH_TOKEN})
        assert (code, out, err) == (0, "maintenance window 1 removed\n", "")
        assert await terminal.run("maintenance", "list", env=url) == (
            0,
            "no maintenance windows\n",
            "",
        )
